//! `job verify` and `job repair`: per table × UTC day × exchange × symbol, the hot database against
//! the cold one (fed by its materialized view) and, with `--parquet`, ClickHouse (hot) against a
//! Parquet dataset: rows after `FINAL`, distinct natural keys (the table's sort key), duplicates
//! before `FINAL`, `ts_ms` range, gap rows of the stream, and the keys one side holds and the other
//! lacks.
//!
//! Units are planned from what exists ([`super::verify_plan::verify_plan`] over a `SELECT DISTINCT`
//! per table and database, and the Parquet partitions' rows). Each unit's result (figures per side,
//! discrepancies) is appended to `results.jsonl` in the work directory (fsynced) before the unit is
//! recorded done, so a resumed job's final report holds the units finished before a kill (a unit
//! redone after a kill appends again; the last line of a unit wins). The final report: a terminal
//! table of every discrepancy (stderr), `--json FILE` with every unit's figures, and the exit
//! status: verify exits 1 on any discrepancy. A rerun in the same work directory of a run that
//! completed (every unit done, none failed, not cancelled) checks again from scratch: the old files
//! move to `<work_dir>/previous/` ([`super::start_afresh_if_complete`]); an unfinished run (killed,
//! cancelled, failed units) resumes, and its finished units are reported as they were checked.
//! `--last 6h` checks `[now - 6h, now)`, the window pinned in the work directory
//! ([`super::pinned_window`]) until a run completes.
//!
//! Values are compared too: per unit a content checksum per side, and the keys whose values
//! differ named ([`Discrepancy::ValuesDiffer`]; hot vs cold in SQL, ClickHouse vs Parquet in Rust
//! over both sides' rows decoded into events alike).
//!
//! `repair` verifies a unit, copies what is missing where a copy is the fix (see
//! [`Discrepancy::repairable`]: Parquet → hot through the pipeline's writer, as `job import` does,
//! only the keys hot lacks; hot → cold with `INSERT … SELECT` of only the keys cold lacks), merges
//! the duplicates left before `FINAL` (`OPTIMIZE … PARTITION … FINAL`: the view copies a key
//! inserted into hot on to cold even when cold held it; see `Sides::optimize`), verifies again,
//! and records the unit done only when that verify finds no discrepancy at all (else it fails in
//! step `repair`, naming what is left). Both copies insert only absent keys, so a unit redone after
//! a kill copies nothing twice.
//!
//! Failure steps: `query` (a ClickHouse query failed), `read` (a Parquet file), `insert`, `copy`,
//! `optimize` (the merge of duplicates), `write` (the results file), `repair` (a discrepancy left
//! after the repair).

use super::plan::Filter;
use super::verify_io::Sides;
use super::verify_plan::{Discrepancy, UnitResult, discrepancy_table, parse_unit, verify_plan};
use super::{
    CommonArgs, JobOutcome, JobReport, blocking, dataset_root, default_work_dir, failure_lines,
    io_error, pinned_window, run_options, show_stats, start_afresh_if_complete,
};
use crate::error::{Error, Result};
use marketprism_config::Config;
use marketprism_jobs::{UnitError, UnitId, WorkDir, run};
use marketprism_pipeline::store::ClickHouseWriter;
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// `job verify|repair --config FILE [--parquet DIR] [--from T --to T] [filters]`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The config whose `sink.clickhouse` names the server and the hot and cold databases
    /// (credentials from the environment).
    #[arg(long, short, env = "MARKETPRISM_CONFIG")]
    pub config: PathBuf,
    /// Also compare the hot database with this Parquet dataset: its root, the directory holding the
    /// `date=…` partitions (`date=…/exchange=…/data_type=…`).
    #[arg(long)]
    pub parquet: Option<PathBuf>,
    /// First exchange time: RFC 3339 or UTC ms, inclusive (default: all).
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range: RFC 3339 or UTC ms, exclusive (default: all).
    #[arg(long)]
    pub to: Option<String>,
    /// The last duration (`90m`, `6h`, `1d`) instead of --from/--to: `[now - d, now)`, now floored
    /// to the minute, pinned in the work directory (`window.json`) so a resumed run checks the same
    /// window; a run after a complete one takes a new window.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub last: Option<String>,
    /// Only these exchanges (comma-separated config names, e.g. `binance_spot`).
    #[arg(long, value_delimiter = ',')]
    pub exchange: Vec<String>,
    /// Only these data types (table names, e.g. `trades,orderbooks`).
    #[arg(long, value_delimiter = ',')]
    pub data_type: Vec<String>,
    /// Only these normalized symbols (e.g. `BTC-USDT`).
    #[arg(long, value_delimiter = ',')]
    pub symbol: Vec<String>,
    /// Write the final report (every unit's figures and discrepancies) as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The results file in the work directory: one [`UnitResult`] per line.
pub const RESULTS_FILE: &str = "results.jsonl";

/// Which of the two kinds runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Verify,
    Repair,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Verify => "verify",
            Kind::Repair => "repair",
        }
    }
}

/// Appends unit results, each line written and fsynced before its unit is recorded done.
struct ResultsFile(std::fs::File);

impl ResultsFile {
    /// Opens for appending; a torn last line (kill -9 in a write) is ended, so it stays one
    /// unreadable line that [`read_results`] skips (its unit was not recorded done: it is redone).
    fn open(path: &Path) -> std::io::Result<ResultsFile> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        let len = f.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            f.seek(std::io::SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                f.write_all(b"\n")?;
            }
        }
        Ok(ResultsFile(f))
    }

    fn append(&mut self, result: &UnitResult) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(result)?;
        line.push(b'\n');
        self.0.write_all(&line)?;
        self.0.sync_data()
    }
}

/// The last result of each unit of `ids` in the results file, in plan order (units without one —
/// failed or not yet run — left out; lines that do not parse skipped).
pub fn read_results(path: &Path, ids: &[UnitId]) -> std::io::Result<Vec<UnitResult>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut last: HashMap<String, UnitResult> = HashMap::new();
    for line in text.lines() {
        if let Ok(r) = serde_json::from_str::<UnitResult>(line) {
            last.insert(r.unit.clone(), r);
        }
    }
    Ok(ids
        .iter()
        .filter_map(|id| last.remove(id.as_str()))
        .collect())
}

pub async fn run_verify(kind: Kind, args: VerifyArgs) -> Result<JobOutcome> {
    let job = kind.as_str();
    let mut filter = Filter::parse(
        args.from.as_deref(),
        args.to.as_deref(),
        &args.exchange,
        &args.data_type,
        &args.symbol,
    )
    .map_err(|e| Error::Other(format!("invalid argument: {e}")))?;
    let config = Config::load(&args.config)?;
    let clickhouse = config.sink.map(|s| s.clickhouse).ok_or_else(|| {
        Error::Other(format!(
            "invalid config: sink: job {job} needs `sink.clickhouse`"
        ))
    })?;
    // The dataset root rule (see `super::dataset`), canonical: `x/` and `x` are the same job.
    let parquet = args.parquet.as_deref().map(dataset_root).transpose()?;
    let work_dir = args.common.work_dir.clone().unwrap_or_else(|| {
        // `--last` by its text: a rerun of the same command is the same job whatever the clock.
        let last = args
            .last
            .as_deref()
            .map(|l| format!("|last={l}"))
            .unwrap_or_default();
        let key = format!(
            "{}|{}|{}|{:?}|{filter:?}{last}",
            clickhouse.url, clickhouse.hot_database, clickhouse.cold_database, parquet
        );
        default_work_dir(job, &key)
    });
    if args.common.show_stats {
        return show_stats(&work_dir, job);
    }
    // A rerun of a complete run checks again (its files move to previous/); an unfinished one
    // (killed, cancelled, failed units) resumes. `--retry-failed` only ever resumes.
    // A scheduled `--last` run also moves on after failed units (the next window plans them again
    // while they are in it); without `--last`, failures wait for `--retry-failed`.
    if !args.common.retry_failed {
        if args.last.is_some() {
            super::start_afresh_if_attempted(&work_dir, job)?;
        } else {
            start_afresh_if_complete(&work_dir, job)?;
        }
    }
    if let Some(last) = &args.last {
        let w = pinned_window(&work_dir, last)?;
        (filter.from_ms, filter.to_ms) = (w.from_ms, w.to_ms);
    }
    let opts = run_options(&args.common);
    let sides = Sides::connect(&clickhouse, parquet).await?;
    let writer = match kind {
        Kind::Repair => Some(ClickHouseWriter::connect(&clickhouse).await?),
        Kind::Verify => None,
    };
    let units = verify_plan(sides.found(&filter).await?, &filter);
    let ids: Vec<UnitId> = units
        .iter()
        .filter_map(|u| match UnitId::new(u.id()) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::error!(unit = %u.id(), error = %e, "unit left out");
                None
            }
        })
        .collect();
    let wd_path = work_dir.clone();
    let run_filter = filter.clone();
    let (summary, results, repaired, failures) = blocking(move || {
        let filter = run_filter;
        let mut wd = WorkDir::open(&wd_path, job)?;
        let results_path = wd_path.join(RESULTS_FILE);
        let mut file = ResultsFile::open(&results_path).map_err(io_error("open", &results_path))?;
        let mut repaired = 0u64;
        let work = |id: &UnitId| {
            let unit =
                parse_unit(id.as_str()).ok_or_else(|| UnitError::new("plan", "not a unit id"))?;
            let (mut result, absent) = sides.check(&unit, &filter)?;
            let repairable = |r: &UnitResult| r.discrepancies.iter().any(Discrepancy::repairable);
            if kind == Kind::Repair && !result.discrepancies.is_empty() {
                let mut n = 0;
                if repairable(&result) {
                    n = sides.repair(&unit, &filter, &result, &absent, writer.as_ref())?;
                    repaired += n;
                    result = sides.check(&unit, &filter)?.0;
                }
                // Copies of a key (the view re-inserting a key cold held, or older ones): merged.
                if sides.merge_duplicates(&unit, &filter, &result)? {
                    result = sides.check(&unit, &filter)?.0;
                }
                result.repaired_rows = Some(n);
            }
            file.append(&result)
                .map_err(|e| UnitError::new("write", format!("{}: {e}", results_path.display())))?;
            // Something repair copies away is still there (a write that did not land): the unit
            // failed, and a rerun retries it. What repair never copies (rows only in cold, or only
            // in ClickHouse, values that differ) is an answer: the unit is done and its
            // discrepancies make the run exit 1.
            if kind == Kind::Repair && repairable(&result) {
                let left: Vec<String> = result
                    .discrepancies
                    .iter()
                    .map(Discrepancy::describe)
                    .collect();
                return Err(UnitError::new(
                    "repair",
                    format!("left after the repair: {}", left.join("; ")),
                ));
            }
            Ok(())
        };
        let summary = run(&mut wd, || ids.iter().cloned(), &opts, work, |_| {})?;
        let results = read_results(&results_path, &ids).map_err(io_error("read", &results_path))?;
        Ok((summary, results, repaired, failure_lines(&wd)))
    })
    .await?;
    eprint!("{}", discrepancy_table(&results));
    let discrepancies: u64 = results.iter().map(|r| r.discrepancies.len() as u64).sum();
    let with = results
        .iter()
        .filter(|r| !r.discrepancies.is_empty())
        .count();
    let mut details = serde_json::json!({
        "checked": results.len(),
        "units_with_discrepancies": with,
        "discrepancies": discrepancies,
    });
    if kind == Kind::Repair {
        details["rows_repaired"] = repaired.into();
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({ "job": job, "details": details, "results": results });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?).map_err(io_error("write", path))?;
    }
    let mut report = JobReport::new(job, &work_dir, &summary, details);
    // Repair: what is left after it (its results are the checks after the repair).
    report.discrepancies = Some(discrepancies);
    if (filter.from_ms, filter.to_ms) != super::plan::ALL_TIME {
        (report.from_ms, report.to_ms) = (Some(filter.from_ms), Some(filter.to_ms));
    }
    report.first = failures;
    report.first.extend(results.iter().flat_map(|r| {
        r.discrepancies
            .iter()
            .map(move |d| format!("{}: {}", r.unit, d.describe()))
    }));
    report.first.truncate(super::summary::SUMMARY_FIRST);
    Ok(JobOutcome::Ran(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(unit: &str, rows: u64) -> UnitResult {
        UnitResult {
            unit: unit.into(),
            hot: Default::default(),
            cold: Default::default(),
            parquet: None,
            discrepancies: vec![],
            repaired_rows: Some(rows),
        }
    }

    #[test]
    fn results_survive_a_torn_line_and_the_last_of_a_unit_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(RESULTS_FILE);
        let mut f = ResultsFile::open(&path).unwrap();
        f.append(&result("a", 1)).unwrap();
        f.append(&result("b", 2)).unwrap();
        drop(f);
        // kill -9 in the middle of a line.
        let mut raw = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        raw.write_all(br#"{"unit":"c","ho"#).unwrap();
        drop(raw);
        let mut f = ResultsFile::open(&path).unwrap();
        f.append(&result("a", 3)).unwrap();
        f.append(&result("c", 4)).unwrap();
        let ids: Vec<UnitId> = ["c", "b", "a", "d"]
            .iter()
            .map(|s| UnitId::new(*s).unwrap())
            .collect();
        let got = read_results(&path, &ids).unwrap();
        let figures: Vec<(&str, Option<u64>)> = got
            .iter()
            .map(|r| (r.unit.as_str(), r.repaired_rows))
            .collect();
        assert_eq!(figures, [("c", Some(4)), ("b", Some(2)), ("a", Some(3))]);
        assert!(
            read_results(&dir.path().join("none"), &ids)
                .unwrap()
                .is_empty()
        );
    }
}
