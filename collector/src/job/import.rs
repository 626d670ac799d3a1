//! `job import`: a Parquet dataset written by the embedded default into ClickHouse, one unit per
//! file (its path relative to the dataset root), through the sink's own writer
//! ([`ClickHouseWriter::insert_rows`]: schema check, RowBinary insert into the hot table, the cold one
//! fed by its view). A file redone after a crash inserts rows whose ReplacingMergeTree keys are
//! already there, so after `FINAL` (or a merge) nothing is duplicated.
//!
//! Failure steps: `read` (a damaged file, no `data_type=` in its path), `insert` (the server
//! refused or was unreachable; the insert is retried on the next `--retry-failed` run).

use super::plan::{data_type_of, import_units, list_dataset};
use super::{
    CommonArgs, JobOutcome, JobReport, blocking, default_work_dir, run_options, show_stats,
};
use crate::error::{Error, Result};
use marketprism_config::Config;
use marketprism_jobs::{UnitError, UnitId, WorkDir, run};
use marketprism_pipeline::store::ClickHouseWriter;
use marketprism_pipeline::store::parquet::read_file;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `job import --parquet DIR --config FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The dataset's root (`date=…/exchange=…/data_type=…/part-….parquet`).
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
    let root = std::path::absolute(&args.parquet)?;
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
        let units = import_units(&list_dataset(&root)?);
        let work = |id: &UnitId| {
            let n = import_file(&handle, &writer, &root, id)?;
            inserted.fetch_add(n, Ordering::Relaxed);
            Ok(())
        };
        Ok(run(&mut wd, || units.iter().cloned(), &opts, work, |_| {})?)
    })
    .await?;
    let details = serde_json::json!({ "rows_inserted": rows.load(Ordering::Relaxed) });
    Ok(JobOutcome::Ran(JobReport::new(
        JOB, &work_dir, &summary, details,
    )))
}

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
    let rows = read_file(&root.join(rel), data_type).map_err(|e| UnitError::new("read", e))?;
    if rows.is_empty() {
        return Ok(0);
    }
    handle
        .block_on(writer.insert_rows(&rows))
        .map_err(|e| UnitError::new("insert", e))?;
    Ok(rows.len() as u64)
}
