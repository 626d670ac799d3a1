//! The default sink placement: a sink container in every collector pod, one durable per shard.

use super::*;
use crate::crd::{DataTypeName, SinkPlacement};
use serde_yaml::Value;

fn sidecars() -> CollectorSet {
    let mut set = collector_set(
        "prod",
        spec(
            vec![
                exchange(Venue::BinanceSpot, symbols(12)),
                exchange(Venue::DeribitDerivatives, vec!["BTC-USD".into()]),
            ],
            10,
        ),
    );
    set.spec.exchanges[1].data_types = vec![DataTypeName::Trades, DataTypeName::VolatilityIndices];
    set
}

fn sink_yaml(cm: &ConfigMap) -> Value {
    serde_yaml::from_str(&cm.data.as_ref().unwrap()["sink.yaml"]).unwrap()
}

#[test]
fn sidecar_is_the_default_and_no_sink_deployment_is_built() {
    assert_eq!(sidecars().spec.sink.placement, SinkPlacement::Sidecar);
    let c = build(&sidecars());
    let names: Vec<_> = c
        .deployments
        .iter()
        .map(|d| d.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["prod-s0", "prod-s1"]);
    assert_eq!(c.config_maps.len(), 2, "no sink ConfigMap");
    for d in &c.deployments {
        let containers = &pod_spec(d).containers;
        let sink = &containers[1];
        assert_eq!(
            (containers.len(), sink.name.as_str()),
            (2, "sink"),
            "{:?}",
            d.metadata.name
        );
        assert_eq!(
            sink.args.as_ref().unwrap(),
            &["sink", "--config", "/etc/marketprism/sink.yaml"]
        );
        let port = &sink.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.container_port),
            (Some("sink-metrics"), 9101),
            "its own port in the shared network namespace"
        );
        let probe = sink
            .liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(probe.port, IntOrString::String("sink-metrics".into()));
        assert!(
            sink.readiness_probe.is_none(),
            "a ClickHouse outage (JetStream buffers) does not make the collector pod unready"
        );
        assert!(containers[0].readiness_probe.is_some());
        let env: Vec<&str> = sink
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert!(env.contains(&"MARKETPRISM_CLICKHOUSE_PASSWORD"), "{env:?}");
        let collector_env: Vec<&str> = containers[0]
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert!(
            !collector_env.contains(&"MARKETPRISM_CLICKHOUSE_PASSWORD"),
            "the collector container never sees ClickHouse credentials"
        );
        let memory = &sink.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"];
        assert_eq!(memory.0, "512Mi");
        assert!(
            sink.security_context
                .as_ref()
                .unwrap()
                .read_only_root_filesystem
                == Some(true)
        );
    }
}

#[test]
fn each_shard_consumes_only_its_subjects_through_its_own_durable() {
    let set = sidecars();
    let plan = planner::plan(&set.spec, &[]);
    let c = build(&set);
    let mut covered = Vec::new();
    for (shard, cm) in plan.iter().zip(&c.config_maps) {
        let sink = &sink_yaml(cm)["sink"];
        assert_eq!(
            sink["consumer"].as_str().unwrap(),
            format!("marketprism-sink-prod-{}", shard.name)
        );
        assert_eq!(sink["inactive_threshold_s"].as_u64(), Some(86_400));
        assert_eq!(sink["clickhouse"]["async_insert"], Value::Bool(true));
        let subjects: Vec<&str> = sink["subjects"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for unit in &shard.units {
            let any = format!("*.{}.*.{}", unit.venue.as_str(), unit.symbol);
            let books = format!("orderbook.{}.*.{}", unit.venue.as_str(), unit.symbol);
            assert!(subjects.contains(&any.as_str()), "{any} in {subjects:?}");
            // Deribit collects no order books here: no filter on that stream for it.
            assert_eq!(
                subjects.contains(&books.as_str()),
                unit.venue == Venue::BinanceSpot,
                "{books}"
            );
            covered.push(unit.clone());
        }
        assert_eq!(
            subjects.len(),
            shard.units.len()
                + shard
                    .units
                    .iter()
                    .filter(|u| u.venue == Venue::BinanceSpot)
                    .count(),
            "nothing of other shards"
        );
    }
    assert_eq!(covered.len(), 13, "every declared symbol is some shard's");
}

#[test]
fn a_sink_change_rolls_the_collector_pods() {
    let set = sidecars();
    let before = build(&set);
    let mut changed = set.clone();
    changed.spec.sink.batching.trades = Some(crate::crd::BatchSpec {
        max_rows: 1_000,
        max_wait_ms: 500,
    });
    let after = build(&changed);
    assert_eq!(
        before.config_maps[0].data.as_ref().unwrap()["config.yaml"],
        after.config_maps[0].data.as_ref().unwrap()["config.yaml"],
        "the collector's own config is unchanged"
    );
    assert_ne!(
        hash_of(&before.deployments[0]),
        hash_of(&after.deployments[0])
    );
    let cm_hash =
        after.config_maps[0].metadata.annotations.as_ref().unwrap()[ANNOTATION_CONFIG_HASH].clone();
    assert_eq!(cm_hash, hash_of(&after.deployments[0]));
}

#[test]
fn no_sidecar_without_clickhouse() {
    let mut set = sidecars();
    set.spec.clickhouse = None;
    let c = build(&set);
    assert!(
        c.deployments
            .iter()
            .all(|d| pod_spec(d).containers.len() == 1)
    );
    assert!(
        c.config_maps
            .iter()
            .all(|cm| !cm.data.as_ref().unwrap().contains_key("sink.yaml"))
    );
}

#[test]
fn the_metrics_service_exposes_the_sidecar_port_too() {
    let c = build(&sidecars());
    let ports: Vec<_> = c.services[0]
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()
        .iter()
        .map(|p| (p.name.clone().unwrap(), p.port))
        .collect();
    assert_eq!(
        ports,
        [
            ("metrics".to_owned(), 9100),
            ("sink-metrics".to_owned(), 9101)
        ]
    );
}
