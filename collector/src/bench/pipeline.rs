//! Pipeline benchmark: N synthetic events → publisher → JetStream → sink → ClickHouse (end to end),
//! or with `publish_only` just → publisher → JetStream (the JetStream baseline to compare with).
//!
//! Each stage runs on dedicated OS threads with its own runtime, so its CPU time is that of its
//! threads (`/proc/thread-self/stat`): `source` (event generation and pacing) and `publisher` (JSON,
//! publish, acks, and its NATS client) on one thread each; `sink` (pull, decode, batch, RowBinary
//! insert, acks, and its NATS and HTTP clients) on a runtime of `SINK_WORKERS` (2) workers, as
//! `marketprism-collector sink` runs on a 2-core machine (its inserts must not stall its pulls).
//! Memory is only measurable per process: the report gives the process's peak RSS. The NATS and
//! ClickHouse servers are separate processes: stages `nats-server` and `clickhouse-server` give their
//! whole-process CPU over the run (see `server_cpu`), or `null` with a note when their pid is
//! unknown (remote server).
//!
//! Throughput (see `throughput`): `events_per_s` = N / (last row confirmed − first event offered),
//! the whole run including the final batch's `max_wait_ms` tail; `sustained_events_per_s` = rows
//! landed between the instants 10% and 90% of the rows had landed, divided by that time;
//! `publish_per_s` = N / (last publish acked − first event offered).
//!
//! Latency (publish-to-row) = wall-clock time when ClickHouse confirmed the INSERT holding the row,
//! minus the event's `recv_ts_ms`, which the source stamps just before handing the event to the
//! publisher. It therefore includes the publisher's queue, JetStream, the sink's batching wait
//! (`max_wait_ms`) and the INSERT itself. Millisecond resolution.
//!
//! The bench fails (an error, no report) rather than print figures it cannot stand behind: servers
//! that do not answer (or are not ClickHouse), fewer than N rows confirmed before the timeout, the
//! run's database missing, a count query failing.

use super::procfs::{process_cpu_seconds, thread_cpu_seconds};
use super::report::{Definitions, Mode, PipelineBenchReport, Process, Stage, percentiles};
use super::server_cpu::ServerCpu;
use super::throughput::sustained_rate;
use super::verify::{check_clickhouse, cleanup, connect_nats, count_rows, stored_counts};
use crate::error::{Error, Result};
use crate::telemetry::Health;
use marketprism_config::{BatchConfig, ClickHouseConfig, NatsConfig, SinkConfig, StreamLimits};
use marketprism_model::synthetic::synthetic_event;
use marketprism_model::{DataType, now_ms};
use marketprism_pipeline::publish::{PublishStats, run_nats_output};
use marketprism_pipeline::sink::{InsertReport, run_sink_observed};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Worker threads of the sink stage: the multi-threaded runtime `marketprism-collector sink` gets on 2 cores.
const SINK_WORKERS: usize = 2;
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
    /// Give up waiting for rows (or, publish-only, for the publisher) after this many seconds.
    pub timeout_s: u64,
    /// Delete this run's streams and databases afterwards.
    pub cleanup: bool,
    /// Only source → publisher → JetStream: no sink, no ClickHouse.
    pub publish_only: bool,
    /// The NATS server's pid; else the local process listening on the URL's port.
    pub nats_pid: Option<u32>,
    /// The ClickHouse server's pid; else the local process listening on the URL's port.
    pub clickhouse_pid: Option<u32>,
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
            publish_only: false,
            nats_pid: None,
            clickhouse_pid: None,
        }
    }
}

pub async fn run_pipeline_bench(opts: PipelineBenchOptions) -> Result<PipelineBenchReport> {
    let (nats, sink) = configs(&opts);
    // Fail fast on a wrong URL (and before anything is created, so there is nothing to clean).
    let nats_client = connect_nats(&opts.nats_url).await?;
    if !opts.publish_only {
        check_clickhouse(&sink.clickhouse).await?;
    }
    let result = if opts.publish_only {
        publish_only(&opts, &nats, &nats_client).await
    } else {
        end_to_end(&opts, &nats, &nats_client, sink.clone()).await
    };
    if opts.cleanup {
        let streams = [
            nats.market_data_stream.name.as_str(),
            nats.orderbook_stream.name.as_str(),
            sink.dead_letter_stream.name.as_str(),
        ];
        let clickhouse = (!opts.publish_only).then_some((&sink.clickhouse, opts.run_name.as_str()));
        cleanup(&opts.nats_url, &streams, clickhouse).await;
    }
    result
}

async fn end_to_end(
    opts: &PipelineBenchOptions,
    nats: &NatsConfig,
    nats_client: &async_nats::Client,
    sink: SinkConfig,
) -> Result<PipelineBenchReport> {
    let n = opts.events;
    let process_cpu_0 = process_cpu_seconds().unwrap_or(0.0);
    let sink_clickhouse = sink.clickhouse.clone();

    // Sink first, and ready (schema, streams, consumers), so start-up is not counted as latency.
    let (observer_tx, mut observer) = mpsc::unbounded_channel::<InsertReport>();
    let sink_health = Health::new();
    let sink_stop = CancellationToken::new();
    let sink_thread = on_own_thread("sink", SINK_WORKERS, {
        let (health, stop) = (sink_health.clone(), sink_stop.clone());
        move || run_sink_observed(sink, health, stop, Some(observer_tx))
    });
    let ready_by = Instant::now() + Duration::from_secs(60);
    while !sink_health.is_ready() {
        if Instant::now() > ready_by {
            sink_stop.cancel();
            return Err(Error::Other(format!(
                "sink not ready after 60 s (NATS {}, ClickHouse {}): {:?}",
                opts.nats_url,
                opts.clickhouse_url,
                sink_health.snapshot()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let servers = [
        ServerCpu::start("nats-server", &opts.nats_url, opts.nats_pid),
        ServerCpu::start(
            "clickhouse-server",
            &opts.clickhouse_url,
            opts.clickhouse_pid,
        ),
    ];
    let (started, producers) = start_producers(opts, nats.clone());
    let landed = collect_rows(&mut observer, n, started, opts.timeout_s).await;
    let server_cpu = servers.each_ref().map(ServerCpu::cpu_since_start);
    if let Some(shortfall) = landed.shortfall {
        sink_stop.cancel();
        let sink_said = match tokio::time::timeout(Duration::from_secs(30), sink_thread).await {
            Ok(Ok((_, Err(e)))) => format!("; the sink failed: {e}"),
            Ok(Err(e)) => format!("; {e}"),
            _ => String::new(),
        };
        return Err(Error::Other(format!(
            "only {} of {n} rows were confirmed by ClickHouse inserts {shortfall}{sink_said}",
            landed.rows
        )));
    }
    let produced = producers.await?;
    let (publish, acked_at) = produced.published?;
    sink_stop.cancel();
    let (sink_cpu, sunk) = sink_thread.await?;
    sunk?;
    let process_cpu = process_cpu_seconds().unwrap_or(0.0) - process_cpu_0;

    let counts = count_rows(&sink_clickhouse, &opts.run_name).await?;
    let (stored_messages, stored) = stored_counts(nats_client, nats).await?;
    let elapsed = landed
        .last_row_at
        .duration_since(started)
        .as_secs_f64()
        .max(1e-9);
    let publish_elapsed = acked_at.duration_since(started).as_secs_f64().max(1e-9);
    let expected = n as u64;
    let mut latencies = landed.latencies;
    let mut stages = vec![
        Stage::new("source", Some(produced.source_cpu), n),
        Stage::new("publisher", Some(produced.publisher_cpu), n),
        Stage::new("sink", Some(sink_cpu), n),
    ];
    stages.extend(
        servers
            .iter()
            .zip(server_cpu)
            .map(|(s, cpu)| s.stage(cpu, n)),
    );
    Ok(PipelineBenchReport {
        mode: Mode::EndToEnd,
        events: n,
        rate_limit_per_s: opts.rate_per_s,
        events_per_s: Some(n as f64 / elapsed),
        sustained_events_per_s: sustained_rate(&landed.inserts, expected),
        publish_per_s: n as f64 / publish_elapsed,
        elapsed_s: elapsed,
        latency_ms: Some(percentiles(&mut latencies)),
        stages,
        process: Process::measured(process_cpu),
        expected_rows: expected,
        stored,
        stored_messages,
        rows_final: Some(counts.with_final),
        rows_raw: Some(counts.raw),
        lost: expected.saturating_sub(counts.with_final),
        duplicated: counts.with_final.saturating_sub(expected),
        unmerged_copies: Some(counts.raw.saturating_sub(counts.with_final)),
        publish,
        definitions: Definitions::for_mode(Mode::EndToEnd),
        run_name: opts.run_name.clone(),
    })
}

/// Source → publisher → JetStream only; `stored` is what the two streams hold at the end.
async fn publish_only(
    opts: &PipelineBenchOptions,
    nats: &NatsConfig,
    nats_client: &async_nats::Client,
) -> Result<PipelineBenchReport> {
    let n = opts.events;
    let process_cpu_0 = process_cpu_seconds().unwrap_or(0.0);
    let server = ServerCpu::start("nats-server", &opts.nats_url, opts.nats_pid);
    let (started, producers) = start_producers(opts, nats.clone());
    let produced = tokio::time::timeout(Duration::from_secs(opts.timeout_s), producers)
        .await
        .map_err(|_| {
            Error::Other(format!(
                "the publisher did not get {n} events acked within the {} s timeout",
                opts.timeout_s
            ))
        })??;
    let (publish, acked_at) = produced.published?;
    let server_cpu = server.cpu_since_start();
    let process_cpu = process_cpu_seconds().unwrap_or(0.0) - process_cpu_0;
    let (stored_messages, stored) = stored_counts(nats_client, nats).await?;
    let publish_elapsed = acked_at.duration_since(started).as_secs_f64().max(1e-9);
    let expected = n as u64;
    Ok(PipelineBenchReport {
        mode: Mode::PublishOnly,
        events: n,
        rate_limit_per_s: opts.rate_per_s,
        events_per_s: None,
        sustained_events_per_s: None,
        publish_per_s: n as f64 / publish_elapsed,
        elapsed_s: publish_elapsed,
        latency_ms: None,
        stages: vec![
            Stage::new("source", Some(produced.source_cpu), n),
            Stage::new("publisher", Some(produced.publisher_cpu), n),
            server.stage(server_cpu, n),
        ],
        process: Process::measured(process_cpu),
        expected_rows: expected,
        stored,
        stored_messages,
        rows_final: None,
        rows_raw: None,
        lost: expected.saturating_sub(stored),
        duplicated: stored.saturating_sub(expected),
        unmerged_copies: None,
        publish,
        definitions: Definitions::for_mode(Mode::PublishOnly),
        run_name: opts.run_name.clone(),
    })
}

/// What the source and publisher threads did, once both have finished.
struct Produced {
    source_cpu: f64,
    publisher_cpu: f64,
    /// The publisher's stats and when it returned (every event acked, or given up).
    published: Result<(PublishStats, Instant)>,
}

/// Start the source and publisher threads. Returns when the first event is offered (about now)
/// and a future that resolves when both threads are done.
fn start_producers(
    opts: &PipelineBenchOptions,
    nats: NatsConfig,
) -> (Instant, impl Future<Output = Result<Produced>>) {
    let (tx, rx) = mpsc::channel(65_536);
    let publisher_thread = on_own_thread("publisher", 1, move || async move {
        let stats = run_nats_output(nats, rx, Health::new(), CancellationToken::new()).await;
        stats.map(|s| (s, Instant::now()))
    });
    let started = Instant::now();
    let source_thread = on_own_thread("source", 1, {
        let (seed, rate, n) = (opts.seed, opts.rate_per_s, opts.events);
        move || feed(tx, seed, n, rate)
    });
    let both = async move {
        let (source_cpu, ()) = source_thread.await?;
        let (publisher_cpu, published) = publisher_thread.await?;
        Ok(Produced {
            source_cpu,
            publisher_cpu,
            published: published.map_err(Error::from),
        })
    };
    (started, both)
}

/// Rows confirmed by the sink's insert reports.
struct Landed {
    latencies: Vec<u32>,
    /// (seconds since the first event was offered, rows) per insert, in arrival order.
    inserts: Vec<(f64, u64)>,
    rows: usize,
    last_row_at: Instant,
    /// Why fewer than N rows were confirmed; `None` when all were.
    shortfall: Option<String>,
}

/// Collect insert reports until `n` rows have landed, the sink stops, or `timeout_s` passes.
async fn collect_rows(
    observer: &mut mpsc::UnboundedReceiver<InsertReport>,
    n: usize,
    started: Instant,
    timeout_s: u64,
) -> Landed {
    let mut landed = Landed {
        latencies: Vec::with_capacity(n),
        inserts: Vec::new(),
        rows: 0,
        last_row_at: started,
        shortfall: None,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout_s);
    while landed.rows < n {
        match tokio::time::timeout_at(deadline, observer.recv()).await {
            Ok(Some(report)) => {
                landed.last_row_at = Instant::now();
                let rows = report.recv_ts_ms.len();
                landed.rows += rows;
                let at = landed.last_row_at.duration_since(started).as_secs_f64();
                landed.inserts.push((at, rows as u64));
                landed.latencies.extend(report.recv_ts_ms.iter().map(|r| {
                    u32::try_from((report.inserted_at_ms - r).max(0)).unwrap_or(u32::MAX)
                }));
            }
            Ok(None) => {
                landed.shortfall = Some("before the sink stopped".to_owned());
                break;
            }
            Err(_) => {
                landed.shortfall = Some(format!("within the {timeout_s} s timeout"));
                break;
            }
        }
    }
    landed
}

fn configs(opts: &PipelineBenchOptions) -> (NatsConfig, SinkConfig) {
    let name = &opts.run_name;
    let upper = name.to_ascii_uppercase();
    // JetStream reserves max_bytes up front: enough for the run (events are < 1 KiB), no more.
    let run_bytes = i64::try_from(opts.events)
        .unwrap_or(i64::MAX)
        .saturating_mul(1024)
        .max(1 << 30);
    let limits = |suffix: &str, max_bytes: i64, window_s: u64| StreamLimits {
        name: format!("{upper}_{suffix}"),
        max_bytes,
        max_age_s: 3_600,
        duplicate_window_s: window_s,
    };
    let nats = NatsConfig {
        url: opts.nats_url.clone(),
        market_data_stream: limits("MARKET_DATA", run_bytes, 120),
        orderbook_stream: limits("ORDERBOOK_SNAP", run_bytes, 60),
        subject_prefix: name.clone(),
        ..NatsConfig::default()
    };
    let mut clickhouse = ClickHouseConfig {
        url: opts.clickhouse_url.clone(),
        hot_database: format!("{name}_hot"),
        cold_database: format!("{name}_cold"),
        ..ClickHouseConfig::default()
    };
    clickhouse.credentials_from_env(|k| std::env::var(k).ok());
    let mut sink = SinkConfig {
        nats: nats.clone(),
        clickhouse,
        consumer: format!("{name}-sink"),
        batching: Default::default(),
        max_ack_pending: None,
        ack_wait_s: 60,
        fetch_batch: 2_000,
        dead_letter_stream: limits("DEAD_LETTER", 256 << 20, 120),
        subjects: Vec::new(),
        inactive_threshold_s: None,
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
async fn feed(tx: mpsc::Sender<marketprism_model::Event>, seed: u64, n: usize, rate: Option<u64>) {
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
fn on_own_thread<F, Fut, T>(
    name: &'static str,
    workers: usize,
    stage: F,
) -> impl Future<Output = Result<(f64, T)>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let (done_tx, done_rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("bench-{name}"))
        .spawn(move || {
            // CPU of the worker threads, each adding its own when it stops.
            let workers_cpu = std::sync::Arc::new(std::sync::Mutex::new(0.0_f64));
            let runtime = if workers <= 1 {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            } else {
                let on_stop = workers_cpu.clone();
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name(format!("bench-{name}"))
                    .on_thread_stop(move || {
                        let cpu = thread_cpu_seconds().unwrap_or(0.0);
                        if let Ok(mut total) = on_stop.lock() {
                            *total += cpu;
                        }
                    })
                    .enable_all()
                    .build()
            };
            let result = runtime.map(|rt| {
                let cpu0 = thread_cpu_seconds().unwrap_or(0.0);
                let out = rt.block_on(stage());
                // Let spawned tasks (NATS client, inserts) finish their CPU first; stops the workers.
                drop(rt);
                let workers = workers_cpu.lock().map_or(0.0, |t| *t);
                (thread_cpu_seconds().unwrap_or(0.0) - cpu0 + workers, out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_names_are_valid_config() {
        let opts = PipelineBenchOptions::new(10, "nats://127.0.0.1:1", "http://127.0.0.1:2");
        let (nats, sink) = configs(&opts);
        assert!(nats.market_data_stream.name.ends_with("_MARKET_DATA"));
        let config = marketprism_config::Config {
            sink: Some(sink),
            ..marketprism_config::Config::from_yaml("{}").unwrap()
        };
        config.validate().unwrap();
    }
}
