//! The I/O half of a reconcile: server-side apply every child, then remove retired ones.

use super::status::ShardObservation;
use crate::builders::{Children, LABEL_SHARD, owned_selector};
use crate::{FIELD_MANAGER, Result};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// What the apply responses said about workloads, by object name.
#[derive(Debug, Default)]
pub struct Applied {
    pub deployments: BTreeMap<String, ShardObservation>,
    pub lock_holders: BTreeMap<String, Option<String>>,
    /// What each held Lease's holder says is not ready (`component: reason`), by Lease name.
    pub not_ready: BTreeMap<String, Vec<String>>,
}

trait Child:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
{
}
impl<K> Child for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
{
}

async fn apply<K: Child>(client: &Client, namespace: &str, objects: &[K]) -> Result<Vec<K>> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut out = Vec::with_capacity(objects.len());
    for object in objects {
        out.push(
            api.patch(&object.name_any(), &params, &Patch::Apply(object))
                .await?,
        );
    }
    Ok(out)
}

/// Apply everything, in dependency order: config and access before the pods that use them.
pub async fn apply_children(client: &Client, namespace: &str, c: &Children) -> Result<Applied> {
    apply(client, namespace, &c.config_maps).await?;
    apply(client, namespace, &c.persistent_volume_claims).await?;
    apply(client, namespace, &c.service_accounts).await?;
    apply(client, namespace, &c.roles).await?;
    apply(client, namespace, &c.role_bindings).await?;
    let leases = apply(client, namespace, &c.leases).await?;
    let deployments = apply(client, namespace, &c.deployments).await?;
    apply(client, namespace, &c.pod_disruption_budgets).await?;
    apply(client, namespace, &c.services).await?;
    apply(client, namespace, &c.cron_jobs).await?;
    let mut applied = Applied::default();
    for lease in leases {
        applied
            .not_ready
            .insert(lease.name_any(), holder_not_ready(&lease));
        applied
            .lock_holders
            .insert(lease.name_any(), lease_holder(&lease));
    }
    for d in deployments {
        applied.deployments.insert(d.name_any(), observe(&d));
    }
    Ok(applied)
}

/// The Lease holder, if any (an empty holder means released).
fn lease_holder(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
}

use marketprism_config::NOT_READY_ANNOTATION;

/// The holder's not-ready components as `component: reason` lines; nothing when the Lease is not held
/// (a released Lease keeps the last holder's note, which no longer describes a running pod).
pub fn holder_not_ready(lease: &Lease) -> Vec<String> {
    if lease_holder(lease).is_none() {
        return Vec::new();
    }
    let Some(raw) = lease.annotations().get(NOT_READY_ANNOTATION) else {
        return Vec::new();
    };
    match serde_json::from_str::<BTreeMap<String, String>>(raw) {
        Ok(map) => map
            .into_iter()
            .map(|(component, reason)| format!("{component}: {reason}"))
            .collect(),
        Err(e) => vec![format!("unreadable {NOT_READY_ANNOTATION} annotation: {e}")],
    }
}

/// Ready pods, and whether the Deployment controller has rolled out the current spec everywhere.
pub fn observe(d: &Deployment) -> ShardObservation {
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let current = status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    ShardObservation {
        ready_replicas: status.ready_replicas.unwrap_or(0),
        rolled_out: current
            && status.updated_replicas.unwrap_or(0) >= wanted
            && status.ready_replicas.unwrap_or(0) >= wanted
            && status.replicas.unwrap_or(0) <= wanted,
        lock_holder: None,
        not_ready: Vec::new(),
    }
}

/// An object labelled as the set's that the current plan does not contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub kind: &'static str,
    pub name: String,
    /// Its `marketprism.io/shard` label (set-wide objects have none).
    pub shard: Option<String>,
}

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

async fn list_stale<K: Child>(
    client: &Client,
    namespace: &str,
    selector: &str,
    keep: &BTreeSet<String>,
) -> Result<Vec<Stale>> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let listed = api.list(&ListParams::default().labels(selector)).await?;
    Ok(listed
        .into_iter()
        .filter(|o| !keep.contains(&o.name_any()))
        .map(|o| Stale {
            kind: kind_of::<K>(),
            shard: o.labels().get(LABEL_SHARD).cloned(),
            name: o.name_any(),
        })
        .collect())
}

fn kind_of<K: Resource<DynamicType = ()>>() -> &'static str {
    // The kinds below are fixed; a static str keeps `Stale` cheap to copy into status.
    match K::kind(&()).as_ref() {
        "Deployment" => "Deployment",
        "CronJob" => "CronJob",
        "PodDisruptionBudget" => "PodDisruptionBudget",
        "Service" => "Service",
        "Lease" => "Lease",
        "RoleBinding" => "RoleBinding",
        "Role" => "Role",
        "ServiceAccount" => "ServiceAccount",
        "ConfigMap" => "ConfigMap",
        "PersistentVolumeClaim" => "PersistentVolumeClaim",
        _ => "Object",
    }
}

fn names<K: Resource>(objects: &[K]) -> BTreeSet<String> {
    objects.iter().map(|o| o.name_any()).collect()
}

/// Every object labelled as the set's that the current plan does not contain, as it exists now
/// (listed on every reconcile, so status never reports from memory), workloads first.
pub async fn stale_children(
    client: &Client,
    namespace: &str,
    set_name: &str,
    c: &Children,
) -> Result<Vec<Stale>> {
    let sel = owned_selector(set_name);
    let mut stale = Vec::new();
    // Workloads first, so pods stop before their config and access disappear.
    stale.extend(list_stale::<Deployment>(client, namespace, &sel, &names(&c.deployments)).await?);
    stale.extend(list_stale::<CronJob>(client, namespace, &sel, &names(&c.cron_jobs)).await?);
    stale.extend(
        list_stale::<PodDisruptionBudget>(
            client,
            namespace,
            &sel,
            &names(&c.pod_disruption_budgets),
        )
        .await?,
    );
    stale.extend(list_stale::<Service>(client, namespace, &sel, &names(&c.services)).await?);
    stale.extend(list_stale::<Lease>(client, namespace, &sel, &names(&c.leases)).await?);
    stale.extend(
        list_stale::<RoleBinding>(client, namespace, &sel, &names(&c.role_bindings)).await?,
    );
    stale.extend(list_stale::<Role>(client, namespace, &sel, &names(&c.roles)).await?);
    stale.extend(
        list_stale::<ServiceAccount>(client, namespace, &sel, &names(&c.service_accounts)).await?,
    );
    stale.extend(list_stale::<ConfigMap>(client, namespace, &sel, &names(&c.config_maps)).await?);
    // Last: the jobs' work volume (with `spec.jobs` removed), after the CronJobs that mount it.
    stale.extend(
        list_stale::<PersistentVolumeClaim>(
            client,
            namespace,
            &sel,
            &names(&c.persistent_volume_claims),
        )
        .await?,
    );
    Ok(stale)
}

async fn delete<K: Child>(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        // Already gone (garbage collector, a previous reconcile): what we wanted.
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Delete `stale` objects in the order given.
pub async fn delete_stale(client: &Client, namespace: &str, stale: &[Stale]) -> Result<()> {
    for s in stale {
        match s.kind {
            "Deployment" => delete::<Deployment>(client, namespace, &s.name).await?,
            // Background propagation: its Jobs and their pods go with it.
            "CronJob" => delete::<CronJob>(client, namespace, &s.name).await?,
            "PodDisruptionBudget" => {
                delete::<PodDisruptionBudget>(client, namespace, &s.name).await?
            }
            "Service" => delete::<Service>(client, namespace, &s.name).await?,
            "Lease" => delete::<Lease>(client, namespace, &s.name).await?,
            "RoleBinding" => delete::<RoleBinding>(client, namespace, &s.name).await?,
            "Role" => delete::<Role>(client, namespace, &s.name).await?,
            "ServiceAccount" => delete::<ServiceAccount>(client, namespace, &s.name).await?,
            "ConfigMap" => delete::<ConfigMap>(client, namespace, &s.name).await?,
            // Its work directories go with it; kept (pvc-protection) until no pod mounts it.
            "PersistentVolumeClaim" => {
                delete::<PersistentVolumeClaim>(client, namespace, &s.name).await?
            }
            _ => {}
        }
    }
    Ok(())
}
