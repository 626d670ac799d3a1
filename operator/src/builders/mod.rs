//! Pure builders: a `CollectorSet` plus its shard plan → every child object, no I/O.
//!
//! # Layout, and why resharding loses and duplicates nothing
//!
//! * One **collector Deployment per shard** (`<set>-<shard>`, `replicasPerShard` pods). All pods of a
//!   shard connect to the venues; only the holder of the shard **Lease** publishes (the others stand by
//!   and take over when the Lease expires or is released). A pod stops publishing as soon as its own
//!   monotonic deadline passes without a renewal, before anyone else can acquire, so two pods never
//!   publish the same shard for longer than a JetStream duplicate window (and what they overlap is
//!   deduplicated anyway, below).
//! * The sink, with ClickHouse configured: by default a **sidecar in every collector pod**, consuming
//!   only the shard's subjects through one durable consumer per shard, which the active and standby
//!   pods share (each message goes to one of them, acked after its insert); or, with
//!   `sink.placement: Deployment`, one **sink Deployment per CollectorSet** (`<set>-sink`) whose pods
//!   share one durable consumer per stream, for sets with many shards (fewer, larger inserts).
//! * Nothing is lost or duplicated across resharding, scaling and restarts because (1) every event has
//!   a deterministic `Nats-Msg-Id` from its natural key, so when a symbol moves shard (or a standby takes
//!   over) and both old and new publisher send the same event inside the duplicate window, JetStream
//!   stores it once; (2) a sink acks a message only after the ClickHouse insert succeeded, so a sink
//!   killed mid-batch leaves its messages unacked and they are redelivered to another sink; (3) a
//!   redelivered message inserted twice lands in a `ReplacingMergeTree` keyed by the natural key, which
//!   keeps one row. A symbol that moves shard is published by both the old and the new shard while
//!   their Deployments roll (maxUnavailable 0, so an old pod runs until its successor is ready): the
//!   handover is an overlap removed by (1), not a gap. Within a shard, a stopping active pod releases
//!   the Lease so a warm standby takes over at once; what that handover cannot cover, the collector
//!   records as a `Gap` event instead of losing it silently.

mod jobs;
mod objects;
mod pod;
mod report;

pub use jobs::*;
pub use objects::*;
pub use pod::*;
pub use report::*;

use crate::crd::CollectorSet;
use crate::planner::Shard;
use crate::render::{self, PodConfig};
use crate::{Error, Result};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Resource;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_SET: &str = "marketprism.io/collectorset";
pub const LABEL_SHARD: &str = "marketprism.io/shard";
pub const ANNOTATION_CONFIG_HASH: &str = "marketprism.io/config-hash";
pub const MANAGED_BY: &str = "marketprism-operator";
/// `app.kubernetes.io/component` of the report's objects (it runs as a CronJob, not a Deployment).
pub const REPORT_COMPONENT: &str = "report";
/// `app.kubernetes.io/component` of the jobs' shared ConfigMap and work volume (each CronJob, its
/// Jobs and pods carry their kind's: `verify`, `backfill`).
pub const JOBS_COMPONENT: &str = "jobs";

/// Knobs that come from the operator (and what it found in the cluster), not the spec.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Collector image when `spec.image` is empty.
    pub default_image: String,
    /// Which NATS credential keys the referenced Secret holds (the reconciler looks them up).
    pub nats_auth: NatsAuth,
}

/// The NATS credentials a Secret holds. Only keys that exist are referenced, and not optionally:
/// a Secret or key deleted later stops new pods from starting with a clear kubelet error instead of
/// letting them start without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatsAuth {
    pub user_password: bool,
    pub token: bool,
}

impl Default for NatsAuth {
    /// What a Secret is assumed to hold before it was looked at: user and password.
    fn default() -> Self {
        NatsAuth {
            user_password: true,
            token: false,
        }
    }
}

/// What a Deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Collector,
    Sink,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Collector => "collector",
            Component::Sink => "sink",
        }
    }
}

/// Every object a CollectorSet should own right now.
#[derive(Debug, Clone, Default)]
pub struct Children {
    pub config_maps: Vec<ConfigMap>,
    pub deployments: Vec<Deployment>,
    pub leases: Vec<Lease>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
    pub services: Vec<Service>,
    pub cron_jobs: Vec<CronJob>,
    pub persistent_volume_claims: Vec<PersistentVolumeClaim>,
}

/// Identity of the owning set, shared by every builder.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub set: &'a CollectorSet,
    pub name: &'a str,
    pub namespace: &'a str,
}

impl<'a> Owner<'a> {
    pub fn of(set: &'a CollectorSet) -> Result<Owner<'a>> {
        Ok(Owner {
            set,
            name: set
                .metadata
                .name
                .as_deref()
                .ok_or(Error::MissingField("metadata.name"))?,
            namespace: set
                .metadata
                .namespace
                .as_deref()
                .ok_or(Error::MissingField("metadata.namespace"))?,
        })
    }

    /// Labels every child carries; `shard` is `None` for set-wide objects.
    pub fn labels(&self, component: Component, shard: Option<&str>) -> BTreeMap<String, String> {
        self.labels_of(self.selector(component, shard))
    }

    /// Labels of the report's CronJob, ConfigMap, Jobs and pods (`component: report`).
    pub fn report_labels(&self) -> BTreeMap<String, String> {
        self.component_labels(REPORT_COMPONENT)
    }

    /// Selects the report's Jobs and pods.
    pub fn report_selector(&self) -> BTreeMap<String, String> {
        self.component_selector(REPORT_COMPONENT)
    }

    /// Labels of `component`'s set-wide objects (the jobs' ConfigMap, work volume, a kind's
    /// CronJob, Jobs and pods).
    pub fn component_labels(&self, component: &str) -> BTreeMap<String, String> {
        self.labels_of(self.component_selector(component))
    }

    /// Selects `component`'s objects of this set (a job kind's Jobs and pods).
    pub fn component_selector(&self, component: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_SET.to_owned(), self.name.to_owned()),
            (LABEL_COMPONENT.to_owned(), component.to_owned()),
        ])
    }

    fn labels_of(&self, mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
        labels.insert(LABEL_NAME.into(), "marketprism-collector".into());
        labels.insert(LABEL_INSTANCE.into(), self.name.into());
        labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY.into());
        labels
    }

    /// The immutable Deployment selector: set, component and shard.
    pub fn selector(&self, component: Component, shard: Option<&str>) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::from([
            (LABEL_SET.to_owned(), self.name.to_owned()),
            (LABEL_COMPONENT.to_owned(), component.as_str().to_owned()),
        ]);
        if let Some(shard) = shard {
            labels.insert(LABEL_SHARD.into(), shard.into());
        }
        labels
    }

    /// Name, namespace, labels and the controller owner reference.
    pub fn meta(&self, name: &str, labels: BTreeMap<String, String>) -> Result<ObjectMeta> {
        let owner = self
            .set
            .controller_owner_ref(&())
            .ok_or(Error::MissingField("metadata.uid"))?;
        Ok(ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.to_owned()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        })
    }

    /// `<set>-<shard>`: the name of every per-shard object (and of the shard Lease).
    pub fn shard_object(&self, shard: &str) -> String {
        format!("{}-{shard}", self.name)
    }

    /// `<set>-report`: the report's CronJob and ConfigMap.
    pub fn report_object(&self) -> String {
        format!("{}-report", self.name)
    }

    /// `<set>-jobs`: the jobs' ConfigMap and work volume.
    pub fn jobs_object(&self) -> String {
        format!("{}-{JOBS_COMPONENT}", self.name)
    }

    /// `<set>-verify`, `<set>-backfill`: a job kind's CronJob.
    pub fn job_object(&self, kind: JobKind) -> String {
        format!("{}-{}", self.name, kind.as_str())
    }

    pub fn sink_object(&self) -> String {
        format!("{}-sink", self.name)
    }

    pub fn metrics_service(&self) -> String {
        format!("{}-metrics", self.name)
    }
}

/// Label selector matching everything the operator created for `set_name`.
pub fn owned_selector(set_name: &str) -> String {
    format!("{LABEL_SET}={set_name},{LABEL_MANAGED_BY}={MANAGED_BY}")
}

/// Build every child object for `set` under `plan`.
pub fn children(set: &CollectorSet, plan: &[Shard], options: &BuildOptions) -> Result<Children> {
    let owner = Owner::of(set)?;
    let spec = &set.spec;
    let mut out = Children::default();
    for shard in plan {
        let object = owner.shard_object(&shard.name);
        let config = PodConfig {
            main: render::shard_config(spec, shard, &object, owner.namespace)?,
            sidecar: render::sidecar_sink_config(spec, shard, &object)?,
        };
        let labels = owner.labels(Component::Collector, Some(&shard.name));
        out.config_maps
            .push(config_map(&owner, &object, labels.clone(), &config)?);
        out.service_accounts
            .push(service_account(&owner, &object, labels.clone())?);
        out.roles.push(lease_role(&owner, &object, labels.clone())?);
        out.role_bindings
            .push(role_binding(&owner, &object, labels.clone())?);
        out.leases.push(lease(&owner, &object, labels.clone())?);
        out.deployments.push(deployment(
            &owner,
            &object,
            Component::Collector,
            Some(&shard.name),
            spec.replicas_per_shard,
            &config,
            options,
        )?);
        out.pod_disruption_budgets.push(pod_disruption_budget(
            &owner,
            &object,
            Component::Collector,
            Some(&shard.name),
        )?);
    }
    if let Some(main) = render::sink_config(spec, &owner.sink_object())? {
        let object = owner.sink_object();
        let config = PodConfig {
            main,
            sidecar: None,
        };
        let labels = owner.labels(Component::Sink, None);
        out.config_maps
            .push(config_map(&owner, &object, labels, &config)?);
        out.deployments.push(deployment(
            &owner,
            &object,
            Component::Sink,
            None,
            spec.sink.replicas,
            &config,
            options,
        )?);
        out.pod_disruption_budgets.push(pod_disruption_budget(
            &owner,
            &object,
            Component::Sink,
            None,
        )?);
    }
    out.services.push(metrics_service(&owner)?);
    if let Some((config, cron_job)) = report(&owner, options)? {
        out.config_maps.push(config);
        out.cron_jobs.push(cron_job);
    }
    let scheduled = jobs(&owner, options)?;
    out.config_maps.extend(scheduled.config_map);
    out.persistent_volume_claims.extend(scheduled.work_volume);
    out.cron_jobs.extend(scheduled.cron_jobs);
    Ok(out)
}

/// The ConfigMap's contents and the hash annotation value are the same rendering.
fn config_map(
    owner: &Owner<'_>,
    name: &str,
    labels: BTreeMap<String, String>,
    config: &PodConfig,
) -> Result<ConfigMap> {
    let mut meta = owner.meta(name, labels)?;
    meta.annotations = Some(BTreeMap::from([(
        ANNOTATION_CONFIG_HASH.to_owned(),
        config.hash(),
    )]));
    let mut data = BTreeMap::from([(render::CONFIG_KEY.to_owned(), config.main.yaml.clone())]);
    if let Some(sidecar) = &config.sidecar {
        data.insert(render::SIDECAR_CONFIG_KEY.to_owned(), sidecar.yaml.clone());
    }
    Ok(ConfigMap {
        metadata: meta,
        data: Some(data),
        ..ConfigMap::default()
    })
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
