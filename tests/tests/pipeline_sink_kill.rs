//! The sink is killed with SIGKILL while it holds batches, and restarted: every row lands exactly once.
#![forbid(unsafe_code)]

use marketprism_config::{BatchConfig, Config, SinkConfig};
use marketprism_model::DataType;
use marketprism_model::synthetic::synthetic_events;
use marketprism_tests::pipeline::{Run, expected_counts};
use marketprism_tests::servers::{clickhouse_url, nats_url};
use std::path::Path;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The real CLI when `MARKETPRISM_COLLECTOR_BIN` names it, else this crate's test-only stand-in.
fn sink_binary() -> String {
    std::env::var("MARKETPRISM_COLLECTOR_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_test-sink").to_owned())
}

fn start_sink(sink: &SinkConfig, dir: &Path, name: &str) -> Child {
    let mut config = Config::from_yaml("http:\n  listen: 127.0.0.1:0\n").unwrap();
    config.sink = Some(sink.clone());
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    Command::new(sink_binary())
        .args(["sink", "--config"])
        .arg(&path)
        .kill_on_drop(true)
        .spawn()
        .expect("start the sink")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_killed_mid_batch_then_restarted_lands_every_row_once() {
    let test = "sink_killed_mid_batch_then_restarted_lands_every_row_once";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let run = Run::new("pl_kill", &nats, &ch, 200).await;
    // 200 events of every table; MARKET_DATA holds all but the books.
    let n = 200 * DataType::ALL.len() as u64;
    let md_events = n - 200;
    let events = synthetic_events(21, n as usize);
    let expected = expected_counts(&events);
    // One event per message (no publish batching), so the consumer's message counts below are event counts.
    let singles = marketprism_config::NatsConfig {
        batch_linger_ms: 0,
        ..run.nats.clone()
    };
    let stats = run.publish_with(singles, events).await;
    assert_eq!(stats.acked, n);

    // First sink: trades flush at 100 rows (the rest of them stay below that); every other type waits
    // 10 minutes, so the sink is killed holding batches.
    let mut holding = run.sink.clone();
    for d in DataType::ALL {
        let max_rows = if d == DataType::Trades { 100 } else { 5_000 };
        holding.batching.insert(
            d,
            BatchConfig {
                max_rows,
                max_wait_ms: 600_000,
            },
        );
    }
    let mut first = start_sink(&holding, dir.path(), "holding");
    let md = run.nats.market_data_stream.name.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let trades = run.counts(true).await[&DataType::Trades];
        let info = run.try_consumer_info(&md).await;
        let (ack_pending, pending) = info
            .as_ref()
            .map_or((0, 1), |i| (i.num_ack_pending, i.num_pending));
        // A first trades batch inserted and acked; everything else delivered and held unacked.
        if trades >= 100 && ack_pending as u64 == md_events - trades && pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sink never reached mid-batch: trades={trades} {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    first.kill().await.expect("SIGKILL the sink");
    let after_kill = run.counts(true).await;
    assert_eq!(
        after_kill[&DataType::FundingRates],
        0,
        "held batches were not inserted: {after_kill:?}"
    );

    // Second sink, normal batching: the unacked messages are redelivered after ack_wait (5 s).
    let mut second = start_sink(&run.sink, dir.path(), "normal");
    run.wait_for_counts(&expected, Duration::from_secs(90))
        .await;
    let raw = run.counts(false).await;
    assert_eq!(
        raw, expected,
        "no copies either: acked trades were not redelivered"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let info = run.consumer_info(&md).await;
        if info.num_ack_pending == 0 {
            assert!(
                info.num_redelivered == 0,
                "redelivered messages are acked too: {info:?}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages left unacked: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    second.start_kill().ok();
    let _ = second.wait().await;
    run.cleanup().await;
}
