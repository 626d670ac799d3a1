//! The reconcile loop: CollectorSet → validated spec → shard plan → applied children → status.
//!
//! Each reconcile is idempotent: it re-derives everything from the spec and the previous status
//! (which remembers the plan), applies with one field manager, retires objects of shards no longer
//! planned only once the new plan has rolled out (make before break), and always writes status.

pub mod apply;
pub mod jobs;
pub mod report;
pub mod runs;
pub mod secrets;
pub mod status;

use crate::builders::{self, BuildOptions, Owner};
use crate::crd::CollectorSet;
use crate::planner;
use crate::validate::{FieldError, validate};
use crate::{Error, FIELD_MANAGER, Result};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use status::{Outcome, Transition};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Re-check a healthy set this often (lock holders change without a watch event on the set).
pub const RESYNC: Duration = Duration::from_secs(30);
/// While the plan rolls out, look again soon.
pub const ROLLOUT_POLL: Duration = Duration::from_secs(10);
/// Paused or invalid sets are only looked at on change or this rarely.
pub const IDLE_RESYNC: Duration = Duration::from_secs(300);

/// Shared state of the controller.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub options: BuildOptions,
    /// Consecutive failures per `namespace/name`, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, options: BuildOptions, instance: Option<String>) -> Context {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance,
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            options,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// 5 s, 10 s, 20 s ... capped at 5 minutes.
pub fn backoff(consecutive_failures: u32) -> Duration {
    let exp = consecutive_failures.saturating_sub(1).min(6);
    Duration::from_secs(5 * (1u64 << exp)).min(IDLE_RESYNC)
}

fn key(set: &CollectorSet) -> String {
    format!("{}/{}", set.namespace().unwrap_or_default(), set.name_any())
}

/// Name rule the CRD states in CEL (child names append a shard suffix).
fn name_errors(set: &CollectorSet) -> Vec<FieldError> {
    if set.name_any().len() > 40 {
        vec![FieldError {
            field: "metadata.name".into(),
            message: "must be at most 40 characters".into(),
        }]
    } else {
        Vec::new()
    }
}

/// One reconcile of one CollectorSet.
pub async fn reconcile(set: Arc<CollectorSet>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let result = reconcile_inner(&set, &ctx).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!("marketprism_operator_reconciles_total", "result" => outcome).increment(1);
    metrics::histogram!("marketprism_operator_reconcile_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    match &result {
        Ok(_) => {
            ctx.failures().remove(&key(&set));
        }
        Err(e) => {
            tracing::warn!(collectorset = %key(&set), error = %e, "reconcile failed");
            publish(
                &ctx,
                &set,
                &Transition {
                    warning: true,
                    reason: "ReconcileFailed",
                    note: e.to_string(),
                },
            )
            .await;
        }
    }
    result
}

async fn reconcile_inner(set: &CollectorSet, ctx: &Context) -> Result<Action> {
    let owner = Owner::of(set)?;
    let previous = set.status.clone().unwrap_or_default();
    let mut errors = name_errors(set);
    errors.extend(validate(&set.spec));
    let (outcome, requeue) = if !errors.is_empty() {
        (Outcome::Invalid(errors), IDLE_RESYNC)
    } else if set.spec.paused {
        (Outcome::Paused, IDLE_RESYNC)
    } else {
        match secrets::check(&ctx.client, owner.namespace, &set.spec).await? {
            // Secrets are not watched: look again at the resync period.
            Err(problems) => (Outcome::MissingSecret(problems), RESYNC),
            Ok(nats_auth) => apply_plan(set, &owner, &previous, ctx, nats_auth).await?,
        }
    };
    let now = Time(Timestamp::now());
    let mut status = status::compute(
        &set.spec,
        set.metadata.generation,
        &previous,
        &outcome,
        &now,
    );
    status.report = report_status(set, &owner, &previous, ctx).await;
    status.jobs = jobs::observe(&ctx.client, &owner, previous.jobs.as_ref()).await;
    let api: Api<CollectorSet> = Api::namespaced(ctx.client.clone(), owner.namespace);
    let body = serde_json::json!({
        "apiVersion": CollectorSet::api_version(&()),
        "kind": CollectorSet::kind(&()),
        "status": status,
    });
    api.patch_status(
        owner.name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    metrics::gauge!("marketprism_operator_shards", "collectorset" => key(set))
        .set(f64::from(status.shard_count));
    for t in status::transitions(&previous, &status) {
        publish(ctx, set, &t).await;
    }
    Ok(Action::requeue(requeue))
}

/// The last finished report's verdict; the previous one while no newer Job finished or when the
/// Jobs cannot be read (logged; the verdict is informative, never a reason to fail a reconcile).
async fn report_status(
    set: &CollectorSet,
    owner: &Owner<'_>,
    previous: &crate::crd::CollectorSetStatus,
    ctx: &Context,
) -> Option<crate::crd::ReportStatus> {
    set.spec.report.as_ref()?;
    match report::observe(&ctx.client, owner).await {
        Ok(Some(found)) => Some(found),
        Ok(None) => previous.report.clone(),
        Err(e) => {
            tracing::warn!(collectorset = %key(set), error = %e, "cannot read the report Jobs");
            previous.report.clone()
        }
    }
}

/// Plan, apply, and (once the plan is rolled out) retire stale shards.
async fn apply_plan(
    set: &CollectorSet,
    owner: &Owner<'_>,
    previous: &crate::crd::CollectorSetStatus,
    ctx: &Context,
    nats_auth: builders::NatsAuth,
) -> Result<(Outcome, Duration)> {
    let plan = planner::plan(&set.spec, &previous.shards);
    let options = BuildOptions {
        nats_auth,
        ..ctx.options.clone()
    };
    let children = builders::children(set, &plan, &options)?;
    let applied = apply::apply_children(&ctx.client, owner.namespace, &children).await?;
    let shards: Vec<_> = plan
        .into_iter()
        .map(|shard| {
            let object = owner.shard_object(&shard.name);
            let mut seen = applied
                .deployments
                .get(&object)
                .cloned()
                .unwrap_or_default();
            seen.lock_holder = applied.lock_holders.get(&object).cloned().flatten();
            seen.not_ready = applied.not_ready.get(&object).cloned().unwrap_or_default();
            (shard, seen)
        })
        .collect();
    // Sidecars are part of the shard pods' readiness; only a shared sink Deployment is separate.
    let shared_sink = set.spec.clickhouse.is_some()
        && set.spec.sink.placement == crate::crd::SinkPlacement::Deployment;
    let sink_ready = shared_sink.then(|| {
        applied
            .deployments
            .get(&owner.sink_object())
            .is_some_and(|o| o.ready_replicas > 0)
    });
    // Make before break: symbols of a retired shard keep flowing from it until the shards that
    // took them over are rolled out; JetStream deduplicates the overlap. What is stale is listed
    // on every reconcile, so status says what exists, not what was planned away.
    let rolled_out = shards.iter().all(|(_, o)| o.rolled_out);
    let stale = apply::stale_children(&ctx.client, owner.namespace, owner.name, &children).await?;
    if rolled_out && !stale.is_empty() {
        apply::delete_stale(&ctx.client, owner.namespace, &stale).await?;
        tracing::info!(collectorset = %key(set), objects = stale.len(), "deleting objects of retired shards");
    }
    // Deleted objects can linger (pods terminating, finalizers): look again soon either way.
    let requeue = if rolled_out && stale.is_empty() {
        RESYNC
    } else {
        ROLLOUT_POLL
    };
    Ok((
        Outcome::Applied {
            shards,
            sink_ready,
            retired: status::Retired {
                objects: stale.len(),
                shards: stale.iter().filter_map(|s| s.shard.clone()).collect(),
                deleting: rolled_out,
            },
        },
        requeue,
    ))
}

async fn publish(ctx: &Context, set: &CollectorSet, t: &Transition) {
    let event = Event {
        type_: if t.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: t.reason.into(),
        note: Some(t.note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &set.object_ref(&())).await {
        // Events are best effort; the status carries the same information.
        tracing::debug!(error = %e, reason = t.reason, "cannot publish event");
    }
}

/// Requeue with exponential backoff per object.
pub fn error_policy(set: Arc<CollectorSet>, error: &Error, ctx: Arc<Context>) -> Action {
    let mut failures = ctx.failures();
    let n = failures.entry(key(&set)).or_insert(0);
    *n = n.saturating_add(1);
    let delay = backoff(*n);
    tracing::debug!(collectorset = %key(&set), reason = error.reason(), ?delay, "requeue after error");
    Action::requeue(delay)
}

/// Run the controller until `shutdown` resolves. `namespace` limits the watch.
pub async fn run(
    client: Client,
    namespace: Option<String>,
    options: BuildOptions,
    instance: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (sets, deployments): (Api<CollectorSet>, Api<Deployment>) = match &namespace {
        Some(ns) => (
            Api::namespaced(client.clone(), ns),
            Api::namespaced(client.clone(), ns),
        ),
        None => (Api::all(client.clone()), Api::all(client.clone())),
    };
    let owned = watcher::Config::default().labels(&format!(
        "{}={}",
        builders::LABEL_MANAGED_BY,
        builders::MANAGED_BY
    ));
    let ctx = Arc::new(Context::new(client, options, instance));
    Controller::new(sets, watcher::Config::default())
        .owns(deployments, owned)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "controller event");
            }
        })
        .await;
    // Graceful: running reconciles have finished; the caller may now release the leader Lease.
    tracing::info!("controller stopped");
}

#[cfg(test)]
mod tests;
