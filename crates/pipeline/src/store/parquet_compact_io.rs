//! Compaction of a Parquet dataset: the I/O (scan, merge, recover, retention), driven by the pure
//! decisions of [`super::compact`]. Blocking; run it on a blocking thread.

use super::compact::{
    DELETING_PREFIX, Intent, IntentState, Merge, PartFile, Recovery, expired_dates, intent_name,
    is_mergeable, plan_partition, recovery,
};
use super::temp_name;
use crate::error::{Error, Result};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::statistics::Statistics;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Rows per row group of a merged file: big enough for fast scans, small enough to bound memory.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// What one pass does.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Wall-clock time of the pass, ms since the epoch (UTC).
    pub now_ms: i64,
    /// Milliseconds after an hour's end before its files are merged.
    pub grace_ms: i64,
    /// Days of `date=` partitions kept besides today; 0 keeps everything.
    pub retention_days: u32,
    /// Merge closed hours (false: only recover interrupted merges and apply retention).
    pub merge: bool,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    pub partitions: u64,
    /// Merged files written.
    pub merges: u64,
    /// Files replaced by merged files.
    pub files_merged: u64,
    pub rows_merged: u64,
    /// Interrupted merges finished (roll forward) or undone (roll back) by recovery.
    pub recovered_forward: u64,
    pub recovered_back: u64,
    /// Orphaned compaction temporaries deleted.
    pub temporaries_removed: u64,
    /// `date=` partitions deleted by retention.
    pub dates_deleted: Vec<String>,
    /// Problems that left files untouched (unreadable footer, mixed schemas, broken intent).
    pub problems: Vec<String>,
    /// Set when a cancellation stopped the pass between two merges.
    pub cancelled: bool,
}

fn parquet_err(e: impl std::fmt::Display) -> Error {
    Error::Parquet(e.to_string())
}

fn fsync_dir(dir: &Path) -> Result<()> {
    Ok(std::fs::File::open(dir)?.sync_all()?)
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Sorted entries of `dir` whose name is `<key>=…` (directories only).
fn partition_dirs(dir: &Path, key: &str) -> Vec<PathBuf> {
    let prefix = format!("{key}=");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// Every `date=…/exchange=…/data_type=…` directory under `root`.
pub fn partitions(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for date in partition_dirs(root, "date") {
        for exchange in partition_dirs(&date, "exchange") {
            out.extend(partition_dirs(&exchange, "data_type"));
        }
    }
    out
}

fn file_names(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(out)
}

/// Row count and `ts_ms` range from a file's footer statistics.
pub fn part_file(dir: &Path, name: &str) -> Result<PartFile> {
    let reader =
        SerializedFileReader::new(std::fs::File::open(dir.join(name))?).map_err(parquet_err)?;
    let meta = reader.metadata();
    let schema = meta.file_metadata().schema_descr();
    let col = (0..schema.num_columns())
        .find(|&i| schema.column(i).name() == "ts_ms")
        .ok_or_else(|| Error::Parquet(format!("{name}: no ts_ms column")))?;
    let (mut min, mut max) = (i64::MAX, i64::MIN);
    for rg in meta.row_groups() {
        match rg.column(col).statistics() {
            Some(Statistics::Int64(s)) if s.min_opt().is_some() && s.max_opt().is_some() => {
                min = min.min(*s.min_opt().unwrap_or(&i64::MAX));
                max = max.max(*s.max_opt().unwrap_or(&i64::MIN));
            }
            _ if rg.num_rows() == 0 => {}
            _ => return Err(Error::Parquet(format!("{name}: no ts_ms statistics"))),
        }
    }
    if min > max {
        return Err(Error::Parquet(format!("{name}: no rows")));
    }
    Ok(PartFile {
        name: name.to_owned(),
        min_ts_ms: min,
        max_ts_ms: max,
        rows: meta.file_metadata().num_rows().max(0) as u64,
    })
}

/// The footer key naming the files a compacted file replaced (newline-separated names in its
/// directory, earlier compactions' inputs included), so a reader that already took those files (an
/// import) can tell it holds nothing new.
pub const COMPACTED_FROM_KEY: &str = "marketprism.compacted_from";

/// The files `path` replaced, from its footer ([`COMPACTED_FROM_KEY`]); `None` for a file that is not
/// a compaction (or was written before the key existed).
pub fn compacted_from(path: &Path) -> Result<Option<Vec<String>>> {
    let reader = SerializedFileReader::new(std::fs::File::open(path)?).map_err(parquet_err)?;
    let names = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == COMPACTED_FROM_KEY))
        .and_then(|k| k.value.clone())
        .map(|v| v.lines().map(str::to_owned).collect());
    Ok(names)
}

/// Step 1: the inputs' rows, in order, into the hidden temporary of `m.output`; fsynced.
fn write_merged_temp(dir: &Path, m: &Merge) -> Result<()> {
    let temp = dir.join(temp_name(&m.output));
    let result = (|| -> Result<()> {
        let mut sources = Vec::new();
        for input in &m.inputs {
            sources.extend(compacted_from(&dir.join(input))?.unwrap_or_default());
            sources.push(input.clone());
        }
        let file = std::fs::File::create(&temp)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
                COMPACTED_FROM_KEY.to_owned(),
                sources.join("\n"),
            )]))
            .build();
        let mut writer: Option<ArrowWriter<std::fs::File>> = None;
        let mut first_fields = None;
        let mut rows = 0u64;
        for input in &m.inputs {
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(dir.join(input))?)
                    .map_err(parquet_err)?;
            let schema = builder.schema().clone();
            match &first_fields {
                None => first_fields = Some(schema.fields().clone()),
                Some(f) if f != schema.fields() => {
                    return Err(Error::Parquet(format!(
                        "{input}: columns differ from {}'s; not merged",
                        m.inputs[0]
                    )));
                }
                Some(_) => {}
            }
            if writer.is_none() {
                writer = Some(
                    ArrowWriter::try_new(file.try_clone()?, schema, Some(props.clone()))
                        .map_err(parquet_err)?,
                );
            }
            let w = writer.as_mut().expect("set above");
            for batch in builder.build().map_err(parquet_err)? {
                let batch = batch.map_err(parquet_err)?;
                rows += batch.num_rows() as u64;
                w.write(&batch).map_err(parquet_err)?;
            }
        }
        let writer = writer.ok_or_else(|| Error::Parquet("a merge without inputs".into()))?;
        writer.close().map_err(parquet_err)?;
        if rows != m.rows {
            return Err(Error::Parquet(format!(
                "{}: read {rows} rows, the footers said {}",
                m.output, m.rows
            )));
        }
        file.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Step 2: the intent, written whole under a temporary name, fsynced, renamed, directory fsynced.
fn write_intent(dir: &Path, m: &Merge) -> Result<()> {
    let intent = Intent {
        output: m.output.clone(),
        rows: m.rows,
        inputs: m.inputs.clone(),
    };
    let name = intent_name(&m.output);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    std::io::Write::write_all(
        &mut file,
        &serde_json::to_vec(&intent).map_err(parquet_err)?,
    )?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(&name))?;
    fsync_dir(dir)
}

/// Runs the protocol's steps of one merge, at most `max_steps` of them (`usize::MAX`: all). Steps:
/// write the temporary, write the intent, delete each input (one step each), rename, delete the
/// intent. Fewer steps model a crash after that many (the tests' crash points).
pub fn merge_steps(dir: &Path, m: &Merge, max_steps: usize) -> Result<usize> {
    let mut done = 0;
    let mut step = |f: &mut dyn FnMut() -> Result<()>| -> Result<bool> {
        if done >= max_steps {
            return Ok(false);
        }
        f()?;
        done += 1;
        Ok(true)
    };
    if !step(&mut || write_merged_temp(dir, m))? || !step(&mut || write_intent(dir, m))? {
        return Ok(done);
    }
    for (i, input) in m.inputs.iter().enumerate() {
        let last = i + 1 == m.inputs.len();
        if !step(&mut || {
            std::fs::remove_file(dir.join(input))?;
            if last { fsync_dir(dir) } else { Ok(()) }
        })? {
            return Ok(done);
        }
    }
    if !step(&mut || {
        std::fs::rename(dir.join(temp_name(&m.output)), dir.join(&m.output))?;
        fsync_dir(dir)
    })? {
        return Ok(done);
    }
    step(&mut || {
        std::fs::remove_file(dir.join(intent_name(&m.output)))?;
        fsync_dir(dir)
    })?;
    Ok(done)
}

/// Ends every interrupted merge of one partition directory (see [`recovery`]) and deletes orphaned
/// compaction temporaries.
pub fn recover_partition(dir: &Path, report: &mut CompactReport) -> Result<()> {
    let names = file_names(dir)?;
    let mut kept_temps = std::collections::BTreeSet::new();
    for name in names
        .iter()
        .filter(|n| n.starts_with(".compaction-") && n.ends_with(".intent"))
    {
        let path = dir.join(name);
        let intent: Intent = match serde_json::from_slice(&std::fs::read(&path)?) {
            Ok(i) => i,
            Err(e) => {
                report.problems.push(format!(
                    "{}: unreadable intent ({e}); left in place",
                    path.display()
                ));
                continue;
            }
        };
        let temp = dir.join(temp_name(&intent.output));
        let output = dir.join(&intent.output);
        let left: Vec<&String> = intent
            .inputs
            .iter()
            .filter(|i| dir.join(i).exists())
            .collect();
        let state = IntentState {
            temp: temp.exists(),
            output: output.exists(),
            inputs_left: left.len(),
            inputs_total: intent.inputs.len(),
        };
        match recovery(state) {
            Recovery::RollBack => {
                remove_if_exists(&temp)?;
                std::fs::remove_file(&path)?;
                report.recovered_back += 1;
            }
            Recovery::RollForward => {
                let rows = part_file(dir, &temp_name(&intent.output)).map(|p| p.rows);
                if rows.as_ref().ok() != Some(&intent.rows) {
                    report.problems.push(format!(
                        "{}: the merged temporary does not hold the intent's {} rows ({rows:?}); left in place",
                        temp.display(),
                        intent.rows
                    ));
                    kept_temps.insert(temp_name(&intent.output));
                    continue;
                }
                for i in &left {
                    std::fs::remove_file(dir.join(i))?;
                }
                fsync_dir(dir)?;
                std::fs::rename(&temp, &output)?;
                fsync_dir(dir)?;
                std::fs::remove_file(&path)?;
                report.recovered_forward += 1;
            }
            Recovery::Finish => {
                for i in &left {
                    std::fs::remove_file(dir.join(i))?;
                }
                remove_if_exists(&temp)?;
                fsync_dir(dir)?;
                std::fs::remove_file(&path)?;
                report.recovered_forward += 1;
            }
            Recovery::Broken => {
                report.problems.push(format!(
                    "{}: {} of its {} inputs are gone and the merged file is missing; left in place",
                    path.display(),
                    intent.inputs.len() - left.len(),
                    intent.inputs.len()
                ));
                kept_temps.insert(temp_name(&intent.output));
            }
        }
    }
    for name in &names {
        let orphan = (name.starts_with(".compacted-")
            && name.ends_with(".parquet.tmp")
            && !kept_temps.contains(name))
            || (name.starts_with(".compaction-") && name.ends_with(".intent.tmp"));
        if orphan {
            remove_if_exists(&dir.join(name))?;
            report.temporaries_removed += 1;
        }
    }
    fsync_dir(dir)
}

/// Deletes `date=` partitions older than the retention: each renamed to a hidden name first (readers
/// lose the whole day at once, never part of it), then removed.
fn apply_retention(root: &Path, opts: &CompactOptions, report: &mut CompactReport) -> Result<()> {
    let dates: Vec<String> = partition_dirs(root, "date")
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_prefix("date=")
                .map(str::to_owned)
        })
        .collect();
    for date in expired_dates(&dates, opts.now_ms, opts.retention_days) {
        let hidden = root.join(format!("{DELETING_PREFIX}date={date}"));
        if hidden.exists() {
            std::fs::remove_dir_all(&hidden)?;
        }
        std::fs::rename(root.join(format!("date={date}")), &hidden)?;
        fsync_dir(root)?;
        std::fs::remove_dir_all(&hidden)?;
        report.dates_deleted.push(date);
    }
    Ok(())
}

/// Holds the dataset's compaction lock while alive: an advisory `flock` on the root directory itself
/// (no lock file, so nothing new appears in the dataset).
struct Lock(#[allow(dead_code)] std::fs::File);

fn lock(root: &Path) -> Result<Lock> {
    let dir = std::fs::File::open(root)?;
    match dir.try_lock() {
        Ok(()) => Ok(Lock(dir)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Parquet(format!(
            "another compaction of {} is running (it holds the directory's lock)",
            root.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// One pass over the dataset at `root`: recovery of interrupted merges and retention deletions,
/// retention, then (with `opts.merge`) the merges of every partition's closed hours. `cancelled` is
/// asked between merges. Errors: the root is missing or another compaction holds the lock.
pub fn compact_dataset(
    root: &Path,
    opts: &CompactOptions,
    cancelled: &dyn Fn() -> bool,
) -> Result<CompactReport> {
    if !root.is_dir() {
        return Err(Error::Parquet(format!(
            "no such directory: {}",
            root.display()
        )));
    }
    let _lock = lock(root)?;
    let mut report = CompactReport::default();
    for entry in std::fs::read_dir(root)?.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(DELETING_PREFIX) && entry.path().is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        }
    }
    apply_retention(root, opts, &mut report)?;
    for dir in partitions(root) {
        report.partitions += 1;
        recover_partition(&dir, &mut report)?;
        if !opts.merge {
            continue;
        }
        let mut files = Vec::new();
        for name in file_names(&dir)?.into_iter().filter(|n| is_mergeable(n)) {
            match part_file(&dir, &name) {
                Ok(f) => files.push(f),
                Err(e) => report.problems.push(format!(
                    "{}: {e}; not merged (see `parquet check`)",
                    dir.join(&name).display()
                )),
            }
        }
        for m in plan_partition(&files, opts.now_ms, opts.grace_ms) {
            if cancelled() {
                report.cancelled = true;
                return Ok(report);
            }
            match merge_steps(&dir, &m, usize::MAX) {
                Ok(_) => {
                    report.merges += 1;
                    report.files_merged += m.inputs.len() as u64;
                    report.rows_merged += m.rows;
                }
                Err(e) => report.problems.push(format!(
                    "{}: {e}; inputs kept",
                    dir.join(&m.output).display()
                )),
            }
        }
    }
    Ok(report)
}
