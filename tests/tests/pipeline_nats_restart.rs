//! NATS stops and starts again while the publisher publishes and the sink consumes: the publisher
//! buffers and sends again what was not acked (same message ids), the streams store every event
//! once, and every row lands exactly once.
//! Alone in its file (its own test binary), because it stops the shared NATS server.
#![forbid(unsafe_code)]

use marketprism_config::NatsConfig;
use marketprism_model::Event;
use marketprism_model::synthetic::synthetic_events;
use marketprism_pipeline::publish::run_nats_output;
use marketprism_pipeline::sink::run_sink;
use marketprism_telemetry::Health;
use marketprism_tests::pipeline::{Run, eventually, expected_counts, stored_events};
use marketprism_tests::servers::{clickhouse_url, env_or_skip, nats_url};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// `MARKETPRISM_TEST_NATS_CTL`: a script taking `stop` / `start` for the test NATS server.
const NATS_CTL: &str = "MARKETPRISM_TEST_NATS_CTL";

fn ctl(script: &str, action: &str) {
    let status = std::process::Command::new(script)
        .arg(action)
        .status()
        .expect("run the NATS control script");
    assert!(status.success(), "{script} {action}: {status}");
}

/// Starts NATS again if the test fails while it is stopped, so later tests still have it.
struct StartOnDrop<'a>(&'a str);

impl Drop for StartOnDrop<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new(self.0).arg("start").status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_stream_loses_nothing_and_stores_nothing_twice() {
    let test = "nats_restart_mid_stream_loses_nothing_and_stores_nothing_twice";
    let (Some(nats), Some(ch), Some(script)) = (
        nats_url(test),
        clickhouse_url(test),
        env_or_skip(NATS_CTL, test),
    ) else {
        return;
    };
    let run = Run::new("pl_natsdown", &nats, &ch, 200).await;
    let sink_health = Health::new();
    let stop = CancellationToken::new();
    let sink = tokio::spawn(run_sink(
        run.sink.clone(),
        sink_health.clone(),
        stop.clone(),
    ));
    eventually("sink ready", Duration::from_secs(30), || {
        sink_health.is_ready()
    })
    .await;

    // A steady feed of 3000 events over ~3 s; NATS is down from ~1 s to ~2.5 s of it, so some
    // publishes are in flight when it stops: their acks never come and they are sent again.
    marketprism_tests::logs::init();
    let events = synthetic_events(61, 3_000);
    let publisher_config = NatsConfig {
        ack_timeout_ms: 1_000,
        // The feed ends right after NATS is back; the drain must not be what decides. Once in CI-like
        // load (3 builds beside it) nothing was acked in the 7.5 s between the restart and the
        // default 10 s deadline: with the logs above a repeat says why.
        drain_timeout_ms: 30_000,
        ..run.nats.clone()
    };
    let (tx, rx) = mpsc::channel(64);
    let publisher_health = Health::new();
    let publisher = tokio::spawn(run_nats_output(
        publisher_config,
        rx,
        publisher_health.clone(),
        CancellationToken::new(),
    ));
    let feed = {
        let events = events.clone();
        tokio::spawn(async move {
            for chunk in events.chunks(10) {
                for e in chunk {
                    tx.send(e.clone()).await.expect("publisher alive");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    ctl(&script, "stop");
    let restart = StartOnDrop(&script);
    eventually(
        "publisher not ready while NATS is down",
        Duration::from_secs(10),
        || !publisher_health.is_ready(),
    )
    .await;
    eventually(
        "sink not ready while NATS is down",
        Duration::from_secs(10),
        || !sink_health.is_ready(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    ctl(&script, "start");
    drop(restart);

    feed.await.expect("feed task");
    let stats = tokio::time::timeout(Duration::from_secs(60), publisher)
        .await
        .expect("publisher drains within 60 s")
        .expect("publisher task")
        .expect("publisher result");
    assert_eq!(stats.received, 3_000, "{stats:?}");
    assert_eq!(
        stats.dropped,
        0,
        "buffered, never dropped: {stats:?}; publisher health {:?}",
        publisher_health.snapshot()
    );
    eprintln!("publisher across the restart: {stats:?}");

    // Every event stored once: a resend of a publish that had landed is dropped as a duplicate
    // (the server rebuilds its duplicate window from the stored messages when it starts).
    // Counted in events: a message holds one event or a publish batch of several.
    let mut stored = Vec::new();
    for name in [
        &run.nats.market_data_stream.name,
        &run.nats.orderbook_stream.name,
    ] {
        stored.extend(stored_events(&run.js, name).await);
    }
    let ids: std::collections::HashSet<String> = stored.iter().map(Event::msg_id).collect();
    assert_eq!(
        (stored.len(), ids.len()),
        (3_000, 3_000),
        "each event stored exactly once"
    );

    let expected = expected_counts(&events);
    run.wait_for_counts(&expected, Duration::from_secs(90))
        .await;
    eventually(
        "sink ready again after NATS came back",
        Duration::from_secs(30),
        || sink_health.is_ready(),
    )
    .await;

    stop.cancel();
    sink.await.expect("sink task").expect("sink result");
    run.cleanup().await;
}
