//! `bench collector`: the whole collector's cost per frame, as a user runs it. The exchange simulator
//! runs as one child process (`simulate`, at `simulator.rate_per_s`), the collector as another (`run`,
//! all nine product lines of `config/demo.yaml` into Parquet in a temporary directory, pointed at the
//! simulator's endpoints); both are this very binary. After a warm-up the collector process is sampled
//! over the measured window: CPU (`utime + stime` of `/proc/<pid>/stat`), RSS (`VmRSS`, `VmHWM`),
//! context switches (`/proc/<pid>/status`), and frames from its own `/metrics`
//! (`marketprism_exchange_frames_received_total`, per exchange and channel).

use super::collector_config::{DeleteStreams, Output, jetstream_preflight, run_config};
use super::procfs::{PidStatus, pid_cpu_seconds};
use anyhow::{Context, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The counter the frames come from.
const FRAMES: &str = "marketprism_exchange_frames_received_total";

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
    /// Set to end the bench early (a signal): it then fails with `interrupted`, cleaning up.
    pub stop: Arc<AtomicBool>,
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
    /// What ran as the child: `collector` (`run`) or `floor` (`--floor`).
    pub child: &'static str,
    /// Where the collector wrote: `parquet` or `jetstream` (`--nats-url`).
    pub output: &'static str,
    /// The collector's `collector.wake_coalesce_ms` as set (absent: the default, off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wake_coalesce_ms: Option<u64>,
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
    get(port, "/metrics").map(|(_, body)| body)
}

/// Status and body of `GET path` on `127.0.0.1:port` (`None` while it does not answer).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// Sleep `d`, or fail as soon as `stop` is set (the bench was interrupted: the children and the
/// run's streams and directory are then cleaned up as on any error).
fn pause(d: Duration, stop: &AtomicBool) -> anyhow::Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(100)));
    }
    Ok(())
}

/// The error for a child that exited early, with its log.
fn exited(what: &str, child: &mut Child, log: &Path) -> Option<anyhow::Error> {
    let status = child.try_wait().ok()??;
    let log = std::fs::read_to_string(log).unwrap_or_default();
    Some(anyhow::anyhow!(
        "the {what} exited ({status}); its log:\n{log}"
    ))
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
    let output = Output::of(opts, &dir);
    report.child = if opts.floor { "floor" } else { "collector" };
    report.output = match output {
        Output::Parquet { .. } => "parquet",
        Output::JetStream { .. } => "jetstream",
    };
    report.wake_coalesce_ms = opts.wake_coalesce_ms;
    if opts.keep {
        report.streams = output.streams().map_or_else(Vec::new, Vec::from);
        report.dir = Some(dir);
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
    let printed: serde_json::Value = serde_json::from_str(&first).with_context(|| {
        let log = std::fs::read_to_string(dir.join("simulator.log")).unwrap_or_default();
        format!("simulate printed no endpoints ({first:?}); its log:\n{log}")
    })?;
    let port = free_port()?;
    let output = Output::of(opts, dir);
    // `--keep` keeps the streams too (their names are in the report).
    let yaml = run_config(
        &printed["endpoints"],
        dir,
        port,
        (opts.worker_threads, opts.wake_coalesce_ms),
        &output,
    )?;
    std::fs::write(dir.join("collector.yaml"), yaml)?;
    // JetStream as the collector will reach it: its config (environment included), its client.
    let nats = match &output {
        Output::JetStream { .. } => {
            marketprism_config::Config::load(&dir.join("collector.yaml"))?
                .outputs
                .nats
        }
        Output::Parquet { .. } => None,
    };
    if let Some(nats) = &nats {
        jetstream_preflight(nats)?;
    }
    // `--keep` keeps the streams too (their names are in the report).
    let _streams = nats.filter(|_| !opts.keep).map(DeleteStreams);
    let mut collector = Reaped(
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
    let collector_log = dir.join("collector.log");
    loop {
        if let Some(text) = scrape(port)
            && frame_counts(&text).values().sum::<u64>() > 0
        {
            break;
        }
        if let Some(e) = exited("collector", &mut collector.0, &collector_log) {
            return Err(e);
        }
        if let Some(e) = exited("simulator", &mut simulator.0, &dir.join("simulator.log")) {
            return Err(e);
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(&collector_log).unwrap_or_default();
            bail!("no frame counted within 60 s; collector log:\n{log}");
        }
        pause(Duration::from_millis(200), &opts.stop)?;
    }
    pause(Duration::from_secs_f64(opts.warmup_s), &opts.stop)?;
    let before = sample(pid, sim_pid, port)?;
    pause(Duration::from_secs_f64(opts.seconds), &opts.stop)?;
    let after = sample(pid, sim_pid, port)?;
    // A collector that lost its output (an unreachable NATS) still counts frames: its readiness says
    // so. The floor reader has no components to be ready.
    match get(port, "/readyz") {
        _ if opts.floor => {}
        Some((200, _)) => {}
        Some((status, body)) => {
            bail!("the collector was not ready at the end of the window ({status}): {body}")
        }
        None => bail!("the collector's /readyz does not answer"),
    }
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
        child: "collector",
        output: "parquet",
        wake_coalesce_ms: None,
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
}
