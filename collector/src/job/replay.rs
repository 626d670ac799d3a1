//! `job replay`: stored events from Parquet or ClickHouse back onto NATS subjects or stdout
//! (NDJSON), for a time range and a filter, in exchange-time (`ts_ms`) order across streams, at the
//! original pace times `--speed` or as fast as possible.
//!
//! Units are partitions, one per data type × UTC day ([`super::plan::replay_plan`]). A day's
//! selected partitions are replayed together: their sources (Parquet files, ClickHouse hour pages)
//! go through one lazy k-way merge ([`super::merge::LazyMerge`]), and the days go in order, so the
//! whole replay is in exchange-time order while at most the sources overlapping the current time are
//! in memory. A day's units are recorded done once everything of the day was written (stdout
//! flushed) or acked by JetStream; a replay killed in the middle of a day redoes that day's
//! partitions, and JetStream drops the copies by `Nats-Msg-Id` (the live publisher's id) within the
//! stream's duplicate window (`duplicate_window_s`, 120 s for MARKET_DATA by default). To stdout
//! (without `--work-dir`) every run starts afresh in a temporary work directory: a rerun prints
//! everything again.
//!
//! Failure steps: `read` (a damaged file, a failed query), `publish` (NATS refused or did not ack),
//! `write` (stdout closed). A failure stops the day: all its selected partitions are failed.

use super::merge::{LazyMerge, Pacer};
use super::plan::{Filter, Partition, replay_plan};
use super::replay_io::{
    ClickHouseSource, Output, OutputStats, Source, open_source, parquet_sources,
};
use super::{
    CommonArgs, JobOutcome, JobReport, blocking, dataset_root, default_work_dir, failure_lines,
    run_options, show_stats,
};
use crate::error::{Error, Result};
use marketprism_config::{Config, NatsConfig};
use marketprism_jobs::{UnitError, UnitId, WorkDir, run};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// `job replay (--parquet DIR | --clickhouse --config FILE) --from T --to T … (--stdout | --nats X)`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Read this Parquet dataset (`date=…/exchange=…/data_type=…/*.parquet`).
    #[arg(
        long,
        required_unless_present = "clickhouse",
        conflicts_with = "clickhouse"
    )]
    pub parquet: Option<PathBuf>,
    /// Read ClickHouse: `--config`'s `sink.clickhouse` (credentials from the environment), `FINAL`.
    #[arg(long, requires = "config")]
    pub clickhouse: bool,
    /// The collector config (for `--clickhouse`).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// With --clickhouse: the database to read (default: the hot database).
    #[arg(long)]
    pub database: Option<String>,
    /// First exchange time replayed: RFC 3339 or UTC ms, inclusive.
    #[arg(long)]
    pub from: String,
    /// End of the range: RFC 3339 or UTC ms, exclusive.
    #[arg(long)]
    pub to: String,
    /// Only these exchanges (comma-separated config names, e.g. `binance_spot`).
    #[arg(long, value_delimiter = ',')]
    pub exchange: Vec<String>,
    /// Only these data types (table names, e.g. `trades,orderbooks`).
    #[arg(long, value_delimiter = ',')]
    pub data_type: Vec<String>,
    /// Only these normalized symbols (e.g. `BTC-USDT`).
    #[arg(long, value_delimiter = ',')]
    pub symbol: Vec<String>,
    /// Write NDJSON of the normalized events to stdout.
    #[arg(long, required_unless_present = "nats", conflicts_with = "nats")]
    pub stdout: bool,
    /// Publish to JetStream: a `nats://` URL, or a config file (its `outputs.nats`, else `sink.nats`:
    /// subject prefix and stream limits).
    #[arg(long)]
    pub nats: Option<String>,
    /// Exchange-time ms per wall ms: 1 = the original pace (the default), 10 = ten times faster.
    #[arg(long, conflicts_with = "as_fast_as_possible")]
    pub speed: Option<f64>,
    /// No pacing.
    #[arg(long)]
    pub as_fast_as_possible: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The job's name in its work directory and reports.
pub const JOB: &str = "replay";

fn invalid(what: String) -> Error {
    Error::Other(format!("invalid argument: {what}"))
}

/// The filter of `args` (times parsed, names checked).
pub fn filter_of(args: &ReplayArgs) -> Result<Filter> {
    Filter::parse(
        Some(&args.from),
        Some(&args.to),
        &args.exchange,
        &args.data_type,
        &args.symbol,
    )
    .map_err(invalid)
}

/// `--nats`: a config file's NATS section, or a URL with the default streams.
fn nats_config(arg: &str) -> Result<NatsConfig> {
    let path = std::path::Path::new(arg);
    if path.is_file() {
        let config = Config::load(path)?;
        return config
            .outputs
            .nats
            .or(config.sink.map(|s| s.nats))
            .ok_or_else(|| invalid(format!("--nats {arg}: no outputs.nats or sink.nats")));
    }
    // A URL: the default streams; credentials and `MARKETPRISM_TLS_CA_FILE` from the environment as
    // for a config, but the URL given here wins over `MARKETPRISM_NATS_URL`.
    let mut config = Config::default();
    config.outputs.nats = Some(NatsConfig::default());
    config.apply_env(|k| std::env::var(k).ok());
    config.resolve_tls()?;
    let mut nats = config.outputs.nats.unwrap_or_default();
    nats.url = arg.to_owned();
    Ok(nats)
}

pub async fn run_replay(args: ReplayArgs) -> Result<JobOutcome> {
    let filter = filter_of(&args)?;
    let speed = if args.as_fast_as_possible {
        None
    } else {
        Some(args.speed.unwrap_or(1.0))
    };
    if speed.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        return Err(invalid("--speed must be a positive number".into()));
    }
    let clickhouse = match (&args.parquet, &args.config) {
        (None, Some(path)) => {
            let ch = Config::load(path)?
                .sink
                .map(|s| s.clickhouse)
                .ok_or_else(|| {
                    invalid("--clickhouse needs a config with sink.clickhouse".into())
                })?;
            let db = args.database.clone().unwrap_or(ch.hot_database.clone());
            Some((ch, db))
        }
        _ => None,
    };
    // The dataset root rule (see `super::dataset`): a missing path, or one inside or above a
    // dataset, fails here naming it; canonical, so `x/` and `x` are the same job.
    let parquet = args.parquet.as_deref().map(dataset_root).transpose()?;
    let source_key = match (&parquet, &clickhouse) {
        (Some(p), _) => format!("parquet:{}", p.display()),
        (None, Some((ch, db))) => format!("clickhouse:{}/{db}", ch.url),
        (None, None) => return Err(invalid("--parquet or --clickhouse".into())),
    };
    let target_key = args.nats.clone().unwrap_or_else(|| "stdout".into());
    let key = format!("{source_key}|{filter:?}|{target_key}");
    // To stdout without --work-dir: a fresh temporary one, removed at the end.
    let temporary = args.stdout && args.common.work_dir.is_none();
    let work_dir = match &args.common.work_dir {
        Some(d) => d.clone(),
        None if temporary => std::env::temp_dir().join(format!(
            "marketprism-replay-{}-{:x}",
            std::process::id(),
            rand_suffix()
        )),
        None => default_work_dir(JOB, &key),
    };
    if args.common.show_stats {
        return show_stats(&work_dir, JOB);
    }
    let opts = run_options(&args.common);
    let ch_source = match &clickhouse {
        Some((ch, db)) => Some(ClickHouseSource::connect(ch, db).await?),
        None => None,
    };
    let output = match &args.nats {
        Some(n) => Output::nats(&nats_config(n)?).await?,
        None => Output::Stdout(std::io::BufWriter::new(std::io::stdout())),
    };
    let replayer = Replayer {
        cancel: opts.cancel.clone(),
        handle: Handle::current(),
        parquet: parquet.clone(),
        clickhouse: ch_source,
        filter: filter.clone(),
        output,
        pacer: Pacer::new(speed),
        stats: OutputStats::default(),
    };
    let wd_path = work_dir.clone();
    let plan_filter = filter.clone();
    let plan_root = parquet.clone();
    let (summary, stats, failures) = blocking(move || {
        let filter = plan_filter;
        let mut replayer = replayer;
        let mut wd = WorkDir::open(&wd_path, JOB)?;
        let mut plan = replay_plan(&filter);
        if let Some(root) = &plan_root {
            // Only the partitions the dataset holds (of a selected exchange).
            plan.retain(|p| has_partition(root, p, &filter));
        }
        let ids: Vec<UnitId> = plan
            .iter()
            .map(|p| UnitId::new(p.unit_id()))
            .collect::<Result<_, _>>()?;
        // The units this run will attempt, so a day's selected partitions are replayed together.
        let selected: HashSet<String> = ids
            .iter()
            .filter(|id| wd.selects(id.as_str(), opts.selection))
            .map(|id| id.as_str().to_owned())
            .collect();
        let index: HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        let mut results: HashMap<String, Result<(), UnitError>> = HashMap::new();
        let work = |id: &UnitId| {
            if let Some(r) = results.remove(id.as_str()) {
                return r;
            }
            let Some(&at) = index.get(id.as_str()) else {
                return Err(UnitError::new("plan", "not a unit of this replay"));
            };
            // The plan is day-major: the day's partitions are the run of neighbours with its day.
            let day = &plan[at].day;
            let first = plan[..at]
                .iter()
                .rposition(|p| &p.day != day)
                .map_or(0, |i| i + 1);
            let last = plan[at..]
                .iter()
                .position(|p| &p.day != day)
                .map_or(plan.len(), |i| at + i);
            let parts: Vec<&Partition> = (first..last)
                .filter(|&i| i == at || selected.contains(ids[i].as_str()))
                .map(|i| &plan[i])
                .collect();
            let result = replayer.day(&parts);
            for p in &parts {
                results.insert(p.unit_id(), result.clone());
            }
            results.remove(id.as_str()).unwrap_or(result)
        };
        let summary = run(&mut wd, || ids.iter().cloned(), &opts, work, |_| {})?;
        Ok((summary, replayer.stats, failure_lines(&wd)))
    })
    .await?;
    let events = stats.events;
    let mut report = JobReport::new(JOB, &work_dir, &summary, serde_json::to_value(stats)?);
    report.from_ms = Some(filter.from_ms);
    report.to_ms = Some(filter.to_ms);
    report.first = failures;
    // A fresh run that did its units (none failed) and sent nothing, or planned nothing: the
    // source, range or filters matched nothing. Not a success.
    let fresh_and_empty = summary.attempted > 0
        && summary.before.done == 0
        && summary.progress.failed == 0
        && events == 0;
    if report.total == 0 || fresh_and_empty {
        let what = nothing_matched(&args, &source_key);
        tracing::error!("{what}");
        eprintln!("error: {what}");
        report.empty = Some(what);
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    Ok(JobOutcome::Ran(report))
}

/// Whether the dataset at `root` has a `date=<day>/exchange=<selected>/data_type=<type>` directory
/// for `part`.
fn has_partition(root: &std::path::Path, part: &Partition, filter: &Filter) -> bool {
    let day_dir = root.join(format!("date={}", part.day));
    std::fs::read_dir(day_dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|ex| {
            let name = ex.file_name().to_string_lossy().into_owned();
            super::plan::exchange_of(&name).is_some_and(|x| filter.wants_exchange(x))
                && ex
                    .path()
                    .join(format!("data_type={}", part.data_type))
                    .is_dir()
        })
}

/// The message of a replay that sent nothing: the source, range and filters given.
fn nothing_matched(args: &ReplayArgs, source: &str) -> String {
    let mut filters = format!("--from {} --to {}", args.from, args.to);
    for (name, v) in [
        ("--exchange", &args.exchange),
        ("--data-type", &args.data_type),
        ("--symbol", &args.symbol),
    ] {
        if !v.is_empty() {
            filters.push_str(&format!(" {name} {}", v.join(",")));
        }
    }
    format!(
        "job replay: 0 events sent: nothing in {source} matched {filters} (check the path, the range and the filters)"
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

/// The replay's state across units: sources, output, pacing (continuous across days).
struct Replayer {
    /// The run's stop flag (SIGINT/SIGTERM), also checked within a day: a paced day can be long.
    cancel: Option<Arc<AtomicBool>>,
    handle: Handle,
    parquet: Option<PathBuf>,
    clickhouse: Option<ClickHouseSource>,
    filter: Filter,
    output: Output,
    pacer: Pacer,
    stats: OutputStats,
}

impl Replayer {
    /// Stopped by a signal in the middle of a day: exit as a kill would (status 130). The day's
    /// partitions are not recorded done, so the next run redoes them (idempotent: stdout gets them
    /// again, JetStream drops the copies by message id); committed batches are already durable.
    fn stop_if_cancelled(
        cancel: Option<&Arc<AtomicBool>>,
        output: &mut Output,
        handle: &Handle,
        stats: &mut OutputStats,
    ) {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            let _ = output.flush(handle, stats);
            tracing::warn!(
                "stopped in the middle of a day: its partitions are redone by the next run"
            );
            std::process::exit(130);
        }
    }

    /// Replays `parts` (one day's partitions) merged in exchange-time order, then flushes.
    fn day(&mut self, parts: &[&Partition]) -> Result<(), UnitError> {
        let result = self.try_day(parts);
        if result.is_err() {
            self.output.reset();
        }
        result
    }

    fn try_day(&mut self, parts: &[&Partition]) -> Result<(), UnitError> {
        let mut sources = Vec::new();
        for part in parts {
            match (&self.parquet, &self.clickhouse) {
                (Some(root), _) => sources.extend(parquet_sources(root, part, &self.filter)),
                (None, Some(ch)) => sources.extend(
                    self.handle
                        .block_on(ch.sources(part, &self.filter))
                        .map_err(|e| UnitError::new("read", e))?,
                ),
                (None, None) => return Err(UnitError::new("read", "no source")),
            }
        }
        let (filter, clickhouse, handle) = (&self.filter, self.clickhouse.as_ref(), &self.handle);
        let merge = LazyMerge::new(
            sources,
            |s: Source| open_source(s, filter, clickhouse, handle),
            |e: &marketprism_model::Event| e.ts_ms,
        );
        for event in merge {
            let event = event?;
            let wait = self.pacer.wait(event.ts_ms, Instant::now());
            if !wait.is_zero() {
                // What is due now is out before the pause.
                if let Output::Stdout(_) = self.output {
                    self.output.flush(handle, &mut self.stats)?;
                }
                let until = Instant::now() + wait;
                while let Some(left) = until.checked_duration_since(Instant::now())
                    && !left.is_zero()
                {
                    Self::stop_if_cancelled(
                        self.cancel.as_ref(),
                        &mut self.output,
                        handle,
                        &mut self.stats,
                    );
                    std::thread::sleep(left.min(Duration::from_millis(100)));
                }
            }
            Self::stop_if_cancelled(
                self.cancel.as_ref(),
                &mut self.output,
                handle,
                &mut self.stats,
            );
            self.output.send(handle, &event, &mut self.stats)?;
        }
        self.output.flush(handle, &mut self.stats)
    }
}
