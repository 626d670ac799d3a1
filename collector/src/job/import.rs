//! `job import`: a Parquet dataset written by the embedded default into ClickHouse, one unit per
//! file (its path relative to the dataset root), through the sink's own writer
//! ([`ClickHouseWriter::insert_rows`]: schema check, RowBinary insert into the hot table, the cold one
//! fed by its view). A file redone after a crash inserts rows whose ReplacingMergeTree keys are
//! already there, so after `FINAL` (or a merge) nothing is duplicated.
//!
//! Files of the dataset that are not data files (not `*.parquet` in any case, hidden temporaries,
//! hidden directories) are not imported but counted and named in the report (`skipped_files`,
//! `skipped`); a data file that cannot be read fails its unit.
//!
//! Failure steps: `read` (a damaged file, no `data_type=` in its path), `insert` (the server
//! refused or was unreachable; the insert is retried on the next `--retry-failed` run).

use super::plan::{data_type_of, import_units, list_dataset_all};
use super::{
    CommonArgs, JobOutcome, JobReport, blocking, dataset_root, default_work_dir, failure_lines,
    run_options, show_stats,
};
use crate::error::{Error, Result};
use marketprism_config::Config;
use marketprism_jobs::{UnitError, UnitId, WorkDir, run};
use marketprism_pipeline::store::ClickHouseWriter;
use marketprism_pipeline::store::parquet::compact_io::compacted_from;
use marketprism_pipeline::store::parquet::read_file;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `job import --parquet DIR --config FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The dataset's root: the directory holding the `date=…` partitions
    /// (`date=…/exchange=…/data_type=…/part-….parquet`), the Parquet output's `dir`.
    #[arg(long)]
    pub parquet: PathBuf,
    /// The config whose `sink.clickhouse` is the target (credentials from the environment).
    #[arg(long, short, env = "MARKETPRISM_CONFIG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The job's name in its work directory and reports.
pub const JOB: &str = "import";

pub async fn run_import(args: ImportArgs) -> Result<JobOutcome> {
    let config = Config::load(&args.config)?;
    let clickhouse = config.sink.map(|s| s.clickhouse).ok_or_else(|| {
        Error::Other("invalid config: sink: job import needs `sink.clickhouse`".into())
    })?;
    let root = dataset_root(&args.parquet)?;
    let work_dir = args.common.work_dir.clone().unwrap_or_else(|| {
        default_work_dir(
            JOB,
            &format!(
                "{}|{}|{}",
                root.display(),
                clickhouse.url,
                clickhouse.hot_database
            ),
        )
    });
    if args.common.show_stats {
        return show_stats(&work_dir, JOB);
    }
    let opts = run_options(&args.common);
    let writer = ClickHouseWriter::connect(&clickhouse).await?;
    let handle = tokio::runtime::Handle::current();
    let rows = std::sync::Arc::new(AtomicU64::new(0));
    let inserted = rows.clone();
    let wd_path = work_dir.clone();
    let summary = blocking(move || {
        let mut wd = WorkDir::open(&wd_path, JOB)?;
        let listing = list_dataset_all(&root)?;
        let units = import_units(&listing.files);
        let covered = mark_compactions_of_imported_files(&mut wd, &root, &units)?;
        let work = |id: &UnitId| {
            let n = import_file(&handle, &writer, &root, id)?;
            inserted.fetch_add(n, Ordering::Relaxed);
            Ok(())
        };
        let summary = run(&mut wd, || units.iter().cloned(), &opts, work, |_| {})?;
        Ok((summary, listing.skipped, failure_lines(&wd), covered))
    })
    .await?;
    let (summary, skipped, failures, covered) = summary;
    if !skipped.is_empty() {
        tracing::warn!(count = skipped.len(), first = %skipped[0], "files in the dataset that are not data files were not imported");
    }
    let details = serde_json::json!({
        "rows_inserted": rows.load(Ordering::Relaxed),
        "compacted_already_imported": covered,
        "skipped_files": skipped.len(),
        "skipped": skipped.iter().take(SKIPPED_LISTED).collect::<Vec<_>>(),
    });
    let mut report = JobReport::new(JOB, &work_dir, &summary, details);
    report.first = failures;
    Ok(JobOutcome::Ran(report))
}

/// Records as done every compacted file of the plan whose replaced files (its footer's list) were all
/// imported already: its rows are in ClickHouse, and importing it again would only double them until
/// a merge. A compacted file with any of its sources not imported is imported whole (the table's keys
/// collapse the overlap). Returns how many were recorded.
fn mark_compactions_of_imported_files(
    wd: &mut WorkDir,
    root: &std::path::Path,
    units: &[UnitId],
) -> std::result::Result<u64, marketprism_jobs::JobError> {
    let mut covered = 0;
    for id in units {
        let (dir, name) = id.as_str().rsplit_once('/').unwrap_or(("", id.as_str()));
        if !name.starts_with("compacted-") || wd.is_done(id.as_str()) {
            continue;
        }
        // An unreadable footer is the unit's own failure to report, when it is imported.
        let Ok(Some(sources)) = compacted_from(&root.join(id.as_str())) else {
            continue;
        };
        let path = |n: &str| {
            if dir.is_empty() {
                n.to_owned()
            } else {
                format!("{dir}/{n}")
            }
        };
        if !sources.is_empty() && sources.iter().all(|n| wd.is_done(&path(n))) {
            wd.record_done(id)?;
            covered += 1;
        }
    }
    wd.sync()?;
    Ok(covered)
}

/// The most skipped files named in the report (all are counted).
pub const SKIPPED_LISTED: usize = 20;

/// One unit: reads the file and inserts its rows; the rows inserted.
fn import_file(
    handle: &tokio::runtime::Handle,
    writer: &ClickHouseWriter,
    root: &Path,
    id: &UnitId,
) -> Result<u64, UnitError> {
    let rel = id.as_str();
    let data_type = data_type_of(rel)
        .ok_or_else(|| UnitError::new("read", "no data_type=<table> component in the path"))?;
    let path = root.join(rel);
    let rows = read_file(&path, data_type)
        .map_err(|e| UnitError::new("read", format!("{}: {e}", path.display())))?;
    if rows.is_empty() {
        return Ok(0);
    }
    handle
        .block_on(writer.insert_rows(&rows))
        .map_err(|e| UnitError::new("insert", e))?;
    Ok(rows.len() as u64)
}
