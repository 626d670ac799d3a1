//! Synthetic events of all 8 types and gaps → publisher → JetStream → sink → ClickHouse, exactly once,
//! also when published twice (JetStream dedup) and when copies slip past dedup (ReplacingMergeTree):
//! the same events once batched and once alone carry other message ids, and the sink folds them.
#![forbid(unsafe_code)]

use async_nats::jetstream::message::PublishMessage;
use marketprism_config::NatsConfig;
use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Payload};
use marketprism_pipeline::sink::run_sink;
use marketprism_telemetry::Health;
use marketprism_tests::pipeline::{Run, expected_counts, stored_events, stream_state};
use marketprism_tests::servers::{clickhouse_url, nats_url};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_lands_exactly_once_even_when_published_twice() {
    let test = "every_type_lands_exactly_once_even_when_published_twice";
    let (Some(nats), Some(ch)) = (nats_url(test), clickhouse_url(test)) else {
        return;
    };
    let run = Run::new("pl_once", &nats, &ch, 200).await;
    // 200 events of every table (the 8 market types, gaps and the 4 signal types).
    let n = 200 * DataType::ALL.len() as u64;
    // MARKET_DATA holds every table but the books.
    let md_originals = n - 200;
    let events = synthetic_events(11, n as usize);
    let expected = expected_counts(&events);
    assert!(
        expected.values().all(|&n| n == 200),
        "every table fed: {expected:?}"
    );

    let health = Health::new();
    let stop = CancellationToken::new();
    let sink = tokio::spawn(run_sink(run.sink.clone(), health.clone(), stop.clone()));

    let first = run.publish(events.clone()).await;
    assert_eq!(
        (first.acked, first.duplicate_acks, first.dropped),
        (n, 0, 0)
    );
    run.wait_for_counts(&expected, Duration::from_secs(60))
        .await;
    assert!(health.is_ready(), "{:?}", health.snapshot());

    // The same events again, each as its own message (`batch_linger_ms: 0`; the first publish
    // batched them, under other ids): stored once more, and the time after that JetStream's duplicate
    // window recognizes every message id.
    let singles = NatsConfig {
        batch_linger_ms: 0,
        ..run.nats.clone()
    };
    let md = run.nats.market_data_stream.name.clone();
    let again = run.publish_with(singles.clone(), events.clone()).await;
    assert_eq!((again.acked, again.dropped), (n, 0));
    // An event alone in its linger was published under its own id the first time: recognized now.
    assert!(again.duplicate_acks < n / 2, "{again:?}");
    let md_events = stored_events(&run.js, &md).await.len() as u64;
    assert!(md_events > md_originals, "stored again under other ids");
    let second = run.publish_with(singles, events.clone()).await;
    assert_eq!((second.acked, second.duplicate_acks), (n, n));

    // Copies that slip past JetStream dedup (another id, e.g. after the window) reach the sink;
    // the ReplacingMergeTree natural key folds them.
    for e in events
        .iter()
        .filter(|e| e.data_type() == DataType::Trades)
        .take(50)
    {
        let subject = format!("{}.{}", run.name, e.subject());
        let msg = PublishMessage::build()
            .payload(serde_json::to_vec(e).unwrap().into())
            .message_id(format!("{}:replayed", e.msg_id()));
        run.js
            .send_publish(subject, msg)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let last = stream_state(&run.js, &md).await.last_sequence;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let info = loop {
        let i = run.consumer_info(&md).await;
        if i.num_pending == 0 && i.num_ack_pending == 0 && i.delivered.stream_sequence >= last {
            break i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer never caught up: {i:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(info.delivered.stream_sequence, last, "all delivered");
    assert_eq!(
        stored_events(&run.js, &md).await.len() as u64,
        md_events + 50,
        "the repeat added nothing, the 50 replays were stored"
    );
    run.wait_for_counts(&expected, Duration::from_secs(30))
        .await;
    let raw = run.counts(false).await;
    assert!(raw[&DataType::Trades] >= 200, "{raw:?}");

    // The rows are the events, not just the right number of them.
    let writer = marketprism_pipeline::store::ClickHouseWriter::connect(&run.sink.clickhouse)
        .await
        .unwrap();
    let gaps = writer
        .fetch_final::<marketprism_pipeline::store::rows::GapRow>(&format!("{}_hot", run.name))
        .await
        .unwrap();
    let mut stored: Vec<_> = gaps
        .iter()
        .map(|r| marketprism_pipeline::store::TableRow::to_event(r).unwrap())
        .collect();
    let mut sent: Vec<_> = events
        .iter()
        .filter(|e| matches!(e.payload, Payload::Gap(_)))
        .cloned()
        .collect();
    stored.sort_by_key(|e| e.msg_id());
    sent.sort_by_key(|e| e.msg_id());
    assert_eq!(stored, sent);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), sink)
        .await
        .expect("sink stops on shutdown")
        .unwrap()
        .unwrap();
    run.cleanup().await;
}
