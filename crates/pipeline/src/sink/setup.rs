//! Sink start-up: wait for ClickHouse and NATS (not ready, with the reason, until both answer),
//! then create the streams, the dead-letter stream and one durable pull consumer per data stream.

use super::backoff::retry_delay;
use crate::error::{Error, Result};
use crate::publish::streams::{
    connect, data_stream_configs, ensure_stream, prefixed, stream_config,
};
use crate::store::ClickHouseWriter;
use async_nats::jetstream::{self, consumer};
use marketprism_config::SinkConfig;
use marketprism_telemetry::{Health, ReadinessGuard};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub type PullConsumer = consumer::Consumer<consumer::pull::Config>;

pub struct SinkParts {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub consumers: Vec<PullConsumer>,
    pub writer: ClickHouseWriter,
    pub nats_ready: ReadinessGuard,
    pub clickhouse_ready: ReadinessGuard,
}

/// `None` when shut down while waiting.
pub async fn setup(
    config: &SinkConfig,
    health: &Health,
    shutdown: &CancellationToken,
) -> Result<Option<SinkParts>> {
    let nats_ready = health.register("nats");
    let clickhouse_ready = health.register("clickhouse");
    nats_ready.not_ready("connecting to NATS");
    clickhouse_ready.not_ready("connecting to ClickHouse");

    let writer = match retry_until_ok(
        &clickhouse_ready,
        shutdown,
        "ClickHouse unreachable",
        || ClickHouseWriter::connect(&config.clickhouse),
    )
    .await
    {
        Some(w) => w,
        None => return Ok(None),
    };
    clickhouse_ready.ready();

    let client = connect(&config.nats, "marketprism-sink").await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(10))
        .build(client.clone());
    let consumers = match retry_until_ok(&nats_ready, shutdown, "NATS not ready", || {
        create_consumers(&js, config)
    })
    .await
    {
        Some(c) => c,
        None => return Ok(None),
    };
    nats_ready.ready();
    Ok(Some(SinkParts {
        client,
        js,
        consumers,
        writer,
        nats_ready,
        clickhouse_ready,
    }))
}

/// Retry `attempt` with jittered back-off until it succeeds (`Some`) or shutdown (`None`).
async fn retry_until_ok<T, F, Fut>(
    readiness: &ReadinessGuard,
    shutdown: &CancellationToken,
    what: &str,
    mut attempt: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut n = 0;
    loop {
        n += 1;
        match attempt().await {
            Ok(v) => return Some(v),
            Err(e) => {
                let reason = format!("{what}: {e}");
                tracing::warn!(attempt = n, "{reason}");
                readiness.not_ready(&reason);
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(retry_delay(n, rand::random())) => {}
        }
    }
}

/// Durable name of the consumer on `stream`: `{consumer}-{stream}`.
pub(crate) fn durable_name(config: &SinkConfig, stream: &str) -> String {
    format!("{}-{}", config.consumer, stream)
}

/// The `subjects` filter of `stream` (prefixed), or `None` when the stream gets no consumer.
/// Empty `subjects`: no filter, the whole stream.
pub(crate) fn stream_filter(config: &SinkConfig, orderbook_stream: bool) -> Option<Vec<String>> {
    if config.subjects.is_empty() {
        return Some(Vec::new());
    }
    let filter: Vec<String> = config
        .subjects
        .iter()
        .filter(|s| s.starts_with("orderbook.") == orderbook_stream)
        .map(|s| prefixed(&config.nats.subject_prefix, s))
        .collect();
    (!filter.is_empty()).then_some(filter)
}

pub(crate) fn consumer_config(
    config: &SinkConfig,
    durable: String,
    filter_subjects: Vec<String>,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(durable),
        filter_subjects,
        inactive_threshold: Duration::from_secs(config.inactive_threshold_s.unwrap_or(0)),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(config.ack_wait_s),
        max_ack_pending: config.max_ack_pending(),
        // Unlimited: a message that cannot be inserted yet must never be given up on.
        max_deliver: -1,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    }
}

async fn create_consumers(
    js: &jetstream::Context,
    config: &SinkConfig,
) -> Result<Vec<PullConsumer>> {
    let nats = &config.nats;
    let dead_letters = stream_config(
        &config.dead_letter_stream,
        vec![prefixed(&nats.subject_prefix, "deadletter.>")],
    );
    ensure_stream(js, dead_letters).await?;
    let mut consumers = Vec::new();
    for stream_cfg in data_stream_configs(nats) {
        ensure_stream(js, stream_cfg.clone()).await?;
        let orderbooks = stream_cfg.name == nats.orderbook_stream.name;
        let Some(filter) = stream_filter(config, orderbooks) else {
            continue;
        };
        let stream = js
            .get_stream(&stream_cfg.name)
            .await
            .map_err(|e| Error::Nats(format!("stream {}: {e}", stream_cfg.name)))?;
        let durable = durable_name(config, &stream_cfg.name);
        let consumer = stream
            .create_consumer(consumer_config(config, durable.clone(), filter))
            .await
            .map_err(|e| Error::Nats(format!("consumer {durable}: {e}")))?;
        tracing::info!(stream = %stream_cfg.name, consumer = %durable, "durable pull consumer ready");
        consumers.push(consumer);
    }
    Ok(consumers)
}

#[cfg(test)]
mod filter_tests {
    use super::stream_filter;
    use marketprism_config::Config;

    /// The config crate's minimal exchange section (its `test_support::MINIMAL`).
    const MINIMAL: &str = "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades, orderbooks]\n";

    #[test]
    fn subjects_split_by_stream_and_a_stream_without_any_gets_no_consumer() {
        let base = format!(
            "{MINIMAL}sink:\n  clickhouse:\n    url: http://127.0.0.1:8123\n  nats:\n    subject_prefix: p1\n"
        );
        let all = Config::from_yaml(&base).unwrap().sink.unwrap();
        assert_eq!(
            stream_filter(&all, false),
            Some(vec![]),
            "no subjects: everything"
        );
        assert_eq!(stream_filter(&all, true), Some(vec![]));
        let config = Config::from_yaml(&format!(
            "{base}  subjects: [\"*.binance_spot.*.BTC-USDT\", \"orderbook.binance_spot.*.BTC-USDT\"]\n"
        ))
        .unwrap();
        config.validate().unwrap();
        let shard = config.sink.unwrap();
        assert_eq!(
            stream_filter(&shard, false),
            Some(vec!["p1.*.binance_spot.*.BTC-USDT".to_owned()])
        );
        assert_eq!(
            stream_filter(&shard, true),
            Some(vec!["p1.orderbook.binance_spot.*.BTC-USDT".to_owned()])
        );
        let no_books = Config::from_yaml(&format!("{base}  subjects: [\"*.okx_spot.*.A-B\"]\n"))
            .unwrap()
            .sink
            .unwrap();
        assert_eq!(
            stream_filter(&no_books, true),
            None,
            "never an unfiltered consumer"
        );
    }
}
