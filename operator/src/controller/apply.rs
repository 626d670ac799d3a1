//! The I/O half of a reconcile: server-side apply every child, then remove retired ones.

use super::status::ShardObservation;
use crate::builders::{Children, owned_selector};
use crate::{FIELD_MANAGER, Result};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
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
    apply(client, namespace, &c.service_accounts).await?;
    apply(client, namespace, &c.roles).await?;
    apply(client, namespace, &c.role_bindings).await?;
    let leases = apply(client, namespace, &c.leases).await?;
    let deployments = apply(client, namespace, &c.deployments).await?;
    apply(client, namespace, &c.pod_disruption_budgets).await?;
    apply(client, namespace, &c.services).await?;
    let mut applied = Applied::default();
    for lease in leases {
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
    }
}

async fn prune<K: Child>(
    client: &Client,
    namespace: &str,
    selector: &str,
    keep: &BTreeSet<String>,
) -> Result<Vec<String>> {
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let mut deleted = Vec::new();
    for object in api.list(&ListParams::default().labels(selector)).await? {
        let name = object.name_any();
        if !keep.contains(&name) {
            api.delete(&name, &DeleteParams::background()).await?;
            deleted.push(format!("{}/{name}", K::kind(&())));
        }
    }
    Ok(deleted)
}

fn names<K: Resource>(objects: &[K]) -> BTreeSet<String> {
    objects.iter().map(|o| o.name_any()).collect()
}

/// Delete every object labelled as the set's that the current plan does not contain.
/// Returns `Kind/name` of what was deleted.
pub async fn prune_children(
    client: &Client,
    namespace: &str,
    set_name: &str,
    c: &Children,
) -> Result<Vec<String>> {
    let sel = owned_selector(set_name);
    let mut deleted = Vec::new();
    // Workloads first, so pods stop before their config and access disappear.
    deleted.extend(prune::<Deployment>(client, namespace, &sel, &names(&c.deployments)).await?);
    deleted.extend(
        prune::<PodDisruptionBudget>(client, namespace, &sel, &names(&c.pod_disruption_budgets))
            .await?,
    );
    deleted.extend(prune::<Service>(client, namespace, &sel, &names(&c.services)).await?);
    deleted.extend(prune::<Lease>(client, namespace, &sel, &names(&c.leases)).await?);
    deleted.extend(prune::<RoleBinding>(client, namespace, &sel, &names(&c.role_bindings)).await?);
    deleted.extend(prune::<Role>(client, namespace, &sel, &names(&c.roles)).await?);
    deleted.extend(
        prune::<ServiceAccount>(client, namespace, &sel, &names(&c.service_accounts)).await?,
    );
    deleted.extend(prune::<ConfigMap>(client, namespace, &sel, &names(&c.config_maps)).await?);
    Ok(deleted)
}
