//! End-to-end pipeline benchmark: N synthetic events → publisher → JetStream → sink → ClickHouse.
//!
//! Each stage runs on a dedicated OS thread with its own single-threaded runtime, so its CPU time is
//! that thread's (`/proc/thread-self/stat`): `source` (event generation and pacing), `publisher`
//! (JSON, publish, acks, and its NATS client) and `sink` (pull, decode, batch, RowBinary insert, acks,
//! and its NATS and HTTP clients). Memory is only measurable per process: the report gives the
//! process's peak RSS. The NATS and ClickHouse servers are separate processes and not included.
//!
//! Latency (publish-to-row) = wall-clock time when ClickHouse confirmed the INSERT holding the row,
//! minus the event's `recv_ts_ms`, which the source stamps just before handing the event to the
//! publisher. It therefore includes the publisher's queue, JetStream, the sink's batching wait
//! (`max_wait_ms`) and the INSERT itself. Millisecond resolution.

use super::procfs::{peak_rss_mib, process_cpu_seconds, thread_cpu_seconds};
use crate::config::{BatchConfig, ClickHouseConfig, NatsConfig, SinkConfig, StreamLimits};
use crate::error::{Error, Result};
use crate::model::{DataType, now_ms};
use crate::publish::{PublishStats, run_nats_output};
use crate::sink::{InsertReport, run_sink_observed};
use crate::synthetic::synthetic_event;
use crate::telemetry::Health;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineBenchOptions {
    pub events: usize,
    /// Events per second offered to the publisher; `None`: as fast as it takes them (backpressure).
    pub rate_per_s: Option<u64>,
    pub seed: u64,
    pub nats_url: String,
    pub clickhouse_url: String,
    /// Names this run's streams, subjects, consumer and databases (letters, digits, `_`).
    pub run_name: String,
    /// Overrides every data type's `max_wait_ms` (production defaults otherwise).
    pub max_wait_ms: Option<u64>,
    /// Give up waiting for rows after this many seconds.
    pub timeout_s: u64,
    /// Delete this run's streams and databases afterwards.
    pub cleanup: bool,
}

impl PipelineBenchOptions {
    pub fn new(events: usize, nats_url: &str, clickhouse_url: &str) -> PipelineBenchOptions {
        PipelineBenchOptions {
            events,
            rate_per_s: None,
            seed: 42,
            nats_url: nats_url.to_owned(),
            clickhouse_url: clickhouse_url.to_owned(),
            run_name: format!("bench_{}", now_ms()),
            max_wait_ms: None,
            timeout_s: 300,
            cleanup: true,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineBenchReport {
    pub events: usize,
    pub rate_limit_per_s: Option<u64>,
    /// Events / (last row confirmed by ClickHouse − first event offered).
    pub events_per_s: f64,
    /// Events / (last publish acked by JetStream − first event offered).
    pub publish_per_s: f64,
    pub elapsed_s: f64,
    pub latency_ms: Latency,
    pub stages: Vec<Stage>,
    pub process: Process,
    pub expected_rows: u64,
    /// `count() FINAL` over the 9 tables: rows after deduplication.
    pub rows_final: u64,
    /// `count()` without FINAL: rows including copies not merged away yet.
    pub rows_raw: u64,
    pub lost: u64,
    /// Rows beyond the expected after FINAL (a duplicate that survived deduplication).
    pub duplicated: u64,
    /// Physical copies waiting for a background merge (harmless: FINAL folds them).
    pub unmerged_copies: u64,
    pub publish: PublishStats,
    pub run_name: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub samples: usize,
    pub definition: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub cpu_s: f64,
    /// CPU milliseconds per 1000 events.
    pub cpu_ms_per_1k_events: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Process {
    pub cpu_s: f64,
    pub peak_rss_mib: f64,
    pub method: &'static str,
}

const LATENCY_DEFINITION: &str = "ClickHouse INSERT confirmed (wall clock) minus recv_ts_ms stamped by the source just before the publisher; ms";

pub async fn run_pipeline_bench(opts: PipelineBenchOptions) -> Result<PipelineBenchReport> {
    let (nats, sink) = configs(&opts);
    let process_cpu_0 = process_cpu_seconds().unwrap_or(0.0);
    let n = opts.events;

    // Sink first, and ready (schema, streams, consumers), so start-up is not counted as latency.
    let (observer_tx, mut observer) = mpsc::unbounded_channel::<InsertReport>();
    let sink_health = Health::new();
    let sink_stop = CancellationToken::new();
    let sink_thread = on_own_thread("sink", {
        let (health, stop) = (sink_health.clone(), sink_stop.clone());
        move || run_sink_observed(sink, health, stop, Some(observer_tx))
    });
    let ready_by = Instant::now() + Duration::from_secs(60);
    while !sink_health.is_ready() {
        if Instant::now() > ready_by {
            sink_stop.cancel();
            return Err(Error::Other(format!(
                "sink not ready after 60 s: {:?}",
                sink_health.snapshot()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (tx, rx) = mpsc::channel(65_536);
    let publisher_thread = on_own_thread("publisher", {
        let nats = nats.clone();
        move || async move {
            let stats = run_nats_output(nats, rx, Health::new(), CancellationToken::new()).await;
            stats.map(|s| (s, Instant::now()))
        }
    });
    let started = Instant::now();
    let source_thread = on_own_thread("source", {
        let (seed, rate) = (opts.seed, opts.rate_per_s);
        move || feed(tx, seed, n, rate)
    });

    // Collect insert reports until every row has landed (or time is up).
    let mut latencies: Vec<u32> = Vec::with_capacity(n);
    let mut last_row_at = started;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(opts.timeout_s);
    while latencies.len() < n {
        match tokio::time::timeout_at(deadline, observer.recv()).await {
            Ok(Some(report)) => {
                last_row_at = Instant::now();
                latencies.extend(report.recv_ts_ms.iter().map(|r| {
                    u32::try_from((report.inserted_at_ms - r).max(0)).unwrap_or(u32::MAX)
                }));
            }
            Ok(None) => break,
            Err(_) => {
                tracing::error!(
                    rows = latencies.len(),
                    expected = n,
                    "bench timed out waiting for rows"
                );
                break;
            }
        }
    }
    let (source_cpu, ()) = source_thread.await?;
    let (publisher_cpu, published) = publisher_thread.await?;
    let (publish, acked_at) = published?;
    sink_stop.cancel();
    let (sink_cpu, sunk) = sink_thread.await?;
    sunk?;
    let process_cpu = process_cpu_seconds().unwrap_or(0.0) - process_cpu_0;

    let counts = count_rows(&opts).await?;
    if opts.cleanup {
        cleanup(&opts, &nats).await;
    }
    let elapsed = last_row_at.duration_since(started).as_secs_f64().max(1e-9);
    let publish_elapsed = acked_at.duration_since(started).as_secs_f64().max(1e-9);
    let per_1k = |cpu: f64| cpu * 1_000.0 * 1_000.0 / n.max(1) as f64;
    let expected = n as u64;
    Ok(PipelineBenchReport {
        events: n,
        rate_limit_per_s: opts.rate_per_s,
        events_per_s: n as f64 / elapsed,
        publish_per_s: n as f64 / publish_elapsed,
        elapsed_s: elapsed,
        latency_ms: percentiles(&mut latencies),
        stages: vec![
            Stage {
                name: "source",
                cpu_s: source_cpu,
                cpu_ms_per_1k_events: per_1k(source_cpu),
            },
            Stage {
                name: "publisher",
                cpu_s: publisher_cpu,
                cpu_ms_per_1k_events: per_1k(publisher_cpu),
            },
            Stage {
                name: "sink",
                cpu_s: sink_cpu,
                cpu_ms_per_1k_events: per_1k(sink_cpu),
            },
        ],
        process: Process {
            cpu_s: process_cpu,
            peak_rss_mib: peak_rss_mib().unwrap_or(0.0),
            method: "process: /proc/self/stat and VmHWM; stages: /proc/thread-self/stat of each stage's dedicated thread",
        },
        expected_rows: expected,
        rows_final: counts.0,
        rows_raw: counts.1,
        lost: expected.saturating_sub(counts.0),
        duplicated: counts.0.saturating_sub(expected),
        unmerged_copies: counts.1.saturating_sub(counts.0),
        publish,
        run_name: opts.run_name.clone(),
    })
}

fn configs(opts: &PipelineBenchOptions) -> (NatsConfig, SinkConfig) {
    let name = &opts.run_name;
    let upper = name.to_ascii_uppercase();
    let limits = |suffix: &str, max_age_s: u64, window_s: u64| StreamLimits {
        name: format!("{upper}_{suffix}"),
        max_bytes: 4 * 1024 * 1024 * 1024,
        max_age_s,
        duplicate_window_s: window_s,
    };
    let nats = NatsConfig {
        url: opts.nats_url.clone(),
        market_data_stream: limits("MARKET_DATA", 3_600, 120),
        orderbook_stream: limits("ORDERBOOK_SNAP", 3_600, 60),
        subject_prefix: name.clone(),
        ..NatsConfig::default()
    };
    let mut sink = SinkConfig {
        nats: nats.clone(),
        clickhouse: ClickHouseConfig {
            url: opts.clickhouse_url.clone(),
            hot_database: format!("{name}_hot"),
            cold_database: format!("{name}_cold"),
            ..ClickHouseConfig::default()
        },
        consumer: format!("{name}-sink"),
        batching: Default::default(),
        max_ack_pending: 200_000,
        ack_wait_s: 60,
        fetch_batch: 2_000,
        dead_letter_stream: limits("DEAD_LETTER", 3_600, 120),
    };
    if let Some(wait) = opts.max_wait_ms {
        for d in DataType::ALL {
            let max_rows = BatchConfig::default_for(d).max_rows;
            sink.batching.insert(
                d,
                BatchConfig {
                    max_rows,
                    max_wait_ms: wait,
                },
            );
        }
    }
    (nats, sink)
}

/// Offer `n` synthetic events, stamping `recv_ts_ms` at hand-over; paced when `rate` is set.
async fn feed(tx: mpsc::Sender<crate::model::Event>, seed: u64, n: usize, rate: Option<u64>) {
    let started = Instant::now();
    for i in 0..n as u64 {
        if let Some(rate) = rate {
            // Every 64 events, wait until the schedule catches up.
            if i % 64 == 0 {
                let due = started + Duration::from_secs_f64(i as f64 / rate.max(1) as f64);
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let mut event = synthetic_event(seed, i);
        event.recv_ts_ms = now_ms();
        if tx.send(event).await.is_err() {
            tracing::error!(sent = i, "publisher stopped early");
            return;
        }
    }
}

/// Run `stage` on a new OS thread with a single-threaded runtime; resolves to (thread CPU s, output).
fn on_own_thread<F, Fut, T>(name: &'static str, stage: F) -> impl Future<Output = Result<(f64, T)>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("bench-{name}"))
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| {
                    let cpu0 = thread_cpu_seconds().unwrap_or(0.0);
                    let out = rt.block_on(stage());
                    // Let spawned tasks (NATS client, inserts) finish their CPU on this thread first.
                    drop(rt);
                    (thread_cpu_seconds().unwrap_or(0.0) - cpu0, out)
                });
            let _ = done_tx.send(result);
        });
    async move {
        spawned.map_err(|e| Error::Other(format!("cannot start the {name} thread: {e}")))?;
        done_rx
            .await
            .map_err(|_| Error::Other(format!("bench stage {name} panicked")))?
            .map_err(Error::Io)
    }
}

fn percentiles(samples: &mut [u32]) -> Latency {
    if samples.is_empty() {
        return Latency {
            definition: LATENCY_DEFINITION,
            ..Latency::default()
        };
    }
    samples.sort_unstable();
    let at = |q: f64| u64::from(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    Latency {
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        samples: samples.len(),
        definition: LATENCY_DEFINITION,
    }
}

fn clickhouse_client(opts: &PipelineBenchOptions) -> clickhouse::Client {
    let mut client = clickhouse::Client::default()
        .with_url(&opts.clickhouse_url)
        .with_validation(false);
    if let Ok(user) = std::env::var("MARKETPRISM_CLICKHOUSE_USER") {
        client = client.with_user(user);
    }
    if let Ok(password) = std::env::var("MARKETPRISM_CLICKHOUSE_PASSWORD") {
        client = client.with_password(password);
    }
    client
}

/// (`count() FINAL`, `count()`) summed over the 9 hot tables.
async fn count_rows(opts: &PipelineBenchOptions) -> Result<(u64, u64)> {
    let client = clickhouse_client(opts);
    let db = format!("{}_hot", opts.run_name);
    let (mut with_final, mut raw) = (0, 0);
    for d in DataType::ALL {
        with_final += client
            .query(&format!("SELECT count() FROM {db}.{d} FINAL"))
            .fetch_one::<u64>()
            .await?;
        raw += client
            .query(&format!("SELECT count() FROM {db}.{d}"))
            .fetch_one::<u64>()
            .await?;
    }
    Ok((with_final, raw))
}

async fn cleanup(opts: &PipelineBenchOptions, nats: &NatsConfig) {
    let client = clickhouse_client(opts);
    for db in ["hot", "cold"] {
        let sql = format!("DROP DATABASE IF EXISTS {}_{db}", opts.run_name);
        if let Err(e) = client.query(&sql).execute().await {
            tracing::warn!(error = %e, "bench cleanup: {sql}");
        }
    }
    if let Ok(c) = async_nats::connect(nats.url.as_str()).await {
        let js = async_nats::jetstream::new(c);
        let upper = opts.run_name.to_ascii_uppercase();
        for s in ["MARKET_DATA", "ORDERBOOK_SNAP", "DEAD_LETTER"] {
            let _ = js.delete_stream(format!("{upper}_{s}")).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        let l = percentiles(&mut v);
        assert_eq!((l.p50, l.p99, l.max, l.samples), (51, 99, 100, 100));
        assert_eq!(percentiles(&mut []).samples, 0);
    }

    #[test]
    fn bench_names_are_valid_config() {
        let opts = PipelineBenchOptions::new(10, "nats://127.0.0.1:1", "http://127.0.0.1:2");
        let (nats, sink) = configs(&opts);
        assert!(nats.market_data_stream.name.ends_with("_MARKET_DATA"));
        let config = crate::config::Config {
            sink: Some(sink),
            ..crate::config::Config::from_yaml("{}").unwrap()
        };
        config.validate().unwrap();
    }
}
