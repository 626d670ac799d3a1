//! `bench collector`: the whole collector's cost per frame, as a user runs it. The exchange simulator
//! runs as one child process (`simulate`, at `simulator.rate_per_s`), the collector as another (`run`,
//! all nine product lines of `config/demo.yaml` into Parquet in a temporary directory, pointed at the
//! simulator's endpoints); both are this very binary. After a warm-up the collector process is sampled
//! over the measured window: CPU (`utime + stime` of `/proc/<pid>/stat`), RSS (`VmRSS`, `VmHWM`),
//! context switches (`/proc/<pid>/status`), and frames from its own `/metrics`
//! (`marketprism_exchange_frames_received_total`, per exchange and channel).

use super::procfs::{PidStatus, pid_cpu_seconds};
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The counter the frames come from.
const FRAMES: &str = "marketprism_exchange_frames_received_total";

/// The product lines and data types of `config/demo.yaml` (signals and Gate's tick-by-tick book
/// included): `(exchange, symbols, data types, extra YAML lines)`.
const LINES: [(&str, &str, &str, &str); 9] = [
    (
        "binance_spot",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks",
        "",
    ),
    (
        "binance_derivatives",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks, funding_rates, open_interests, liquidations, lsr_top_positions, lsr_all_accounts",
        "    poll_interval_s: 5\n    signals: {symbols: [BTC-USDT], max_silence_ms: 0, z: {window: 50}}\n",
    ),
    ("okx_spot", "BTC-USDT, ETH-USDT", "trades, orderbooks", ""),
    (
        "okx_derivatives",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks, funding_rates, open_interests, liquidations, lsr_top_positions, lsr_all_accounts",
        "    poll_interval_s: 5\n    signals: {symbols: [BTC-USDT], max_silence_ms: 0, z: {window: 50}}\n",
    ),
    (
        "deribit_derivatives",
        "BTC-USD, ETH-USD",
        "volatility_indices, trades, orderbooks",
        "    signals: {symbols: [BTC-USD], max_silence_ms: 0, z: {window: 50}}\n",
    ),
    (
        "gate_spot",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks",
        "    orderbook: {every_update_symbols: [BTC-USDT]}\n",
    ),
    (
        "gate_derivatives",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks, funding_rates, open_interests, liquidations",
        "",
    ),
    ("mexc_spot", "BTC-USDT, ETH-USDT", "trades, orderbooks", ""),
    (
        "mexc_derivatives",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks, funding_rates, open_interests",
        "",
    ),
];

#[derive(Debug, Clone)]
pub struct CollectorBenchOptions {
    /// The binary run as simulator and collector (this one: `std::env::current_exe`).
    pub exe: PathBuf,
    /// `simulator.rate_per_s`: book diffs and trade batches per second per symbol.
    pub rate_per_s: u32,
    /// Length of the measured window, seconds.
    pub seconds: f64,
    /// Seconds between the first frame and the start of the window (connections, books, JIT-free
    /// but allocator and caches warm).
    pub warmup_s: f64,
    /// The collector's `collector.worker_threads` (absent: the config's default).
    pub worker_threads: Option<usize>,
    /// The collector's `outputs.parquet.flush_interval_ms` (absent: the config's default, 5 s):
    /// every flush writes one file per partition, a fixed cost that dominates at low rates.
    pub flush_interval_ms: Option<u64>,
    /// The collector's `collector.wake_coalesce_ms` (absent: the config's default, off).
    pub wake_coalesce_ms: Option<u64>,
    /// Run the floor reader (`bench::floor`) as the child instead of the collector.
    pub floor: bool,
    /// Publish to JetStream at this URL (the production output) instead of writing Parquet: into
    /// two streams of the run's own, deleted afterwards.
    pub nats_url: Option<String>,
    /// Keep the temporary directory (configs, logs, Parquet files) for inspection.
    pub keep: bool,
}

/// The report: the collector process over the measured window.
#[derive(Debug, Clone, Serialize)]
pub struct CollectorBenchReport {
    pub rate_per_s: u32,
    /// Measured window, seconds (wall clock).
    pub seconds: f64,
    pub frames: u64,
    pub frames_per_s: f64,
    /// CPU (user + system) of the collector process per frame received, µs.
    pub cpu_us_per_frame: f64,
    /// CPU of the collector process over the window, % of one core.
    pub cpu_percent_of_core: f64,
    /// `VmRSS` at the end of the window, MB (MiB).
    pub rss_mb: f64,
    /// `VmHWM` (peak RSS since the start), MB (MiB).
    pub peak_rss_mb: f64,
    pub threads: u64,
    /// Voluntary + involuntary context switches of the collector per second.
    pub ctx_switches_per_s: f64,
    pub voluntary_ctx_switches_per_s: f64,
    pub involuntary_ctx_switches_per_s: f64,
    /// CPU of the simulator process over the window, % of one core (for context).
    pub simulator_cpu_percent_of_core: Option<f64>,
    /// Frames per second per exchange.
    pub frames_per_s_by_exchange: BTreeMap<String, f64>,
    /// Frames per second per channel (data type, `control`, `unattributed`), all exchanges.
    pub frames_per_s_by_channel: BTreeMap<String, f64>,
    /// The temporary directory, when kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// The JetStream streams published into, when kept (`--keep` with `--nats-url`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
}

/// A child process killed (and reaped) when dropped, so an error leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `(exchange, channel) → count` of every frames counter series in a Prometheus text.
pub fn frame_counts(text: &str) -> BTreeMap<(String, String), u64> {
    let label = |labels: &str, name: &str| -> Option<String> {
        let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
        let len = labels[start..].find('"')?;
        Some(labels[start..start + len].to_owned())
    };
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(FRAMES)?.strip_prefix('{')?;
            let (labels, value) = rest.rsplit_once("} ")?;
            let key = (label(labels, "exchange")?, label(labels, "channel")?);
            Some((key, value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// The body of `GET /metrics` on `127.0.0.1:port` (`None` while it does not answer).
fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split_once("\r\n\r\n")?.1.to_owned())
}

/// Where the benchmarked collector writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The embedded default: Parquet under the run's directory.
    Parquet { flush_interval_ms: Option<u64> },
    /// JetStream at `url`, streams `{run}_MD` and `{run}_OB`, subjects under the prefix `run`.
    JetStream { url: String, run: String },
}

impl Output {
    /// The output of a run with `opts` in its temporary directory `dir`.
    fn of(opts: &CollectorBenchOptions, dir: &Path) -> Output {
        match &opts.nats_url {
            Some(url) => Output::JetStream {
                url: url.clone(),
                run: bench_run_name(dir),
            },
            None => Output::Parquet {
                flush_interval_ms: opts.flush_interval_ms,
            },
        }
    }

    /// The run's JetStream streams (none for Parquet).
    fn streams(&self) -> Option<[String; 2]> {
        match self {
            Output::Parquet { .. } => None,
            Output::JetStream { run, .. } => Some([format!("{run}_MD"), format!("{run}_OB")]),
        }
    }

    /// Deletes the run's JetStream streams when dropped (nothing for Parquet).
    fn cleanup(&self) -> Option<DeleteStreams> {
        match self {
            Output::Parquet { .. } => None,
            Output::JetStream { url, .. } => Some(DeleteStreams {
                url: url.clone(),
                names: self.streams()?,
            }),
        }
    }
}

/// A name of letters, digits and `_` unique to this run (from its temporary directory's name).
fn bench_run_name(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tail: String = name.chars().filter(char::is_ascii_digit).collect();
    format!("BENCH_{}", &tail[tail.len().saturating_sub(12)..])
}

/// Removes a run's streams (best effort: the bench's result does not depend on it).
struct DeleteStreams {
    url: String,
    names: [String; 2],
}

impl Drop for DeleteStreams {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let Ok(client) = async_nats::connect(&self.url).await else {
                return;
            };
            let js = async_nats::jetstream::new(client);
            for name in &self.names {
                let _ = js.delete_stream(name).await;
            }
        });
    }
}

/// The collector's config: every product line at the simulator's endpoints (`endpoints`: the
/// `endpoints` object `simulate` prints), writing to `output` (Parquet under `dir`), metrics on `port`.
pub fn run_config(
    endpoints: &serde_json::Value,
    dir: &Path,
    port: u16,
    (worker_threads, wake_coalesce_ms): (Option<usize>, Option<u64>),
    output: &Output,
) -> anyhow::Result<String> {
    let mut yaml = String::from("collector:\n  instance_id: bench\n");
    if let Some(n) = worker_threads {
        yaml.push_str(&format!("  worker_threads: {n}\n"));
    }
    if let Some(ms) = wake_coalesce_ms {
        yaml.push_str(&format!("  wake_coalesce_ms: {ms}\n"));
    }
    yaml.push_str("exchanges:\n");
    for (exchange, symbols, data_types, extra) in LINES {
        let e = &endpoints[exchange];
        let (Some(ws), Some(rest)) = (e["ws_url"].as_str(), e["rest_url"].as_str()) else {
            bail!("the simulator printed no endpoints for {exchange}: {endpoints}");
        };
        yaml.push_str(&format!(
            "  - exchange: {exchange}\n    symbols: [{symbols}]\n    data_types: [{data_types}]\n    endpoints: {{ws_url: \"{ws}\", rest_url: \"{rest}\"}}\n{extra}"
        ));
    }
    match output {
        Output::Parquet { flush_interval_ms } => {
            yaml.push_str(&format!(
                "outputs:\n  parquet:\n    dir: \"{}\"\n",
                dir.join("data").display()
            ));
            if let Some(ms) = flush_interval_ms {
                yaml.push_str(&format!("    flush_interval_ms: {ms}\n"));
            }
        }
        Output::JetStream { url, run } => {
            let [md, ob] = output.streams().unwrap_or_default();
            let stream = |name: &str| {
                format!(
                    "{{name: {name}, max_bytes: 4294967296, max_age_s: 3600, duplicate_window_s: 120}}"
                )
            };
            yaml.push_str(&format!(
                "outputs:\n  nats:\n    url: \"{url}\"\n    subject_prefix: {run}\n    market_data_stream: {}\n    orderbook_stream: {}\n",
                stream(&md),
                stream(&ob)
            ));
        }
    }
    yaml.push_str(&format!("http:\n  listen: \"127.0.0.1:{port}\"\n"));
    Ok(yaml)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One sample of the collector: when, CPU seconds, status, frame counts.
struct Sample {
    at: Instant,
    cpu_s: f64,
    sim_cpu_s: Option<f64>,
    status: PidStatus,
    frames: BTreeMap<(String, String), u64>,
}

fn sample(collector: u32, simulator: u32, port: u16) -> anyhow::Result<Sample> {
    let text = scrape(port).context("the collector's /metrics does not answer")?;
    Ok(Sample {
        at: Instant::now(),
        cpu_s: pid_cpu_seconds(collector).context("cannot read the collector's /proc stat")?,
        sim_cpu_s: pid_cpu_seconds(simulator),
        status: PidStatus::of(collector).context("cannot read the collector's /proc status")?,
        frames: frame_counts(&text),
    })
}

/// Run the benchmark (blocking: it sleeps through the window).
pub fn run_collector_bench(opts: &CollectorBenchOptions) -> anyhow::Result<CollectorBenchReport> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "marketprism-bench-collector-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let result = measure(opts, &dir);
    if !opts.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut report = result?;
    report.dir = opts.keep.then_some(dir.clone());
    if opts.keep {
        report.streams = Output::of(opts, &dir)
            .streams()
            .map_or_else(Vec::new, Vec::from);
    }
    Ok(report)
}

fn measure(opts: &CollectorBenchOptions, dir: &Path) -> anyhow::Result<CollectorBenchReport> {
    std::fs::write(
        dir.join("simulator.yaml"),
        format!(
            "simulator:\n  seed: 42\n  rate_per_s: {}\n",
            opts.rate_per_s
        ),
    )?;
    let mut simulator = Reaped(
        Command::new(&opts.exe)
            .args(["simulate", "--config"])
            .arg(dir.join("simulator.yaml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("simulator.log"))?)
            .spawn()
            .with_context(|| format!("cannot start {} simulate", opts.exe.display()))?,
    );
    let mut first = String::new();
    std::io::BufReader::new(simulator.0.stdout.take().context("no simulator stdout")?)
        .read_line(&mut first)?;
    let printed: serde_json::Value = serde_json::from_str(&first)
        .with_context(|| format!("simulate printed no endpoints: {first:?}"))?;
    let port = free_port()?;
    let output = Output::of(opts, dir);
    // `--keep` keeps the streams too (their names are in the report).
    let _streams = (!opts.keep).then(|| output.cleanup()).flatten();
    let yaml = run_config(
        &printed["endpoints"],
        dir,
        port,
        (opts.worker_threads, opts.wake_coalesce_ms),
        &output,
    )?;
    std::fs::write(dir.join("collector.yaml"), yaml)?;
    let collector = Reaped(
        Command::new(&opts.exe)
            .args(if opts.floor {
                &["bench", "floor-reader", "--config"][..]
            } else {
                &["run", "--config"][..]
            })
            .arg(dir.join("collector.yaml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("collector.log"))?)
            .spawn()
            .with_context(|| format!("cannot start {} run", opts.exe.display()))?,
    );
    let (pid, sim_pid) = (collector.0.id(), simulator.0.id());
    // Wait for the first frames (instrument lists, connections, subscriptions).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(text) = scrape(port)
            && frame_counts(&text).values().sum::<u64>() > 0
        {
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("collector.log")).unwrap_or_default();
            bail!("no frame counted within 60 s; collector log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs_f64(opts.warmup_s));
    let before = sample(pid, sim_pid, port)?;
    std::thread::sleep(Duration::from_secs_f64(opts.seconds));
    let after = sample(pid, sim_pid, port)?;
    drop(collector);
    drop(simulator);
    Ok(report(opts.rate_per_s, &before, &after))
}

fn report(rate_per_s: u32, before: &Sample, after: &Sample) -> CollectorBenchReport {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    let per_s = |n: u64| n as f64 / secs;
    let delta = |key: &(String, String)| {
        after.frames[key].saturating_sub(before.frames.get(key).copied().unwrap_or(0))
    };
    let (mut by_exchange, mut by_channel) = (BTreeMap::new(), BTreeMap::new());
    for key in after.frames.keys() {
        *by_exchange.entry(key.0.clone()).or_insert(0) += delta(key);
        *by_channel.entry(key.1.clone()).or_insert(0) += delta(key);
    }
    let frames: u64 = by_exchange.values().sum();
    let cpu_s = after.cpu_s - before.cpu_s;
    let (b, a) = (&before.status, &after.status);
    let voluntary = a.voluntary_ctxt_switches - b.voluntary_ctxt_switches;
    let involuntary = a.nonvoluntary_ctxt_switches - b.nonvoluntary_ctxt_switches;
    let round = |x: f64, places: i32| (x * 10f64.powi(places)).round() / 10f64.powi(places);
    CollectorBenchReport {
        rate_per_s,
        seconds: round(secs, 3),
        frames,
        frames_per_s: round(per_s(frames), 1),
        cpu_us_per_frame: round(cpu_s * 1e6 / frames.max(1) as f64, 2),
        cpu_percent_of_core: round(cpu_s * 100.0 / secs, 3),
        rss_mb: round(a.rss_kib as f64 / 1024.0, 1),
        peak_rss_mb: round(a.peak_rss_kib as f64 / 1024.0, 1),
        threads: a.threads,
        ctx_switches_per_s: round(per_s(voluntary + involuntary), 1),
        voluntary_ctx_switches_per_s: round(per_s(voluntary), 1),
        involuntary_ctx_switches_per_s: round(per_s(involuntary), 1),
        simulator_cpu_percent_of_core: after
            .sim_cpu_s
            .zip(before.sim_cpu_s)
            .map(|(a, b)| round((a - b) * 100.0 / secs, 2)),
        frames_per_s_by_exchange: by_exchange
            .into_iter()
            .map(|(k, n)| (k, round(per_s(n), 1)))
            .collect(),
        frames_per_s_by_channel: by_channel
            .into_iter()
            .map(|(k, n)| (k, round(per_s(n), 1)))
            .collect(),
        dir: None,
        streams: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_are_read_per_exchange_and_channel() {
        let text = "# TYPE marketprism_exchange_frames_received_total counter\n\
            marketprism_exchange_frames_received_total{exchange=\"okx_spot\",channel=\"trades\"} 12\n\
            marketprism_exchange_frames_received_total{exchange=\"okx_spot\",channel=\"control\"} 3\n\
            marketprism_exchange_bad_frames_total{exchange=\"okx_spot\",reason=\"x\"} 9\n";
        let counts = frame_counts(text);
        assert_eq!(counts.len(), 2);
        assert_eq!(counts[&("okx_spot".into(), "trades".into())], 12);
        assert_eq!(counts[&("okx_spot".into(), "control".into())], 3);
    }

    #[test]
    fn the_run_config_has_every_product_line_at_the_simulator() {
        let endpoints: serde_json::Value = marketprism_model::Exchange::ALL
            .iter()
            .map(|e| {
                (
                    e.as_str().to_owned(),
                    serde_json::json!({"ws_url": "ws://127.0.0.1:9", "rest_url": "http://127.0.0.1:9"}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        let output = Output::Parquet {
            flush_interval_ms: Some(9_000),
        };
        let yaml = run_config(
            &endpoints,
            Path::new("/tmp/x"),
            9100,
            (Some(1), Some(5)),
            &output,
        )
        .unwrap();
        let config = marketprism_config::Config::from_yaml(&yaml).unwrap();
        assert_eq!(config.collector.worker_threads, 1);
        assert_eq!(config.collector.wake_coalesce_ms, 5);
        let parquet = config.outputs.parquet.as_ref().unwrap();
        assert_eq!(parquet.flush_interval_ms, 9_000);
        assert_eq!(config.exchanges.len(), 9);
        assert!(
            config.simulator.is_none(),
            "the simulator is another process"
        );
        assert!(
            config
                .exchanges
                .iter()
                .all(|e| e.endpoints.ws_url.as_deref() == Some("ws://127.0.0.1:9"))
        );
        let no_endpoints = serde_json::json!({});
        assert!(
            run_config(
                &no_endpoints,
                Path::new("/tmp/x"),
                9100,
                (None, None),
                &output
            )
            .is_err()
        );
    }

    #[test]
    fn the_jetstream_run_config_publishes_into_streams_of_its_own_and_writes_no_parquet() {
        let endpoints: serde_json::Value = marketprism_model::Exchange::ALL
            .iter()
            .map(|e| {
                (
                    e.as_str().to_owned(),
                    serde_json::json!({"ws_url": "ws://h:9", "rest_url": "http://h:9"}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into();
        let dir = Path::new("/tmp/marketprism-bench-collector-42-1764000000123456789");
        let run = bench_run_name(dir);
        assert_eq!(run, "BENCH_000123456789");
        let output = Output::JetStream {
            url: "nats://127.0.0.1:4222".into(),
            run: run.clone(),
        };
        let yaml = run_config(&endpoints, dir, 9100, (None, None), &output).unwrap();
        let config = marketprism_config::Config::from_yaml(&yaml).unwrap();
        assert!(config.outputs.effective_parquet().is_none(), "{yaml}");
        let nats = config.outputs.nats.as_ref().unwrap();
        assert_eq!(nats.url, "nats://127.0.0.1:4222");
        assert_eq!(nats.subject_prefix, run);
        assert_eq!(nats.market_data_stream.name, "BENCH_000123456789_MD");
        assert_eq!(nats.orderbook_stream.name, "BENCH_000123456789_OB");
    }
}
