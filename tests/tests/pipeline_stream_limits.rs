//! A JetStream stream at its `max_bytes` with the sink stopped: the stream refuses (`discard: new`)
//! instead of deleting unconsumed messages; the publisher holds that stream's events, is not ready
//! with the reason, keeps the other stream flowing, drops beyond its buffer and records those drops
//! as `overflow` gap rows once the limit is raised. Real nats-server and ClickHouse.
#![forbid(unsafe_code)]

use marketprism_config::NatsConfig;
use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Payload};
use marketprism_pipeline::publish::run_nats_output;
use marketprism_pipeline::sink::run_sink;
use marketprism_telemetry::Health;
use marketprism_tests::pipeline::{Run, eventually, stored_events, stream_state};
use marketprism_tests::servers::{clickhouse_url, nats_url};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_stream_refuses_and_every_drop_becomes_an_overflow_gap_row() {
    let test = "a_full_stream_refuses_and_every_drop_becomes_an_overflow_gap_row";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let mut run = Run::new("pl_limits", &nats, &ch, 200).await;
    let md = run.nats.market_data_stream.name.clone();
    let ob = run.nats.orderbook_stream.name.clone();
    // ~3,100 market-data events of ~400 bytes do not fit in 200 KiB; orderbooks have room.
    let small = NatsConfig {
        // Above the orderbooks of the run (308), which may all linger at once (publish batching)
        // while the full stream holds the shared buffer: they must never be dropped.
        buffer_capacity: 1_000,
        // Generous: a false ack timeout on a loaded machine would stall and drop orderbooks too.
        ack_timeout_ms: 10_000,
        drain_timeout_ms: 30_000,
        ..run.nats.clone()
    };
    let mut small = small;
    small.market_data_stream.max_bytes = 200 * 1024;

    let events = synthetic_events(71, 4_000);
    let orderbooks = events
        .iter()
        .filter(|e| e.data_type() == DataType::Orderbooks)
        .count() as u64;
    let health = Health::new();
    let (tx, rx) = mpsc::channel(256);
    let publisher = tokio::spawn(run_nats_output(
        small,
        rx,
        health.clone(),
        CancellationToken::new(),
    ));
    for e in events.clone() {
        // Never blocks for long: a refusing stream's events are held or dropped, not pushed back.
        tokio::time::timeout(Duration::from_secs(10), tx.send(e))
            .await
            .expect("the publisher keeps taking events while a stream refuses")
            .expect("publisher alive");
    }

    // The other stream keeps flowing.
    let js = run.js.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // In events: a message holds one or a publish batch.
        let stored = stored_events(&js, &ob).await.len() as u64;
        if stored == orderbooks {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "orderbooks stored: {stored} of {orderbooks}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eventually(
        "publisher not ready, naming the full stream",
        Duration::from_secs(10),
        || {
            health.snapshot().get("nats").is_some_and(|s| {
                !s.ready && s.reason.contains(&format!("stream {md} refuses publishes"))
            })
        },
    )
    .await;
    let reason = health.snapshot()["nats"].reason.clone();
    assert!(reason.contains("max_bytes"), "says what to raise: {reason}");
    // Nothing the sink had not consumed was deleted: the stream still starts at sequence 1.
    let full = stream_state(&js, &md).await;
    assert_eq!(full.first_sequence, 1, "{full:?}");
    assert_eq!(full.messages, full.last_sequence, "no hole: {full:?}");
    assert!(full.messages < 3_000, "the limit was reached: {full:?}");

    // The operator raises the limit; the sink (configured with it) updates the stream and consumes.
    run.sink.nats.market_data_stream.max_bytes = 64 * 1024 * 1024;
    let stop = CancellationToken::new();
    let sink = tokio::spawn(run_sink(run.sink.clone(), Health::new(), stop.clone()));
    eventually("publisher ready again", Duration::from_secs(30), || {
        health.is_ready()
    })
    .await;
    drop(tx);
    let stats = tokio::time::timeout(Duration::from_secs(60), publisher)
        .await
        .expect("publisher drains")
        .expect("publisher task")
        .expect("publisher result");
    eprintln!("full stream: {full:?}\npublisher: {stats:?}");
    assert!(stats.dropped > 0, "the buffer overflowed: {stats:?}");
    assert!(stats.overflow_gaps > 0, "{stats:?}");
    assert_eq!(
        stats.acked,
        stats.received - stats.dropped + stats.overflow_gaps,
        "every event kept was stored: {stats:?}"
    );
    let md_state = stream_state(&js, &md).await;
    let ob_state = stream_state(&js, &ob).await;
    assert_eq!(
        md_state.first_sequence, 1,
        "still nothing deleted: {md_state:?}"
    );
    // In events: a stored message holds one event or a publish batch of several.
    let stored = (stored_events(&js, &md).await.len() + stored_events(&js, &ob).await.len()) as u64;
    assert!(stored >= md_state.messages + ob_state.messages);

    // Every stored event lands; every trade that did not is inside an overflow gap row of its instrument.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows: u64 = run.counts(true).await.values().sum();
        if rows == stored {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rows {rows} of {stored} stored events"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let landed: BTreeSet<(String, String, String, String)> = run
        .ch
        .query(&format!(
            "SELECT exchange, market_type, symbol, trade_id FROM {}_hot.trades FINAL",
            run.name
        ))
        .fetch_all::<(String, String, String, String)>()
        .await
        .unwrap()
        .into_iter()
        .collect();
    let gaps: Vec<(String, String, String, i64, i64)> = run
        .ch
        .query(&format!(
            "SELECT exchange, market_type, symbol, start_ms, end_ms FROM {}_hot.gaps FINAL \
             WHERE cause = 'overflow' AND data_type = 'trades'",
            run.name
        ))
        .fetch_all()
        .await
        .unwrap();
    let mut missing = 0;
    for e in &events {
        let Payload::Trade(t) = &e.payload else {
            continue;
        };
        let (ex, mt, sym) = (
            e.exchange.to_string(),
            e.market_type.to_string(),
            e.symbol.to_string(),
        );
        if landed.contains(&(ex.clone(), mt.clone(), sym.clone(), t.trade_id.clone())) {
            continue;
        }
        missing += 1;
        assert!(
            gaps.iter().any(|(gx, gm, gs, start, end)| {
                (gx, gm, gs) == (&ex, &mt, &sym) && *start <= e.ts_ms && e.ts_ms <= *end
            }),
            "trade {} of {sym} at {} is neither stored nor inside an overflow gap: {gaps:?}",
            t.trade_id,
            e.ts_ms
        );
    }
    eprintln!(
        "trades not stored: {missing}, all inside {} overflow gap rows",
        gaps.len()
    );
    assert!(
        missing > 0,
        "some trades were dropped, so the coverage check checked something"
    );

    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), sink).await;
    run.cleanup().await;
}
