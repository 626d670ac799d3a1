//! Reconciles with missing Secrets, data types a venue does not offer, and both sink placements.

use super::*;

#[tokio::test]
async fn data_types_a_venue_does_not_offer_are_reported_and_build_no_shard() {
    // Stored before the CRD refused it (or on an apiserver without CEL): status must say it.
    let mut set = prod();
    set.spec.exchanges[0].data_types = vec![
        crate::crd::DataTypeName::Trades,
        crate::crd::DataTypeName::FundingRates,
        crate::crd::DataTypeName::VolatilityIndices,
    ];
    let (result, calls) = reconcile_in(World::new(set)).await;
    assert_eq!(result.unwrap(), Action::requeue(IDLE_RESYNC));
    assert!(applied(&calls, "deployments").is_empty(), "no shard built");
    let status = status_patch(&calls);
    let degraded = status.condition("Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert!(
        degraded
            .message
            .contains("spec.exchanges[0].dataTypes: binance_spot offers only [orderbooks, trades]"),
        "{}",
        degraded.message
    );
}

#[tokio::test]
async fn a_missing_credentials_secret_is_degraded_naming_it_and_nothing_is_applied() {
    let mut world = World::new(prod());
    world.secrets.remove("nats-creds");
    world.secrets.insert("ch-creds", vec!["user"]);
    let (result, calls) = reconcile_in(world).await;
    assert_eq!(result.unwrap(), Action::requeue(RESYNC));
    assert!(
        calls
            .iter()
            .all(|c| c.method != Method::PATCH || c.path.ends_with("/status")),
        "no pods that would start without their credentials"
    );
    let status = status_patch(&calls);
    let degraded = status.condition("Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "MissingSecret")
    );
    assert!(
        degraded
            .message
            .contains("Secret markets/nats-creds not found"),
        "{}",
        degraded.message
    );
    assert!(
        degraded.message.contains(
            "Secret markets/ch-creds has no key \"password\" (spec.clickhouse.credentialsSecretRef.passwordKey)"
        ),
        "{}",
        degraded.message
    );
    assert_eq!(condition(&status, "Ready").0, "False");
    assert!(events(&calls).contains(&"MissingSecret".to_owned()));
}

#[tokio::test]
async fn pods_reference_exactly_the_keys_the_secret_holds_and_never_optionally() {
    let mut world = World::new(prod());
    world.secrets.insert("nats-creds", vec!["token"]);
    let (result, calls) = reconcile_in(world).await;
    result.unwrap();
    let deployment = calls
        .iter()
        .find(|c| c.method == Method::PATCH && c.resource() == "deployments")
        .unwrap();
    let env = deployment.body["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let refs: Vec<(&str, &str, bool)> = env
        .iter()
        .filter_map(|e| {
            let r = &e["valueFrom"]["secretKeyRef"];
            r.is_object().then(|| {
                (
                    e["name"].as_str().unwrap(),
                    r["key"].as_str().unwrap(),
                    r["optional"].as_bool().unwrap_or(false),
                )
            })
        })
        .collect();
    assert_eq!(refs, [("MARKETPRISM_NATS_TOKEN", "token", false)]);
}

#[tokio::test]
async fn sidecar_placement_applies_no_sink_deployment_and_a_sink_in_every_collector_pod() {
    let mut world = World::new(prod_with_sidecars());
    // A sink Deployment left from the shared placement: retired like a shard once rolled out.
    world.existing.insert(
        "deployments",
        vec![
            json!({"metadata": {"name": "prod-sink", "namespace": "markets",
                                 "labels": {"marketprism.io/collectorset": "prod"}}}),
        ],
    );
    let (result, calls) = reconcile_in(world).await;
    result.unwrap();
    assert_eq!(
        applied(&calls, "deployments"),
        ["prod-s0", "prod-s1", "prod-s2"]
    );
    assert_eq!(
        applied(&calls, "configmaps"),
        ["prod-s0", "prod-s1", "prod-s2"]
    );
    for c in calls
        .iter()
        .filter(|c| c.method == Method::PATCH && c.resource() == "deployments")
    {
        let containers = c.body["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = containers
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["collector", "sink"], "{}", c.name());
        assert_eq!(containers[1]["args"][2], "/etc/marketprism/sink.yaml");
    }
    let sink_cm = calls
        .iter()
        .find(|c| c.method == Method::PATCH && c.resource() == "configmaps")
        .unwrap();
    let yaml = sink_cm.body["data"]["sink.yaml"].as_str().unwrap();
    assert!(
        yaml.contains("consumer: marketprism-sink-prod-s0"),
        "{yaml}"
    );
    let deleted: Vec<(&str, &str)> = calls
        .iter()
        .filter(|c| c.method == Method::DELETE)
        .map(|c| (c.resource(), c.name()))
        .collect();
    assert_eq!(deleted, [("deployments", "prod-sink")]);
    let status = status_patch(&calls);
    assert_eq!(
        condition(&status, "Ready"),
        ("True".into(), "AllShardsServing".into()),
        "no sink Deployment to wait for"
    );
}

#[tokio::test]
async fn deployment_placement_waits_for_the_sink_deployment() {
    let mut world = World::new(prod());
    world.deployments_ready = false;
    let (_, calls) = reconcile_in(world).await;
    let status = status_patch(&calls);
    let ready = status.condition("Ready").unwrap();
    assert!(
        ready.message.contains("sink not ready"),
        "{}",
        ready.message
    );
    let sink = calls
        .iter()
        .find(|c| {
            c.method == Method::PATCH && c.name() == "prod-sink" && c.resource() == "deployments"
        })
        .expect("the shared sink Deployment");
    let containers = sink.body["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["args"][0], "sink");
}
