use super::*;
use crate::crd::Venue;
use crate::fixtures::{collector_set, exchange, spec, symbols};
use crate::planner;
use k8s_openapi::api::core::v1::{Container, PodSpec};

fn options() -> BuildOptions {
    BuildOptions {
        default_image: "ghcr.io/marketprism/marketprism-collector:0.1.0".into(),
        ..BuildOptions::default()
    }
}

fn build(set: &CollectorSet) -> Children {
    let plan = planner::plan(&set.spec, &[]);
    children(set, &plan, &options()).unwrap()
}

/// With the shared sink Deployment (`sidecar_tests.rs` covers the default, sidecars).
fn sample() -> CollectorSet {
    let mut set = collector_set(
        "prod",
        spec(vec![exchange(Venue::BinanceSpot, symbols(30))], 10),
    );
    set.spec.sink.placement = crate::crd::SinkPlacement::Deployment;
    set
}

fn pod_spec(d: &Deployment) -> &PodSpec {
    d.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

fn container(d: &Deployment) -> &Container {
    &pod_spec(d).containers[0]
}

fn hash_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()[ANNOTATION_CONFIG_HASH]
        .clone()
}

#[test]
fn one_set_of_objects_per_shard_plus_sink_and_service() {
    let c = build(&sample());
    let names = |v: Vec<Option<String>>| v.into_iter().map(Option::unwrap).collect::<Vec<_>>();
    assert_eq!(
        names(
            c.deployments
                .iter()
                .map(|d| d.metadata.name.clone())
                .collect()
        ),
        ["prod-s0", "prod-s1", "prod-s2", "prod-sink"]
    );
    assert_eq!(c.leases.len(), 3, "sink holds no lock");
    assert_eq!(c.config_maps.len(), 4);
    assert_eq!(c.pod_disruption_budgets.len(), 4);
    assert_eq!(c.roles.len(), 3);
    assert_eq!(c.services.len(), 1);
    for d in &c.deployments {
        let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "CollectorSet");
        assert_eq!(owner.controller, Some(true));
        assert_eq!(d.metadata.namespace.as_deref(), Some("markets"));
    }
    assert_eq!(c.deployments[0].spec.as_ref().unwrap().replicas, Some(2));
}

#[test]
fn pods_are_hardened() {
    for d in build(&sample()).deployments {
        let pod = pod_spec(&d);
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(
            psc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let sc = container(&d).security_context.as_ref().unwrap();
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(sc.read_only_root_filesystem, Some(true));
        assert_eq!(sc.run_as_non_root, Some(true));
        assert_eq!(
            sc.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_owned()])
        );
        assert!(sc.capabilities.as_ref().unwrap().add.is_none());
    }
}

#[test]
fn probes_hit_livez_and_readyz_on_the_metrics_port() {
    let c = build(&sample());
    let ctr = container(&c.deployments[0]);
    let live = ctr
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    let ready = ctr
        .readiness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(live.path.as_deref(), Some("/livez"));
    assert_eq!(ready.path.as_deref(), Some("/readyz"));
    assert_eq!(live.port, IntOrString::String("metrics".into()));
    let port = &ctr.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.container_port),
        (Some("metrics"), 9100)
    );
    assert_eq!(
        ctr.args.as_ref().unwrap(),
        &["run", "--config", "/etc/marketprism/config.yaml"]
    );
    let sink = container(&c.deployments[3]);
    assert_eq!(sink.args.as_ref().unwrap()[0], "sink");
}

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

#[test]
fn credentials_come_from_secret_refs_and_pod_name_from_downward_api() {
    let c = build(&sample());
    let env = |d: &Deployment| -> BTreeMap<String, k8s_openapi::api::core::v1::EnvVar> {
        container(d)
            .env
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| (e.name.clone(), e))
            .collect()
    };
    let collector = env(&c.deployments[0]);
    let pod_name = collector["POD_NAME"].value_from.as_ref().unwrap();
    assert_eq!(
        pod_name.field_ref.as_ref().unwrap().field_path,
        "metadata.name"
    );
    let user = collector["MARKETPRISM_NATS_USER"]
        .value_from
        .as_ref()
        .unwrap();
    let key = user.secret_key_ref.as_ref().unwrap();
    assert_eq!(
        (key.name.as_str(), key.key.as_str()),
        ("nats-creds", "user")
    );
    assert_eq!(
        key.optional,
        Some(false),
        "pods never start without credentials"
    );
    assert!(
        !collector.contains_key("MARKETPRISM_NATS_TOKEN"),
        "only the keys the Secret holds (user+password unless the reconciler found a token)"
    );
    assert!(
        !collector.contains_key("MARKETPRISM_CLICKHOUSE_PASSWORD"),
        "collectors never see ClickHouse credentials"
    );
    assert!(
        collector.values().all(|e| e.value.is_none()),
        "no literal values"
    );
    let sink = env(&c.deployments[3]);
    let pw = sink["MARKETPRISM_CLICKHOUSE_PASSWORD"]
        .value_from
        .as_ref()
        .unwrap();
    assert_eq!(pw.secret_key_ref.as_ref().unwrap().name, "ch-creds");
    for cm in &c.config_maps {
        let yaml = &cm.data.as_ref().unwrap()["config.yaml"];
        assert!(
            !yaml.contains("password") && !yaml.contains("ch-creds"),
            "{yaml}"
        );
    }
}

#[test]
fn config_hash_changes_only_with_the_shard_config() {
    let set = sample();
    let before = build(&set);
    let mut changed = set.clone();
    changed.spec.exchanges[0].orderbook = Some(crate::crd::OrderBookSpec {
        depth: Some(100),
        ..Default::default()
    });
    let after = build(&changed);
    assert_ne!(
        hash_of(&before.deployments[0]),
        hash_of(&after.deployments[0])
    );
    assert_eq!(
        hash_of(&before.deployments[3]),
        hash_of(&after.deployments[3]),
        "sink config does not depend on order book depth"
    );
    assert_eq!(
        hash_of(&before.deployments[0]),
        hash_of(&build(&set).deployments[0])
    );
    let cm_hash = before.config_maps[0].metadata.annotations.as_ref().unwrap()
        [ANNOTATION_CONFIG_HASH]
        .clone();
    assert_eq!(cm_hash, hash_of(&before.deployments[0]));
}

#[test]
fn each_shard_gets_its_own_lease_role_and_account() {
    let c = build(&sample());
    let role = &c.roles[1];
    assert_eq!(role.metadata.name.as_deref(), Some("prod-s1"));
    let rule = &role.rules.as_ref().unwrap()[0];
    assert_eq!(rule.resource_names, Some(vec!["prod-s1".to_owned()]));
    assert_eq!(
        pod_spec(&c.deployments[1]).service_account_name.as_deref(),
        Some("prod-s1")
    );
    assert_eq!(
        pod_spec(&c.deployments[3]).automount_service_account_token,
        Some(false)
    );
    let binding = &c.role_bindings[1];
    assert_eq!(binding.role_ref.name, "prod-s1");
    assert_eq!(binding.subjects.as_ref().unwrap()[0].name, "prod-s1");
    assert_eq!(
        c.leases[1].spec.as_ref().unwrap().holder_identity,
        None,
        "the operator never sets the holder"
    );
}

#[test]
fn no_sink_without_clickhouse_and_image_defaults() {
    let mut set = sample();
    set.spec.clickhouse = None;
    set.spec.image = Some("registry.local/mp:dev".into());
    let c = build(&set);
    assert_eq!(c.deployments.len(), 3);
    assert_eq!(
        container(&c.deployments[0]).image.as_deref(),
        Some("registry.local/mp:dev")
    );
    assert_eq!(
        container(&build(&sample()).deployments[0]).image.as_deref(),
        Some("ghcr.io/marketprism/marketprism-collector:0.1.0")
    );
}

#[path = "sidecar_tests.rs"]
mod sidecar_tests;
