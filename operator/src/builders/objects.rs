//! One builder per child kind (besides the ConfigMap in `mod.rs` and the pod template in `pod.rs`).

use super::{BuildOptions, Component, Owner, pod_template};
use crate::Result;
use crate::rbac;
use crate::render::{LEASE_DURATION_S, METRICS_PORT, PodConfig, SIDECAR_METRICS_PORT};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Service, ServiceAccount, ServicePort, ServiceSpec};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Collector shard or sink Deployment. Rolls one new pod at a time and never removes a ready pod
/// before its successor is ready, so a shard always has a warm standby to hand the Lease to.
pub fn deployment(
    owner: &Owner<'_>,
    name: &str,
    component: Component,
    shard: Option<&str>,
    replicas: i32,
    config: &PodConfig,
    options: &BuildOptions,
) -> Result<Deployment> {
    Ok(Deployment {
        metadata: owner.meta(name, owner.labels(component, shard))?,
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(owner.selector(component, shard)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            revision_history_limit: Some(3),
            template: pod_template(owner, name, component, shard, config, options),
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

/// At most one pod of a shard (or of the sink) evicted at a time; never blocks drains entirely.
pub fn pod_disruption_budget(
    owner: &Owner<'_>,
    name: &str,
    component: Component,
    shard: Option<&str>,
) -> Result<PodDisruptionBudget> {
    Ok(PodDisruptionBudget {
        metadata: owner.meta(name, owner.labels(component, shard))?,
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(owner.selector(component, shard)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    })
}

/// The shard lock. The operator owns only `leaseDurationSeconds`; holder fields belong to collectors,
/// which may `get`/`update` but not create it (RBAC cannot scope `create` by name).
pub fn lease(owner: &Owner<'_>, name: &str, labels: BTreeMap<String, String>) -> Result<Lease> {
    Ok(Lease {
        metadata: owner.meta(name, labels)?,
        spec: Some(LeaseSpec {
            lease_duration_seconds: Some(LEASE_DURATION_S as i32),
            ..LeaseSpec::default()
        }),
    })
}

pub fn service_account(
    owner: &Owner<'_>,
    name: &str,
    labels: BTreeMap<String, String>,
) -> Result<ServiceAccount> {
    Ok(ServiceAccount {
        metadata: owner.meta(name, labels)?,
        ..ServiceAccount::default()
    })
}

/// `get`/`update` on this shard's Lease only.
pub fn lease_role(owner: &Owner<'_>, name: &str, labels: BTreeMap<String, String>) -> Result<Role> {
    Ok(Role {
        metadata: owner.meta(name, labels)?,
        rules: Some(rbac::collector_rules(name)),
    })
}

pub fn role_binding(
    owner: &Owner<'_>,
    name: &str,
    labels: BTreeMap<String, String>,
) -> Result<RoleBinding> {
    Ok(RoleBinding {
        metadata: owner.meta(name, labels)?,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(owner.namespace.into()),
            ..Subject::default()
        }]),
    })
}

/// One metrics Service per set over all its collector and sink pods (scrape target; no traffic).
pub fn metrics_service(owner: &Owner<'_>) -> Result<Service> {
    let mut labels = owner.labels(Component::Collector, None);
    labels.remove(super::LABEL_COMPONENT);
    Ok(Service {
        metadata: owner.meta(&owner.metrics_service(), labels)?,
        spec: Some(ServiceSpec {
            selector: Some(BTreeMap::from([(
                super::LABEL_SET.to_owned(),
                owner.name.to_owned(),
            )])),
            // Sidecar sinks listen on their own port; pods without it just have no endpoint there.
            ports: Some(vec![
                ServicePort {
                    name: Some(super::METRICS_PORT_NAME.into()),
                    port: i32::from(METRICS_PORT),
                    target_port: Some(IntOrString::String(super::METRICS_PORT_NAME.into())),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some(super::SIDECAR_METRICS_PORT_NAME.into()),
                    port: i32::from(SIDECAR_METRICS_PORT),
                    target_port: Some(IntOrString::String(super::SIDECAR_METRICS_PORT_NAME.into())),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                },
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    })
}
