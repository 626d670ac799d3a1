//! The pod template shared by collector shards and the sink: hardened, probed, secrets from refs.

use super::{ANNOTATION_CONFIG_HASH, BuildOptions, Component, Owner};
use crate::render::{
    CONFIG_DIR, CONFIG_KEY, METRICS_PORT, PodConfig, SIDECAR_CONFIG_KEY, SIDECAR_METRICS_PORT,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

/// Non-root uid/gid the image runs as (distroless `nonroot`).
pub const RUN_AS: i64 = 65532;
pub const METRICS_PORT_NAME: &str = "metrics";
pub const SIDECAR_METRICS_PORT_NAME: &str = "sink-metrics";

/// Pod template for `component`; `object` names the ConfigMap and (collector) the ServiceAccount.
/// A collector whose `config` has a sidecar also runs the shard's sink next to it.
pub fn pod_template(
    owner: &Owner<'_>,
    object: &str,
    component: Component,
    shard: Option<&str>,
    config: &PodConfig,
    options: &BuildOptions,
) -> PodTemplateSpec {
    let spec = &owner.set.spec;
    let mut containers = vec![match component {
        Component::Collector => container(
            owner,
            Main {
                name: "collector",
                subcommand: "run",
                config_key: CONFIG_KEY,
                port: METRICS_PORT,
                port_name: METRICS_PORT_NAME,
                clickhouse_credentials: false,
                readiness: true,
                resources: spec.resources.clone().unwrap_or_else(default_resources),
            },
            options,
        ),
        Component::Sink => container(
            owner,
            Main {
                name: "sink",
                subcommand: "sink",
                config_key: CONFIG_KEY,
                port: METRICS_PORT,
                port_name: METRICS_PORT_NAME,
                clickhouse_credentials: true,
                readiness: true,
                resources: spec
                    .sink
                    .resources
                    .clone()
                    .or_else(|| spec.resources.clone())
                    .unwrap_or_else(default_resources),
            },
            options,
        ),
    }];
    if component == Component::Collector && config.sidecar.is_some() {
        containers.push(container(
            owner,
            Main {
                name: "sink",
                subcommand: "sink",
                config_key: SIDECAR_CONFIG_KEY,
                port: SIDECAR_METRICS_PORT,
                port_name: SIDECAR_METRICS_PORT_NAME,
                clickhouse_credentials: true,
                readiness: false,
                resources: spec
                    .sink
                    .resources
                    .clone()
                    .unwrap_or_else(sidecar_resources),
            },
            options,
        ));
    }
    let (service_account, automount) = match component {
        // Collectors read and renew their shard Lease; sinks never talk to the Kubernetes API.
        Component::Collector => (Some(object.to_owned()), true),
        Component::Sink => (None, false),
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(owner.labels(component, shard)),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_CONFIG_HASH.to_owned(),
                config.hash(),
            )])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers,
            service_account_name: service_account,
            automount_service_account_token: Some(automount),
            security_context: Some(pod_security_context()),
            termination_grace_period_seconds: Some(30),
            node_selector: spec.node_selector.clone(),
            tolerations: spec.tolerations.clone(),
            affinity: Some(
                spec.affinity
                    .clone()
                    .unwrap_or_else(|| spread_replicas(owner.selector(component, shard))),
            ),
            volumes: Some(config_and_tmp_volumes(object)),
            ..PodSpec::default()
        }),
    }
}

/// The ConfigMap `config_map` and a small `/tmp` (the root filesystem is read-only).
pub(super) fn config_and_tmp_volumes(config_map: &str) -> Vec<Volume> {
    vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map.to_owned(),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit: Some(Quantity("64Mi".into())),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
    ]
}

/// The config read-only at `config_dir` ([`CONFIG_DIR`] but for the jobs), and `/tmp`.
pub(super) fn config_and_tmp_mounts(config_dir: &str) -> Vec<VolumeMount> {
    vec![
        VolumeMount {
            name: "config".into(),
            mount_path: config_dir.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        },
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        },
    ]
}

/// What differs between the containers of the pods.
struct Main {
    name: &'static str,
    subcommand: &'static str,
    config_key: &'static str,
    port: u16,
    port_name: &'static str,
    clickhouse_credentials: bool,
    /// Whether the container's readiness counts for the pod's. Not for a sink sidecar: while
    /// ClickHouse is away JetStream buffers, and that must not stall the shard's rollouts or
    /// mark a publishing collector unavailable (its lag shows in the sink's metrics instead).
    readiness: bool,
    resources: ResourceRequirements,
}

/// A container of the collector's image (the spec's, else the operator's default) running
/// `marketprism-collector <args>`: collector and sink pods, the report and job CronJobs.
pub(crate) fn collector_container(
    name: &str,
    spec: &crate::crd::CollectorSetSpec,
    options: &BuildOptions,
    args: Vec<String>,
) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| options.default_image.clone()),
        ),
        image_pull_policy: spec.image_pull_policy.map(|p| p.as_str().to_owned()),
        command: Some(vec!["marketprism-collector".into()]),
        args: Some(args),
        ..Container::default()
    }
}

fn container(owner: &Owner<'_>, m: Main, options: &BuildOptions) -> Container {
    let base = collector_container(
        m.name,
        &owner.set.spec,
        options,
        vec![
            m.subcommand.into(),
            "--config".into(),
            format!("{CONFIG_DIR}/{}", m.config_key),
        ],
    );
    Container {
        ports: Some(vec![ContainerPort {
            name: Some(m.port_name.into()),
            container_port: i32::from(m.port),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        env: Some(env(owner, m.clickhouse_credentials, options)),
        liveness_probe: Some(probe("/livez", m.port_name, 10, 3)),
        readiness_probe: m.readiness.then(|| probe("/readyz", m.port_name, 5, 2)),
        resources: Some(m.resources),
        security_context: Some(container_security_context()),
        volume_mounts: Some(config_and_tmp_mounts(CONFIG_DIR)),
        ..base
    }
}

/// `POD_NAME`/`POD_NAMESPACE` from the downward API; credentials only as Secret key references
/// (ClickHouse's only for sink containers).
fn env(owner: &Owner<'_>, clickhouse_credentials: bool, options: &BuildOptions) -> Vec<EnvVar> {
    let field = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let spec = &owner.set.spec;
    let mut env = vec![
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
    ];
    env.extend(nats_env(spec, options));
    if clickhouse_credentials {
        env.extend(clickhouse_env(spec));
    }
    env
}

/// NATS's credentials as Secret key references: the keys the Secret holds (`options.nats_auth`).
pub(super) fn nats_env(spec: &crate::crd::CollectorSetSpec, options: &BuildOptions) -> Vec<EnvVar> {
    let Some(r) = &spec.nats.credentials_secret_ref else {
        return Vec::new();
    };
    let mut env = Vec::new();
    if options.nats_auth.user_password {
        env.push(secret("MARKETPRISM_NATS_USER", &r.name, &r.user_key));
        env.push(secret(
            "MARKETPRISM_NATS_PASSWORD",
            &r.name,
            &r.password_key,
        ));
    }
    if options.nats_auth.token {
        env.push(secret("MARKETPRISM_NATS_TOKEN", &r.name, &r.token_key));
    }
    env
}

/// Never optional: a pod must not start without the credentials it was given (the reconciler
/// checks the Secret first and references only the NATS keys it holds).
fn secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// ClickHouse's credentials as Secret key references, when the spec names a Secret.
pub(super) fn clickhouse_env(spec: &crate::crd::CollectorSetSpec) -> Vec<EnvVar> {
    let Some(r) = spec
        .clickhouse
        .as_ref()
        .and_then(|c| c.credentials_secret_ref.as_ref())
    else {
        return Vec::new();
    };
    vec![
        secret("MARKETPRISM_CLICKHOUSE_USER", &r.name, &r.user_key),
        secret("MARKETPRISM_CLICKHOUSE_PASSWORD", &r.name, &r.password_key),
    ]
}

fn probe(path: &str, port_name: &str, period_s: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(port_name.into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_s),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

pub(super) fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("100m".into())),
            ("memory".to_owned(), Quantity("256Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("1Gi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

/// A sidecar sink holds at most its shard's batches: less than a shared sink.
fn sidecar_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("50m".into())),
            ("memory".to_owned(), Quantity("128Mi".into())),
        ])),
        limits: Some(BTreeMap::from([(
            "memory".to_owned(),
            Quantity("512Mi".into()),
        )])),
        ..ResourceRequirements::default()
    }
}

fn seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..SeccompProfile::default()
    }
}

pub fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        seccomp_profile: Some(seccomp()),
        ..PodSecurityContext::default()
    }
}

pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(seccomp()),
        ..SecurityContext::default()
    }
}

/// Prefer active and standby on different nodes, so one node loss does not stop a shard.
fn spread_replicas(selector: BTreeMap<String, String>) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector),
                            ..LabelSelector::default()
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}
