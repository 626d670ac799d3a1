//! ClickHouse stops while the sink runs: it holds its batches unacked, reports not ready, folds the
//! redeliveries, and once ClickHouse is back every row lands exactly once.
//! Alone in its file (its own test binary), because it stops the shared ClickHouse server.
#![forbid(unsafe_code)]

use marketprism_model::synthetic::synthetic_events;
use marketprism_pipeline::sink::run_sink;
use marketprism_telemetry::Health;
use marketprism_tests::pipeline::{
    Run, clickhouse_ctl, eventually, expected_counts, stored_events, stream_state,
};
use marketprism_tests::servers::{clickhouse_url, nats_url};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

fn ctl(script: &str, action: &str) {
    let status = std::process::Command::new(script)
        .arg(action)
        .status()
        .expect("run the ClickHouse control script");
    assert!(status.success(), "{script} {action}: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_outage_loses_nothing_and_sink_is_not_ready_meanwhile() {
    let test = "clickhouse_outage_loses_nothing_and_sink_is_not_ready_meanwhile";
    let (Some(nats), Some(ch), Some(script)) =
        (nats_url(test), clickhouse_url(test), clickhouse_ctl(test))
    else {
        return;
    };
    marketprism_tests::logs::init();
    let run = Run::new("pl_chdown", &nats, &ch, 200).await;
    let health = Health::new();
    let stop = CancellationToken::new();
    let sink = tokio::spawn(run_sink(run.sink.clone(), health.clone(), stop.clone()));

    let events = synthetic_events(51, 1_800);
    let (before, during) = events.split_at(900);
    run.publish(before.to_vec()).await;
    run.wait_for_counts(&expected_counts(before), Duration::from_secs(60))
        .await;

    ctl(&script, "stop");
    let restarted = scopeguard(&script);
    run.publish(during.to_vec()).await;
    eventually(
        "sink not ready while ClickHouse is down",
        Duration::from_secs(30),
        || {
            health
                .snapshot()
                .get("clickhouse")
                .is_some_and(|s| !s.ready && s.reason.contains("insert failing"))
        },
    )
    .await;
    // Nothing of the second half is acked while ClickHouse is down; stay past ack_wait (5 s) so
    // redeliveries arrive and must be folded into the held batches.
    let md = run.nats.market_data_stream.name.clone();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let info = run.consumer_info(&md).await;
    // Everything of the second half in MARKET_DATA (order books have their own stream).
    let held = during
        .iter()
        .filter(|e| e.data_type() != marketprism_model::DataType::Orderbooks)
        .count();
    // In messages: every one stored after the first half's is delivered and unacked; in events
    // (a message holds one or a publish batch), they are exactly the second half's.
    let last = stream_state(&run.js, &md).await.last_sequence;
    assert_eq!(
        (info.num_ack_pending as u64, info.num_pending),
        (last - info.ack_floor.stream_sequence, 0),
        "second half held unacked: {info:?}"
    );
    let first_half_md = before
        .iter()
        .filter(|e| e.data_type() != marketprism_model::DataType::Orderbooks)
        .count();
    assert_eq!(
        stored_events(&run.js, &md).await.len(),
        first_half_md + held,
        "the unacked messages hold the second half"
    );
    assert!(
        info.num_redelivered > 0,
        "ack_wait passed, so JetStream redelivered: {info:?}"
    );
    assert!(!health.is_ready());

    drop(restarted); // ClickHouse starts again
    run.wait_for_counts(&expected_counts(&events), Duration::from_secs(90))
        .await;
    eventually("ready again", Duration::from_secs(10), || health.is_ready()).await;
    let raw = run.counts(false).await;
    assert_eq!(
        raw,
        expected_counts(&events),
        "redeliveries folded in the sink: no copies inserted"
    );

    stop.cancel();
    sink.await.unwrap().unwrap();
    run.cleanup().await;
}

/// Restarts ClickHouse when dropped, also when an assertion failed, so later tests find it up.
struct Restart(String);

impl Drop for Restart {
    fn drop(&mut self) {
        // No panic here: this may run while unwinding.
        match std::process::Command::new(&self.0).arg("start").status() {
            Ok(s) if s.success() => {}
            other => eprintln!("cannot restart ClickHouse with {} start: {other:?}", self.0),
        }
    }
}

fn scopeguard(script: &str) -> Restart {
    Restart(script.to_owned())
}
