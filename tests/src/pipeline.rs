//! Harness of the pipeline tests (`tests/tests/pipeline_*.rs`): one isolated run per test (its own
//! subject prefix, streams, consumer and databases on the shared servers), publishing, and row counts.

use crate::servers::{env_or_skip, unique_name};
use async_nats::jetstream;
use marketprism_config::tls::ClientTls;
use marketprism_config::{BatchConfig, ClickHouseConfig, NatsConfig, SinkConfig, StreamLimits};
use marketprism_model::{DataType, Event};
use marketprism_pipeline::publish::{PublishStats, run_nats_output, streams};
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use marketprism_telemetry::Health;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// `MARKETPRISM_TEST_CLICKHOUSE_CTL`: a script taking `stop` / `start` for the test ClickHouse server.
pub const CLICKHOUSE_CTL: &str = "MARKETPRISM_TEST_CLICKHOUSE_CTL";

pub fn clickhouse_ctl(test: &str) -> Option<String> {
    env_or_skip(CLICKHOUSE_CTL, test)
}

pub type Counts = BTreeMap<DataType, u64>;

pub struct Run {
    pub name: String,
    pub nats: NatsConfig,
    pub sink: SinkConfig,
    pub js: jetstream::Context,
    pub ch: clickhouse::Client,
}

impl Run {
    /// A run with unique names; every batch flushes after `max_wait_ms` (tests want rows quickly).
    pub async fn new(tag: &str, nats_url: &str, clickhouse_url: &str, max_wait_ms: u64) -> Run {
        Self::new_with_tls(
            tag,
            nats_url,
            clickhouse_url,
            max_wait_ms,
            ClientTls::default(),
        )
        .await
    }

    /// [`Run::new`] whose clients (publisher, sink, and the test's own) trust `tls`: for `tls://` NATS
    /// and `https://` ClickHouse URLs. Every client is built by the collector's own builders.
    pub async fn new_with_tls(
        tag: &str,
        nats_url: &str,
        clickhouse_url: &str,
        max_wait_ms: u64,
        tls: ClientTls,
    ) -> Run {
        let name = unique_name(tag);
        let upper = name.to_ascii_uppercase();
        let limits = |s: &str| StreamLimits {
            name: format!("{upper}_{s}"),
            max_bytes: 256 * 1024 * 1024,
            max_age_s: 3_600,
            duplicate_window_s: 120,
        };
        let nats = NatsConfig {
            url: nats_url.to_owned(),
            market_data_stream: limits("MARKET_DATA"),
            orderbook_stream: limits("ORDERBOOK_SNAP"),
            subject_prefix: name.clone(),
            tls: tls.clone(),
            ..NatsConfig::default()
        };
        let batching = DataType::ALL
            .into_iter()
            .map(|d| {
                (
                    d,
                    BatchConfig {
                        max_rows: 5_000,
                        max_wait_ms,
                    },
                )
            })
            .collect();
        let sink = SinkConfig {
            nats: nats.clone(),
            clickhouse: ClickHouseConfig {
                url: clickhouse_url.to_owned(),
                hot_database: format!("{name}_hot"),
                cold_database: format!("{name}_cold"),
                tls,
                ..ClickHouseConfig::default()
            },
            consumer: format!("{name}-sink"),
            batching,
            max_ack_pending: Some(100_000),
            ack_wait_s: 5,
            fetch_batch: 1_000,
            dead_letter_stream: limits("DEAD_LETTER"),
            subjects: Vec::new(),
            inactive_threshold_s: None,
        };
        let client = streams::connect(&nats, "marketprism-test")
            .await
            .expect("connect to the test NATS server");
        let ch = clickhouse_client(&sink.clickhouse);
        Run {
            name,
            nats,
            sink,
            js: jetstream::new(client),
            ch,
        }
    }

    /// Publish `events` through the real publisher and wait until it has them all acked.
    pub async fn publish(&self, events: Vec<Event>) -> PublishStats {
        self.publish_with(self.nats.clone(), events).await
    }

    pub async fn publish_with(&self, nats: NatsConfig, events: Vec<Event>) -> PublishStats {
        let (tx, rx) = mpsc::channel(1_024);
        let publisher = tokio::spawn(run_nats_output(
            nats,
            rx,
            Health::new(),
            CancellationToken::new(),
        ));
        for e in events {
            tx.send(e).await.expect("publisher alive");
        }
        drop(tx);
        tokio::time::timeout(Duration::from_secs(60), publisher)
            .await
            .expect("publisher finishes within 60 s")
            .expect("publisher task")
            .expect("publisher result")
    }

    /// `count()` per table, with or without FINAL; a table that does not exist yet counts 0.
    pub async fn counts(&self, with_final: bool) -> Counts {
        let mut counts = Counts::new();
        for d in DataType::ALL {
            let sql = format!(
                "SELECT count() FROM {}_hot.{d}{}",
                self.name,
                if with_final { " FINAL" } else { "" }
            );
            let n = self.ch.query(&sql).fetch_one::<u64>().await.unwrap_or(0);
            counts.insert(d, n);
        }
        counts
    }

    /// Wait until `count() FINAL` per table equals `expected`; panics with the last counts otherwise.
    pub async fn wait_for_counts(&self, expected: &Counts, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.counts(true).await;
            if &got == expected {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("rows after {timeout:?}: got {got:?}, expected {expected:?}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn consumer_info(&self, stream: &str) -> jetstream::consumer::Info {
        self.try_consumer_info(stream)
            .await
            .expect("the sink's durable consumer exists")
    }

    /// The sink's consumer on `stream` once nothing waits for delivery or an ack (the sink acks
    /// after ClickHouse has the rows, so the acks trail the rows by a moment); panics after `within`.
    pub async fn wait_consumer_drained(
        &self,
        stream: &str,
        within: Duration,
    ) -> jetstream::consumer::Info {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let info = self.consumer_info(stream).await;
            if (info.num_pending, info.num_ack_pending) == (0, 0) {
                return info;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "messages still pending or unacked after {within:?}: {info:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The sink's durable consumer on `stream`, if the sink created it already.
    pub async fn try_consumer_info(&self, stream: &str) -> Option<jetstream::consumer::Info> {
        let durable = format!("{}-{stream}", self.sink.consumer);
        let consumer: jetstream::consumer::PullConsumer = self
            .js
            .get_consumer_from_stream(&durable, stream)
            .await
            .ok()?;
        consumer.get_info().await.ok()
    }

    /// Delete the run's streams and databases (best effort).
    pub async fn cleanup(&self) {
        for s in [
            &self.nats.market_data_stream.name,
            &self.nats.orderbook_stream.name,
            &self.sink.dead_letter_stream.name,
        ] {
            let _ = self.js.delete_stream(s).await;
        }
        for db in ["hot", "cold"] {
            let _ = self
                .ch
                .query(&format!("DROP DATABASE IF EXISTS {}_{db}", self.name))
                .execute()
                .await;
        }
    }
}

/// The state of `stream` (messages, sequences) as the server reports it now.
pub async fn stream_state(js: &jetstream::Context, stream: &str) -> jetstream::stream::State {
    js.get_stream(stream)
        .await
        .expect("stream exists")
        .info()
        .await
        .expect("stream info")
        .state
        .clone()
}

/// Every event stored in `stream`, in stream order: one per message, or each of a publish batch.
/// Reads message by message (`get_raw_message`), for the small streams of a test.
pub async fn stored_events(js: &jetstream::Context, stream: &str) -> Vec<Event> {
    let stream = js.get_stream(stream).await.expect("stream exists");
    let state = stream.cached_info().state.clone();
    let mut events = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let Ok(m) = stream.get_raw_message(seq).await else {
            continue; // deleted (limits, discard old)
        };
        events
            .extend(marketprism_model::wire::decode(&m.payload).expect("a stored payload decodes"));
    }
    events
}

/// Rows expected per table for `events` (each natural key once).
pub fn expected_counts(events: &[Event]) -> Counts {
    let mut keys: BTreeMap<DataType, std::collections::BTreeSet<String>> = BTreeMap::new();
    for e in events {
        keys.entry(e.data_type()).or_default().insert(e.msg_id());
    }
    DataType::ALL
        .into_iter()
        .map(|d| (d, keys.get(&d).map_or(0, |k| k.len() as u64)))
        .collect()
}

/// Poll `check` every 100 ms until it is true; panics with `what` after `timeout`.
pub async fn eventually<F: FnMut() -> bool>(what: &str, timeout: Duration, mut check: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
