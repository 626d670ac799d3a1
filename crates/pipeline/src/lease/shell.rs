//! The thin async shell around [`LeaseMachine`]: read the Lease, write when told, fence on time.

use super::machine::{LeaseMachine, Observed, Role, Step};
use crate::internal_events::emit;
use crate::internal_events::lease::{LeaseRoleChanged, LeaseWriteFailed};
use crate::{Error, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use marketprism_config::LeaseConfig;
use marketprism_telemetry::{Health, Status};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// This instance took the Lease over: who held it before and when that holder last renewed it
/// (UTC ms), the safe lower bound of the last event the shard published before the handover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    pub previous_holder: Option<String>,
    pub previous_renew_ms: i64,
}

/// Hold the shard Lease named in `config`, telling the process through `signals` (see [`Signals`]).
/// Uses the in-cluster Kubernetes client (the pod's ServiceAccount may get/update only this Lease).
pub async fn run_lease(
    config: LeaseConfig,
    health: Health,
    signals: Signals,
    shutdown: CancellationToken,
) -> Result<()> {
    let client = Client::try_default()
        .await
        .map_err(|e| Error::Other(format!("lease: no Kubernetes client: {e}")))?;
    run_lease_reporting(client, config, health, signals, shutdown).await
}

/// What the lease task tells the rest of the process.
pub struct Signals {
    /// The verdict: true only while held (see [`super::Fence`] for the one outputs use).
    pub may_publish: watch::Sender<bool>,
    /// Each takeover of a Lease renewed before, set before `may_publish` turns true.
    pub takeovers: watch::Sender<Option<Takeover>>,
    /// The instant our hold ends (`None`: not held), for [`super::Fence`].
    pub deadline: watch::Sender<Option<Instant>>,
}

/// [`run_lease`] with a given client (tests pass a fake API server), takeovers not reported.
pub async fn run_lease_with(
    client: Client,
    config: LeaseConfig,
    health: Health,
    may_publish: watch::Sender<bool>,
    shutdown: CancellationToken,
) -> Result<()> {
    let signals = Signals {
        may_publish,
        takeovers: watch::channel(None).0,
        deadline: watch::channel(None).0,
    };
    run_lease_reporting(client, config, health, signals, shutdown).await
}

/// [`run_lease`] with a given client.
pub async fn run_lease_reporting(
    client: Client,
    config: LeaseConfig,
    health: Health,
    signals: Signals,
    shutdown: CancellationToken,
) -> Result<()> {
    let Signals {
        may_publish,
        takeovers,
        deadline: deadline_tx,
    } = signals;
    if config.holder.is_empty() {
        return Err(Error::Other(
            "lease: holder identity is empty (set lease.holder or POD_NAME)".into(),
        ));
    }
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let readiness = health.register("lease");
    let mut machine = LeaseMachine::new(
        config.holder.clone(),
        Duration::from_secs(config.duration_s),
    );
    let deadline_rx = deadline_tx.subscribe();
    let fence = tokio::spawn(fence(deadline_rx, may_publish.clone()));
    let mut role = None;
    while !shutdown.is_cancelled() {
        let outcome = match tick(&api, &config.name, &mut machine, &health).await {
            Ok(Some(takeover)) => {
                takeovers.send_replace(Some(takeover));
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        deadline_tx.send_replace(machine.deadline());
        let now_role = machine.role(now());
        if role != Some(now_role) {
            emit(LeaseRoleChanged {
                lease: &config.name,
                holder: machine.identity(),
                role: now_role,
            });
            role = Some(now_role);
        }
        match (&outcome, now_role) {
            (_, Role::Active) => readiness.ready(),
            (_, Role::Standby) => readiness.ready(),
            (Err(reason), Role::Unknown) => readiness.not_ready(reason),
            (Ok(()), Role::Unknown) => readiness.not_ready("lease not held and holder unknown"),
        }
        if let Err(reason) = outcome {
            emit(LeaseWriteFailed {
                lease: &config.name,
                reason: &reason,
            });
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(poll_interval(&machine, now_role)) => {}
        }
    }
    // Stop publishing first, then hand the Lease over so a standby takes it at once.
    let held = machine.deadline().is_some();
    deadline_tx.send_replace(None);
    fence.abort();
    may_publish.send_replace(false);
    machine.released();
    if held && let Err(reason) = release(&api, &config.name, machine.identity()).await {
        emit(LeaseWriteFailed {
            lease: &config.name,
            reason: &reason,
        });
    }
    metrics::gauge!("marketprism_lease_active").set(0.0);
    Ok(())
}

/// Active pods renew every third of the duration; standbys poll a bit more often so they
/// notice a release quickly.
fn poll_interval(machine: &LeaseMachine, role: Role) -> Duration {
    match role {
        Role::Active => machine.renew_period(),
        Role::Standby | Role::Unknown => {
            (machine.renew_period() / 2).max(Duration::from_millis(500))
        }
    }
}

/// The only writer of `may_publish`: true while the deadline is in the future, false the instant
/// it passes, even if the main loop is stuck in a slow API call.
async fn fence(mut deadline: watch::Receiver<Option<Instant>>, may_publish: watch::Sender<bool>) {
    loop {
        let current = *deadline.borrow_and_update();
        let publish = current.is_some_and(|d| now() < d);
        may_publish.send_if_modified(|v| std::mem::replace(v, publish) != publish);
        metrics::gauge!("marketprism_lease_active").set(if publish { 1.0 } else { 0.0 });
        match current.filter(|_| publish) {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(d)) => {}
                    changed = deadline.changed() => if changed.is_err() { break },
                }
            }
            None => {
                if deadline.changed().await.is_err() {
                    break;
                }
            }
        }
    }
    may_publish.send_replace(false);
}

/// The monotonic clock (tokio's, so tests with paused time control it).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// What the state machine may look at: holder, version and duration — never the wall-clock times.
pub fn observed(lease: &Lease) -> Observed {
    let spec = lease.spec.clone().unwrap_or_default();
    Observed {
        holder: spec.holder_identity,
        version: lease.resource_version().unwrap_or_default(),
        duration_s: spec
            .lease_duration_seconds
            .and_then(|d| u64::try_from(d).ok()),
    }
}

/// The holder's not-ready note on its Lease (defined with the lease config, which the operator shares).
pub use marketprism_config::NOT_READY_ANNOTATION;

/// At most this many components, each reason cut to this many characters (annotations share a
/// 256 KiB budget per object; a status line should stay readable anyway).
const MAX_NOT_READY: usize = 50;
const MAX_REASON_CHARS: usize = 300;

/// The [`NOT_READY_ANNOTATION`] value for these statuses (`None`: all ready). The `lease` component
/// itself is left out: a holder writing the Lease is by definition holding it.
pub fn not_ready_annotation(statuses: &BTreeMap<String, Status>) -> Option<String> {
    let not_ready: BTreeMap<&str, String> = statuses
        .iter()
        .filter(|(name, s)| !s.ready && name.as_str() != "lease")
        .take(MAX_NOT_READY)
        .map(|(name, s)| {
            (
                name.as_str(),
                s.reason.chars().take(MAX_REASON_CHARS).collect(),
            )
        })
        .collect();
    (!not_ready.is_empty()).then(|| serde_json::to_string(&not_ready).unwrap_or_default())
}

/// The Lease after we acquire or renew it (the `resourceVersion` stays: optimistic concurrency),
/// carrying the holder's [`NOT_READY_ANNOTATION`] (`None` removes it).
pub fn claimed(
    mut lease: Lease,
    identity: &str,
    duration: Duration,
    not_ready: Option<String>,
) -> Lease {
    let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match not_ready {
        Some(value) => annotations.insert(NOT_READY_ANNOTATION.to_owned(), value),
        None => annotations.remove(NOT_READY_ANNOTATION),
    };
    if annotations.is_empty() {
        lease.metadata.annotations = None;
    }
    let now = MicroTime(Timestamp::now());
    let mut spec = lease.spec.take().unwrap_or_default();
    let previous = spec.holder_identity.clone().filter(|h| !h.is_empty());
    if previous.as_deref() != Some(identity) {
        spec.acquire_time = Some(now.clone());
        if previous.is_some() {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
    }
    spec.holder_identity = Some(identity.to_owned());
    spec.renew_time = Some(now);
    if spec.lease_duration_seconds.is_none() {
        spec.lease_duration_seconds = i32::try_from(duration.as_secs()).ok();
    }
    lease.spec = Some(spec);
    lease
}

/// The takeover an acquisition of `lease` (as read) is: `None` when it was never renewed (a new shard).
pub fn takeover_of(lease: &Lease) -> Option<Takeover> {
    let spec = lease.spec.as_ref()?;
    let renew = spec.renew_time.as_ref()?;
    Some(Takeover {
        previous_holder: spec.holder_identity.clone().filter(|h| !h.is_empty()),
        previous_renew_ms: renew.0.as_millisecond(),
    })
}

/// One read (and write when due); `Some` when this tick acquired the Lease from an earlier holder.
async fn tick(
    api: &Api<Lease>,
    name: &str,
    machine: &mut LeaseMachine,
    health: &Health,
) -> Result<Option<Takeover>, String> {
    let limit = machine.renew_period();
    let lease = match tokio::time::timeout(limit, api.get_opt(name)).await {
        Ok(Ok(Some(lease))) => lease,
        Ok(Ok(None)) => return Err(format!("Lease {name} does not exist yet")),
        Ok(Err(e)) => return Err(format!("reading Lease {name}: {e}")),
        Err(_) => return Err(format!("reading Lease {name}: timed out")),
    };
    machine.observe(observed(&lease), now());
    let step = machine.next_step(now());
    match step {
        Step::Acquire { .. } | Step::Renew { .. } => {
            let takeover = match step {
                Step::Acquire { .. } => takeover_of(&lease),
                _ => None,
            };
            let started = now();
            let not_ready = not_ready_annotation(&health.snapshot());
            let body = claimed(lease, machine.identity(), machine.duration(), not_ready);
            match tokio::time::timeout(limit, api.replace(name, &PostParams::default(), &body))
                .await
            {
                Ok(Ok(written)) => {
                    machine.write_succeeded(
                        started,
                        written.resource_version().unwrap_or_default(),
                        now(),
                    );
                    Ok(takeover)
                }
                Ok(Err(kube::Error::Api(status))) if status.is_conflict() => {
                    machine.write_conflicted();
                    Ok(None)
                }
                Ok(Err(e)) => Err(format!("writing Lease {name}: {e}")),
                Err(_) => Err(format!("writing Lease {name}: timed out")),
            }
        }
        Step::Standby | Step::Wait => Ok(None),
    }
}

async fn release(api: &Api<Lease>, name: &str, identity: &str) -> Result<(), String> {
    let mut lease = api
        .get(name)
        .await
        .map_err(|e| format!("reading Lease {name} to release it: {e}"))?;
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(identity) {
        return Ok(());
    }
    spec.holder_identity = None;
    api.replace(name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
        .map_err(|e| format!("releasing Lease {name}: {e}"))
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
