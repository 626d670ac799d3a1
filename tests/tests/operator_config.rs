//! The operator renders collector configs with its own structs; the collector must accept every
//! rendering, and the environment the pods get must be exactly what the collector reads.

use marketprism_config::{Config, EndpointsConfig, NatsCredentials};
use marketprism_operator::builders::{self, BuildOptions, Children};
use marketprism_operator::crd::{CollectorSet, EndpointsSpec, SinkPlacement, Venue};
use marketprism_operator::planner;
use std::collections::BTreeMap;
use std::path::Path;

fn sample(name: &str) -> CollectorSet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/samples")
        .join(name);
    let mut set: CollectorSet =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    set.metadata
        .namespace
        .get_or_insert_with(|| "markets".into());
    set.metadata.uid = Some("00000000-0000-4000-8000-000000000000".into());
    set
}

fn children(set: &CollectorSet) -> Children {
    let plan = planner::plan(&set.spec, &[]);
    builders::children(
        set,
        &plan,
        &BuildOptions {
            default_image: "collector:test".into(),
            ..BuildOptions::default()
        },
    )
    .unwrap()
}

/// Every config file of every ConfigMap, parsed and validated by the collector: `(name, config)`
/// for `config.yaml`, `(name + "/sink.yaml", config)` for a sidecar's (the report's criteria file
/// is checked by the report's own parser below).
fn rendered(c: &Children) -> Vec<(String, Config)> {
    let mut out = Vec::new();
    for cm in &c.config_maps {
        let name = cm.metadata.name.clone().unwrap();
        for (key, yaml) in cm.data.as_ref().unwrap() {
            if key == builders::CRITERIA_KEY {
                continue;
            }
            let config =
                Config::from_yaml(yaml).unwrap_or_else(|e| panic!("{name}/{key}: {e}\n{yaml}"));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{name}/{key}: {e}\n{yaml}"));
            let label = if key == "config.yaml" {
                name.clone()
            } else {
                format!("{name}/{key}")
            };
            out.push((label, config));
        }
    }
    out
}

fn with_shared_sink(mut set: CollectorSet) -> CollectorSet {
    set.spec.sink.placement = SinkPlacement::Deployment;
    set
}

#[test]
fn every_rendered_config_parses_and_validates_in_the_collector() {
    for name in ["collectorset-minimal.yaml", "collectorset-full.yaml"] {
        let set = sample(name);
        let configs = rendered(&children(&set));
        assert!(!configs.is_empty(), "{name}");
        rendered(&children(&with_shared_sink(set.clone())));
        // Every declared venue+symbol is collected by exactly one shard (the collectors: they hold
        // a Lease; the report's config lists every symbol to judge, and collects nothing).
        let mut seen = BTreeMap::new();
        for (object, config) in configs.iter().filter(|(_, c)| c.lease.is_some()) {
            for ex in &config.exchanges {
                for s in &ex.symbols {
                    let previous =
                        seen.insert((ex.exchange.to_string(), s.to_string()), object.clone());
                    assert!(previous.is_none(), "{}/{s} in two shards", ex.exchange);
                }
            }
        }
        let declared: usize = set.spec.exchanges.iter().map(|e| e.symbols.len()).sum();
        assert_eq!(seen.len(), declared, "{name}");
    }
}

#[test]
fn shard_configs_carry_their_lease_and_overrides_and_the_sink_its_batching() {
    let set = sample("collectorset-full.yaml");
    let configs = rendered(&children(&set));
    let (object, shard) = configs
        .iter()
        .find(|(n, _)| n == "production-g-btc")
        .unwrap();
    let lease = shard.lease.as_ref().expect("collector shards hold a lease");
    assert_eq!(
        (lease.name.as_str(), lease.namespace.as_str()),
        (object.as_str(), "marketprism")
    );
    let spot = shard
        .exchanges
        .iter()
        .find(|e| e.exchange.as_str() == "binance_spot")
        .unwrap();
    assert_eq!(
        (
            spot.orderbook.depth,
            spot.orderbook.snapshot_levels,
            spot.orderbook.snapshot_interval_ms
        ),
        (1000, 50, 500)
    );
    let nats = shard.outputs.nats.as_ref().unwrap();
    assert_eq!(nats.market_data_stream.max_bytes, 4_294_967_296);
    assert!(shard.sink.is_none());

    let (_, sidecar) = configs
        .iter()
        .find(|(n, _)| n == "production-g-btc/sink.yaml")
        .expect("the shard's sidecar sink config");
    let sidecar = sidecar.sink.as_ref().expect("sink section");
    assert_eq!(sidecar.consumer, "marketprism-sink-production-g-btc");
    let mut subjects = sidecar.subjects.clone();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "*.binance_derivatives.*.BTC-USDT",
            "*.binance_spot.*.BTC-USDT",
            "*.okx_derivatives.*.BTC-USDT",
            "orderbook.binance_derivatives.*.BTC-USDT",
            "orderbook.binance_spot.*.BTC-USDT",
            "orderbook.okx_derivatives.*.BTC-USDT",
        ]
    );
    assert!(sidecar.clickhouse.async_insert);
    let trades = sidecar.batch_for(marketprism_model::DataType::Trades);
    assert_eq!((trades.max_rows, trades.max_wait_ms), (50_000, 1_000));

    let shared = rendered(&children(&with_shared_sink(set)));
    let (_, sink) = shared.iter().find(|(n, _)| n == "production-sink").unwrap();
    let sink = sink.sink.as_ref().expect("sink section");
    assert!(sink.subjects.is_empty(), "the shared sink takes everything");
    assert_eq!(sink.inactive_threshold_s, None);
    assert_eq!(
        sink.clickhouse.url,
        "http://clickhouse.marketprism.svc:8123"
    );
    let trades = sink.batch_for(marketprism_model::DataType::Trades);
    assert_eq!((trades.max_rows, trades.max_wait_ms), (50_000, 1_000));
}

#[test]
fn pod_environment_is_what_the_collector_reads() {
    let set = with_shared_sink(sample("collectorset-full.yaml"));
    let c = children(&set);
    let sink_deployment = c
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("production-sink"))
        .unwrap();
    let env: Vec<String> = sink_deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.clone())
        .collect();
    // Pretend the kubelet resolved every variable, then let the collector read them.
    let values: BTreeMap<String, String> = env
        .iter()
        .map(|n| (n.clone(), format!("value-of-{n}")))
        .collect();
    let configs = rendered(&c);
    let (_, sink_config) = configs
        .iter()
        .find(|(n, _)| n == "production-sink")
        .unwrap();
    let mut sink_config = sink_config.clone();
    sink_config.apply_env(|k| values.get(k).cloned());
    let sink = sink_config.sink.as_ref().unwrap();
    assert_eq!(
        sink.clickhouse.password.as_deref(),
        Some("value-of-MARKETPRISM_CLICKHOUSE_PASSWORD")
    );
    assert!(
        matches!(&sink.nats.credentials, Some(NatsCredentials::UserPassword { user, .. }) if user == "value-of-MARKETPRISM_NATS_USER")
    );

    let (_, shard) = configs
        .iter()
        .find(|(n, _)| n == "production-g-btc")
        .unwrap();
    let mut shard = shard.clone();
    shard.apply_env(|k| (k == "POD_NAME").then(|| "production-g-btc-7d9f-abcde".to_owned()));
    assert_eq!(
        shard.lease.unwrap().holder,
        "production-g-btc-7d9f-abcde",
        "holder from the downward API"
    );
}

#[test]
fn endpoint_overrides_reach_the_collector_config() {
    let mut set = sample("collectorset-full.yaml");
    let binance_spot = set
        .spec
        .exchanges
        .iter_mut()
        .find(|e| e.venue == Venue::BinanceSpot)
        .unwrap();
    binance_spot.endpoints = Some(EndpointsSpec {
        ws_url: Some("ws://sim.marketprism.svc:9200/binance_spot".into()),
        rest_url: Some("http://sim.marketprism.svc:9200/binance_spot".into()),
    });
    let configs = rendered(&children(&set)); // parses and validates every shard in the collector
    let mut overridden = 0;
    for (object, config) in configs.iter().filter(|(n, _)| !n.ends_with("/sink.yaml")) {
        for ex in &config.exchanges {
            if ex.exchange.as_str() == "binance_spot" {
                overridden += 1;
                assert_eq!(
                    (
                        ex.endpoints.ws_url.as_deref(),
                        ex.endpoints.rest_url.as_deref()
                    ),
                    (
                        Some("ws://sim.marketprism.svc:9200/binance_spot"),
                        Some("http://sim.marketprism.svc:9200/binance_spot")
                    ),
                    "{object}"
                );
            } else {
                assert_eq!(ex.endpoints, EndpointsConfig::default(), "{object}");
            }
        }
    }
    assert!(overridden > 0, "binance_spot is collected by some shard");
}

#[test]
fn sidecar_environment_is_what_the_sink_reads() {
    let set = sample("collectorset-full.yaml");
    let c = children(&set);
    let shard = c
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("production-g-btc"))
        .unwrap();
    let containers = &shard
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers;
    assert_eq!(containers[1].name, "sink");
    let values: BTreeMap<String, String> = containers[1]
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.clone(), format!("value-of-{}", e.name)))
        .collect();
    let configs = rendered(&c);
    let (_, sidecar) = configs
        .iter()
        .find(|(n, _)| n == "production-g-btc/sink.yaml")
        .unwrap();
    let mut sidecar = sidecar.clone();
    sidecar.apply_env(|k| values.get(k).cloned());
    let sink = sidecar.sink.as_ref().unwrap();
    assert_eq!(
        sink.clickhouse.user.as_deref(),
        Some("value-of-MARKETPRISM_CLICKHOUSE_USER")
    );
    assert!(matches!(
        &sink.nats.credentials,
        Some(NatsCredentials::UserPassword { password, .. }) if password == "value-of-MARKETPRISM_NATS_PASSWORD"
    ));
    assert_eq!(sidecar.http.listen.port(), 9101, "not the collector's port");
}

/// The report CronJob's criteria file, rendered by the operator from `spec.report.criteria`, is
/// what the report command reads: overrides land, the rest keeps the harvester's defaults.
#[test]
fn the_report_criteria_the_operator_renders_are_what_the_report_reads() {
    use marketprism_model::DataType;
    let set = sample("collectorset-full.yaml");
    let c = children(&set);
    // The full sample also schedules jobs (`<set>-verify`, `<set>-backfill`).
    assert_eq!(
        c.cron_jobs
            .iter()
            .filter(|j| j
                .metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("-report")))
            .count(),
        1,
        "the full sample schedules a report"
    );
    let cm = c
        .config_maps
        .iter()
        .find(|m| {
            m.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("-report"))
        })
        .expect("the report's ConfigMap");
    let data = cm.data.as_ref().unwrap();
    let criteria = marketprism_report::Criteria::from_file_text(
        &data[builders::CRITERIA_KEY],
        "the report ConfigMap",
    )
    .unwrap();
    let trades = criteria.for_type(DataType::Trades);
    assert_eq!(trades.max_latency_p99_ms, Some(250.0));
    assert_eq!(
        trades.max_latency_p50_ms,
        Some(60.0),
        "not overridden: the default"
    );
    assert_eq!(
        criteria
            .for_type(DataType::Orderbooks)
            .max_empty_minute_ratio,
        Some(0.005)
    );
    let config = Config::from_yaml(&data["config.yaml"]).unwrap();
    config.validate().unwrap();
    assert!(config.sink.is_some(), "the report reads sink.clickhouse");
}
