//! The operator's sink configs against the real NATS and ClickHouse servers: two sinks started
//! with one shard's sidecar config (as the active and the standby pod of a shard run them) share
//! its durable consumer, take only that shard's symbols, and land every row exactly once, also
//! when one of them stops midway; the shared sink Deployment's config takes everything.

use marketprism_config::{Config, SinkConfig};
use marketprism_model::Event;
use marketprism_model::synthetic::synthetic_events;
use marketprism_operator::builders::{self, BuildOptions};
use marketprism_operator::crd::{CollectorSet, SinkPlacement};
use marketprism_operator::planner;
use marketprism_pipeline::sink::run_sink;
use marketprism_telemetry::Health;
use marketprism_tests::pipeline::{Run, expected_counts};
use marketprism_tests::servers::{clickhouse_url, nats_url};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The synthetic events' venues and symbols, one shard per symbol (explicit groups), all types.
const SET: &str = r#"
apiVersion: marketprism.io/v1alpha1
kind: CollectorSet
metadata: {name: pipe, namespace: markets, uid: 00000000-0000-4000-8000-000000000001}
spec:
  exchanges:
    - venue: binance_spot
      symbols: [BTC-USDT, ETH-USDT, SOL-USDT]
      dataTypes: [orderbooks, trades]
    - venue: okx_spot
      symbols: [BTC-USDT, ETH-USDT, SOL-USDT]
      dataTypes: [orderbooks, trades]
    - venue: binance_derivatives
      symbols: [BTC-USDT, ETH-USDT, SOL-USDT]
      dataTypes: [orderbooks, trades, funding_rates, open_interests, liquidations, lsr_top_positions, lsr_all_accounts]
    - venue: okx_derivatives
      symbols: [BTC-USDT, ETH-USDT, SOL-USDT]
      dataTypes: [orderbooks, trades, funding_rates, open_interests, liquidations, lsr_top_positions, lsr_all_accounts]
    - venue: deribit_derivatives
      symbols: [BTC-USD]
      dataTypes: [trades, volatility_indices]
  sharding:
    groups:
      - name: btc
        members:
          - {venue: binance_spot, symbols: [BTC-USDT]}
          - {venue: okx_spot, symbols: [BTC-USDT]}
          - {venue: binance_derivatives, symbols: [BTC-USDT]}
          - {venue: okx_derivatives, symbols: [BTC-USDT]}
  nats: {url: "nats://127.0.0.1:4222"}
  clickhouse: {url: "http://127.0.0.1:8123"}
"#;

/// The sink config the operator renders for `object` (`<set>-<shard>/sink.yaml`, or the shared
/// sink's `config.yaml`), parsed and validated by the collector.
fn operator_sink_config(set: &CollectorSet, object: &str, key: &str) -> SinkConfig {
    let plan = planner::plan(&set.spec, &[]);
    let children = builders::children(set, &plan, &BuildOptions::default()).unwrap();
    let cm = children
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(object))
        .unwrap_or_else(|| panic!("no ConfigMap {object}"));
    let yaml = &cm.data.as_ref().unwrap()[key];
    let config = Config::from_yaml(yaml).unwrap();
    config.validate().unwrap();
    config.sink.unwrap()
}

/// Point the operator's config at this run's isolated streams and databases; keep what the
/// operator decided (consumer name, subjects, consumer inactivity, async inserts).
fn on_run(run: &Run, operator: SinkConfig) -> SinkConfig {
    SinkConfig {
        consumer: format!("{}-{}", run.name, operator.consumer),
        subjects: operator.subjects,
        inactive_threshold_s: operator.inactive_threshold_s,
        clickhouse: marketprism_config::ClickHouseConfig {
            async_insert: operator.clickhouse.async_insert,
            ..run.sink.clickhouse.clone()
        },
        ..run.sink.clone()
    }
}

fn set() -> CollectorSet {
    serde_yaml::from_str(SET).unwrap()
}

async fn consumer_info(
    run: &Run,
    durable: &str,
    stream: &str,
) -> async_nats::jetstream::consumer::Info {
    let consumer: async_nats::jetstream::consumer::PullConsumer = run
        .js
        .get_consumer_from_stream(durable, stream)
        .await
        .unwrap_or_else(|e| panic!("consumer {durable} on {stream}: {e}"));
    consumer.get_info().await.unwrap()
}

fn in_shard(e: &Event, shard_symbols: &[(String, String)]) -> bool {
    shard_symbols
        .iter()
        .any(|(ex, sym)| *ex == e.exchange.as_str() && *sym == e.symbol.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sidecars_of_a_shard_share_its_consumer_and_land_its_rows_exactly_once() {
    let test = "two_sidecars_of_a_shard_share_its_consumer_and_land_its_rows_exactly_once";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let run = Run::new("op_sidecar", &nats, &ch, 200).await;
    let set = set();
    assert_eq!(
        set.spec.sink.placement,
        SinkPlacement::Sidecar,
        "the default"
    );
    let operator = operator_sink_config(&set, "pipe-g-btc", "sink.yaml");
    assert_eq!(operator.consumer, "marketprism-sink-pipe-g-btc");
    let config = on_run(&run, operator);

    let events = synthetic_events(23, 3_000);
    let shard: Vec<(String, String)> = [
        "binance_spot",
        "okx_spot",
        "binance_derivatives",
        "okx_derivatives",
    ]
    .into_iter()
    .map(|ex| (ex.to_owned(), "BTC-USDT".to_owned()))
    .collect();
    let (mine, others): (Vec<Event>, Vec<Event>) =
        events.iter().cloned().partition(|e| in_shard(e, &shard));
    assert!(
        mine.len() > 300 && others.len() > 300,
        "both kinds present: {} / {}",
        mine.len(),
        others.len()
    );
    let (first, second) = events.split_at(events.len() / 2);

    // The active and the standby pod's sidecars: the same config, so the same durable consumer.
    let (active_stop, standby_stop) = (CancellationToken::new(), CancellationToken::new());
    let active = tokio::spawn(run_sink(config.clone(), Health::new(), active_stop.clone()));
    let standby = tokio::spawn(run_sink(
        config.clone(),
        Health::new(),
        standby_stop.clone(),
    ));

    run.publish(first.to_vec()).await;
    let first_mine: Vec<Event> = first
        .iter()
        .filter(|e| in_shard(e, &shard))
        .cloned()
        .collect();
    run.wait_for_counts(&expected_counts(&first_mine), Duration::from_secs(60))
        .await;
    // Both sinks pull from the one consumer of each stream the shard has.
    let md = run.nats.market_data_stream.name.clone();
    let durable = format!("{}-{md}", config.consumer);
    let info = consumer_info(&run, &durable, &md).await;
    let mut filters = info.config.filter_subjects.clone();
    filters.sort();
    assert_eq!(
        filters,
        [
            format!("{}.*.binance_derivatives.*.BTC-USDT", run.name),
            format!("{}.*.binance_spot.*.BTC-USDT", run.name),
            format!("{}.*.okx_derivatives.*.BTC-USDT", run.name),
            format!("{}.*.okx_spot.*.BTC-USDT", run.name),
        ]
    );

    // Both pull from it: two clients' pull requests wait on the one consumer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let waiting = consumer_info(&run, &durable, &md).await.num_waiting;
        if waiting >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pull requests waiting on {durable}: {waiting}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The active pod goes away (rolling update): the standby's sidecar carries on alone.
    active_stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), active)
        .await
        .expect("sink stops")
        .unwrap()
        .unwrap();
    run.publish(second.to_vec()).await;
    let expected = expected_counts(&mine);
    run.wait_for_counts(&expected, Duration::from_secs(60))
        .await;
    // Exactly once without FINAL: no row of the shard inserted twice, none of other shards taken.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(run.counts(false).await, expected, "raw counts");
    // Everything of the shard gets acked: what the stopped sink had in hand is redelivered to the
    // standby after ack_wait (5 s). A redelivered message the stopped sink had already inserted
    // may add a raw copy (at-least-once); the ReplacingMergeTree key folds it under FINAL.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending = consumer_info(&run, &durable, &md).await;
        if (pending.num_pending, pending.num_ack_pending) == (0, 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "everything of the shard acked: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        run.counts(true).await,
        expected,
        "counts under FINAL after the redeliveries"
    );

    standby_stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), standby)
        .await
        .expect("sink stops")
        .unwrap()
        .unwrap();
    run.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_sink_deployment_config_takes_every_shard() {
    let test = "the_shared_sink_deployment_config_takes_every_shard";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let run = Run::new("op_shared", &nats, &ch, 200).await;
    let mut set = set();
    set.spec.sink.placement = SinkPlacement::Deployment;
    let operator = operator_sink_config(&set, "pipe-sink", "config.yaml");
    assert!(operator.subjects.is_empty());
    let config = on_run(&run, operator);
    let events = synthetic_events(29, 1_200);
    let stop = CancellationToken::new();
    let sink = tokio::spawn(run_sink(config, Health::new(), stop.clone()));
    run.publish(events.clone()).await;
    let expected = expected_counts(&events);
    run.wait_for_counts(&expected, Duration::from_secs(60))
        .await;
    assert_eq!(run.counts(false).await, expected, "raw counts");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), sink)
        .await
        .expect("sink stops")
        .unwrap()
        .unwrap();
    run.cleanup().await;
}
