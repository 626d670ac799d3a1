//! `marketprism-collector job …`: the resumable job kinds over the framework of `marketprism_jobs`.
//!
//! | kind | unit | module |
//! |---|---|---|
//! | `import`: a Parquet dataset into ClickHouse | one file (its path relative to the dataset root) | [`import`] |
//! | `replay`: Parquet or ClickHouse back onto NATS or stdout (NDJSON) in exchange-time order | one data type × UTC day | [`replay`] |
//! | `verify`: hot vs cold, ClickHouse vs Parquet: counts, keys, duplicates, times, gaps | one table × UTC day × exchange × symbol | [`verify`] |
//! | `repair`: copies what verify finds missing (hot → cold, Parquet → ClickHouse), verifies again | as verify | [`verify`] |
//! | `backfill`: trade gaps filled from the venues' REST history through JetStream, recorded in `gap_fills` | one gap | [`backfill`] |
//!
//! Pure pieces (planning, filters, the lazy k-way merge, pacing, verify's units and comparison) are
//! in [`plan`], [`merge`] and [`verify_plan`] with their unit tests; the kinds' modules are the I/O shell. Why here and not in `marketprism-jobs`:
//! the kinds need the pipeline's Parquet reader, ClickHouse writer and NATS streams (parquet,
//! clickhouse, async-nats), which the framework crate must not pull in; the collector already
//! depends on all of them, and its binary stays a thin shell.
//!
//! Every rerun of the same command resumes in the same work directory (`--work-dir`, default
//! `.marketprism-jobs/<kind>-<hash of the arguments>`): finished units are skipped, `--retry-failed`
//! runs only the failed ones, `--show-stats` prints progress and failures by step without running.
//!
//! Shared by every kind (and for the kinds to come): [`dataset_root`] (the one `--parquet` rule: the
//! directory holding the `date=…` partitions, canonical), [`start_afresh_if_complete`] (a kind that
//! checks the present reruns a completed run from scratch, the old files in `previous/`),
//! [`pinned_window`] (`--last`, pinned in the work directory), `--summary FILE`
//! ([`summary::Summary`], written by [`run_job`] whatever the outcome), [`io_error`] (every I/O
//! error names its path).

pub mod backfill;
pub mod backfill_io;
pub mod dataset;
pub mod import;
pub mod merge;
pub mod plan;
pub mod replay;
pub mod replay_io;
pub mod rerun;
pub mod summary;
pub mod verify;
pub mod verify_io;
pub mod verify_plan;

use crate::error::{Error, Result};
use marketprism_jobs::{RunOptions, RunSummary, Selection, WorkDir};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use dataset::dataset_root;
pub use rerun::{
    PREVIOUS_DIR, WINDOW_FILE, Window, last_window, now_floored_ms, pinned_window, run_complete,
    start_afresh_if_attempted, start_afresh_if_complete,
};
pub use summary::{Summary, failure_lines, summary_of, write_summary};

/// Options every job kind takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// The job's work directory (status log, checkpoint, progress.json); rerunning with the same
    /// one resumes. Default: `.marketprism-jobs/<kind>-<hash of the arguments>`.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Run only the units whose last attempt failed.
    #[arg(long, conflicts_with = "show_stats")]
    pub retry_failed: bool,
    /// Print the job's progress and failures grouped by step, and exit without running.
    #[arg(long)]
    pub show_stats: bool,
    /// Units per durable batch: the status log is fsynced and progress.json rewritten after this
    /// many units or 1 s, whichever comes first.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// At the end of the run (success or failure, also an error before it), write a JSON summary
    /// of at most 4096 bytes to this file (a Kubernetes termination message).
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

/// `marketprism-collector job <kind>`.
#[derive(Debug, clap::Subcommand)]
pub enum JobCommand {
    /// Import a Parquet dataset written by the embedded default into ClickHouse, one unit per file.
    Import(import::ImportArgs),
    /// Replay stored events onto NATS subjects or stdout (NDJSON) in exchange-time order.
    Replay(replay::ReplayArgs),
    /// Compare hot vs cold (and ClickHouse vs a Parquet dataset) per table × day × exchange ×
    /// symbol; exit 1 on any discrepancy.
    Verify(verify::VerifyArgs),
    /// Copy what verify finds missing (hot → cold, Parquet → ClickHouse), then verify again.
    Repair(verify::VerifyArgs),
    /// Fill trade gaps from the venues' REST history: publish the missing trades through JetStream,
    /// wait until ClickHouse holds them, record the fill in `gap_fills`.
    Backfill(backfill::BackfillArgs),
}

/// What a job run did (printed as one JSON line).
#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: &'static str,
    pub work_dir: PathBuf,
    /// Units in the plan.
    pub total: u64,
    /// Units finished, before this run.
    pub done_before: u64,
    /// Units finished, now.
    pub done: u64,
    /// Units whose last attempt failed.
    pub failed: u64,
    pub pending: u64,
    /// Units attempted in this run (done before: skipped).
    pub attempted: u64,
    pub succeeded: u64,
    pub cancelled: bool,
    /// `verify`: discrepancies found in the plan's units (any fails the run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discrepancies: Option<u64>,
    /// Kind-specific figures (rows inserted, events sent, duplicates).
    pub details: serde_json::Value,
    /// The time range of the plan, UTC ms, `to` exclusive (kinds with one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<i64>,
    /// Why a run that did its units did nothing (replay: no event matched the path, range or
    /// filters); makes the run fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty: Option<String>,
    /// The first problems (failed units, discrepancies), human-readable, for `--summary`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub first: Vec<String>,
    /// A plan without units is a success (backfill of recorded gaps: none in the range).
    #[serde(skip)]
    pub empty_plan_ok: bool,
}

impl JobReport {
    pub(crate) fn new(
        job: &'static str,
        work_dir: &Path,
        s: &RunSummary,
        details: serde_json::Value,
    ) -> Self {
        JobReport {
            job,
            work_dir: work_dir.to_owned(),
            total: s.progress.total,
            done_before: s.before.done,
            done: s.progress.done,
            failed: s.progress.failed,
            pending: s.progress.pending,
            attempted: s.attempted,
            succeeded: s.succeeded,
            cancelled: s.cancelled,
            discrepancies: None,
            details,
            from_ms: None,
            to_ms: None,
            empty: None,
            first: Vec::new(),
            empty_plan_ok: false,
        }
    }

    /// Exit status: failed units, a cancelled run, (verify) a discrepancy, or a plan without a single
    /// unit (nothing matched: a wrong database, path or filter), or a run that did its units but found
    /// nothing to do in them ([`JobReport::empty`]: replay sent 0 events) are not success.
    pub fn succeeded(&self) -> bool {
        (self.total > 0 || self.empty_plan_ok)
            && self.empty.is_none()
            && self.failed == 0
            && !self.cancelled
            && self.pending == 0
            && self.discrepancies.unwrap_or(0) == 0
    }
}

/// The outcome of `job …`: a run's report, or `--show-stats`' text.
#[derive(Debug)]
// One per process: its size does not matter, and kinds build `Ran(report)` without a box.
#[allow(clippy::large_enum_variant)]
pub enum JobOutcome {
    Ran(JobReport),
    Stats(String),
}

impl JobCommand {
    /// The kind's name (its work directories and reports).
    pub fn name(&self) -> &'static str {
        match self {
            JobCommand::Import(_) => import::JOB,
            JobCommand::Replay(_) => replay::JOB,
            JobCommand::Verify(_) => verify::Kind::Verify.as_str(),
            JobCommand::Repair(_) => verify::Kind::Repair.as_str(),
            JobCommand::Backfill(_) => backfill::JOB,
        }
    }

    /// The options every kind takes.
    pub fn common(&self) -> &CommonArgs {
        match self {
            JobCommand::Import(a) => &a.common,
            JobCommand::Replay(a) => &a.common,
            JobCommand::Verify(a) | JobCommand::Repair(a) => &a.common,
            JobCommand::Backfill(a) => &a.common,
        }
    }
}

/// Runs a job command; with `--summary FILE`, writes its [`Summary`] there whatever the outcome
/// (an error before the run included). A summary that cannot be written fails a run that succeeded.
pub async fn run_job(command: JobCommand) -> Result<JobOutcome> {
    let (job, summary_path) = (command.name(), command.common().summary.clone());
    let outcome = match command {
        JobCommand::Import(args) => import::run_import(args).await,
        JobCommand::Replay(args) => replay::run_replay(args).await,
        JobCommand::Verify(args) => verify::run_verify(verify::Kind::Verify, args).await,
        JobCommand::Repair(args) => verify::run_verify(verify::Kind::Repair, args).await,
        JobCommand::Backfill(args) => backfill::run_backfill(args).await,
    };
    if let (Some(path), Some(summary)) = (summary_path, summary_of(job, &outcome))
        && let Err(e) = write_summary(&path, &summary)
    {
        tracing::error!(error = %e, "summary not written");
        if outcome.is_ok() {
            return Err(e);
        }
    }
    outcome
}

/// An I/O error naming what was done and the path: `open /data/x: No such file or directory`.
pub fn io_error(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |e| Error::Other(format!("{op} {}: {e}", path.display()))
}

/// `.marketprism-jobs/<kind>-<16 hex of the XXH3 of key>`.
pub fn default_work_dir(kind: &str, key: &str) -> PathBuf {
    PathBuf::from(".marketprism-jobs").join(format!(
        "{kind}-{:016x}",
        marketprism_jobs::fingerprint(key)
    ))
}

/// `--show-stats`: the work directory's stats as text.
pub fn show_stats(work_dir: &Path, job: &str) -> Result<JobOutcome> {
    let wd = WorkDir::open(work_dir, job)?;
    Ok(JobOutcome::Stats(format!(
        "work directory {}\n{}",
        work_dir.display(),
        wd.stats()?
    )))
}

/// The run options of `common`, cancelled by SIGINT or SIGTERM (the current batch is committed).
pub fn run_options(common: &CommonArgs) -> RunOptions {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("signal received: finishing the current batch");
        flag.store(true, Ordering::Relaxed);
    });
    RunOptions {
        selection: if common.retry_failed {
            Selection::FailedOnly
        } else {
            Selection::Pending
        },
        batch_size: common.batch_size.max(1),
        cancel: Some(cancel),
        ..RunOptions::default()
    }
}

/// Runs `f` on a blocking thread (the framework's runner is synchronous; unit work enters the
/// runtime with `Handle::block_on`).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other(format!("job thread: {e}")))?
}

/// A job's exit status and why: 0 done; 1 the plan ran to its end and found discrepancies (verify,
/// repair: an answer, not a failure to retry); 2 units failed or are pending, the run was stopped,
/// or nothing matched (a retry, after fixing the cause, resumes).
pub fn exit_status(report: &JobReport) -> (i32, String) {
    let incomplete = report.failed > 0 || report.pending > 0 || report.cancelled;
    if let Some(why) = &report.empty {
        return (2, why.clone());
    }
    if report.total == 0 && !report.empty_plan_ok {
        return (
            2,
            "nothing to do: no unit matched (check the database names, --parquet path and filters)"
                .into(),
        );
    }
    if incomplete {
        return (
            2,
            format!(
                "{} of {} units failed, {} pending{} (see --show-stats)",
                report.failed,
                report.total,
                report.pending,
                if report.cancelled { ", cancelled" } else { "" }
            ),
        );
    }
    if let Some(n) = report.discrepancies.filter(|&n| n > 0) {
        return (
            1,
            format!(
                "{n} discrepancies left (the JSON line's details; verify: the table above and --json FILE)"
            ),
        );
    }
    if !report.succeeded() {
        return (2, "the run did not succeed".into());
    }
    (0, String::new())
}

#[cfg(test)]
mod report_tests {
    use super::*;

    fn report(total: u64, failed: u64) -> JobReport {
        JobReport {
            job: "verify",
            work_dir: PathBuf::from("w"),
            total,
            done_before: 0,
            done: total - failed,
            failed,
            pending: 0,
            attempted: total,
            succeeded: total - failed,
            cancelled: false,
            discrepancies: Some(0),
            details: serde_json::Value::Null,
            from_ms: None,
            to_ms: None,
            empty: None,
            first: vec![],
            empty_plan_ok: false,
        }
    }

    #[test]
    fn an_empty_plan_is_not_a_success() {
        assert!(report(3, 0).succeeded());
        assert!(!report(3, 1).succeeded());
        // A database, path or filter that matches nothing must not pass as "no discrepancy".
        assert!(!report(0, 0).succeeded());
        // Units done but nothing in them (replay: 0 events sent) is not a success either.
        let mut r = report(3, 0);
        r.empty = Some("0 events sent".into());
        assert!(!r.succeeded());
    }
}
