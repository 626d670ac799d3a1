//! Compaction of a Parquet dataset: the pure part (what to merge, what to delete, how to recover).
//!
//! The writer leaves one `part-*.parquet` per partition (date × exchange × data type) and flush. Once an
//! hour of event time is closed (ended `grace` ago), its files in a partition are merged into one
//! `compacted-YYYYMMDDTHH-<16 hex>.parquet` in the same directory: the layout stays one hive-partitioned
//! dataset (no new directory level), and readers that take every visible `*.parquet` read it unchanged.
//!
//! Protocol for one merge, each step durable (file and directory fsynced) before the next:
//! 1. write the merged rows to the hidden temporary `.compacted-….parquet.tmp`;
//! 2. write the intent `.compaction-<hex>.intent` (via `.intent.tmp` + rename) naming the merged file,
//!    its row count and its inputs;
//! 3. delete the inputs;
//! 4. rename the temporary to `compacted-….parquet`;
//! 5. delete the intent.
//!
//! Invariant: at every crash point, the visible data files plus the temporary named by a durable intent
//! hold every row exactly once; a reader never sees a row twice (the merged file becomes visible only
//! after its inputs are gone) and, between steps 3 and 4 (milliseconds), may miss the rows being moved.
//! [`recovery`] decides, from what is on disk, how to finish or undo an interrupted merge; it runs before
//! every compaction pass and at the start of the collector's Parquet output.

use serde::{Deserialize, Serialize};

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;

/// Prefix of a `date=` directory being deleted by retention (renamed first: atomic for readers).
pub const DELETING_PREFIX: &str = ".deleting-";

/// A visible data file of one partition directory, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFile {
    pub name: String,
    /// Smallest and largest `ts_ms` (ms since the epoch, UTC) of its rows.
    pub min_ts_ms: i64,
    pub max_ts_ms: i64,
    pub rows: u64,
}

/// One merge to do: `inputs` (in the order their rows go into the output) into `output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// Start of the hour (ms since the epoch, UTC).
    pub hour_ms: i64,
    pub inputs: Vec<String>,
    pub output: String,
    pub rows: u64,
}

/// Whether `name` is a file compaction may merge: the writer's parts and earlier merges.
pub fn is_mergeable(name: &str) -> bool {
    (name.starts_with("part-") || name.starts_with("compacted-")) && name.ends_with(".parquet")
}

/// The start of the UTC hour holding `ts_ms`.
pub fn hour_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Whether every row of `file` lies in an hour that ended at least `grace_ms` before `now_ms`.
pub fn is_closed(file: &PartFile, now_ms: i64, grace_ms: i64) -> bool {
    hour_of(file.max_ts_ms) + HOUR_MS + grace_ms <= now_ms
}

/// 64-bit FNV-1a: a stable name hash (the same inputs give the same output name on every run).
fn fnv64(parts: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(b'\n')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// `YYYYMMDDTHH` of an hour start.
pub fn hour_label(hour_ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(hour_ms.div_euclid(1000)) {
        Ok(t) => format!(
            "{:04}{:02}{:02}T{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour()
        ),
        Err(_) => "invalid".to_owned(),
    }
}

/// `compacted-YYYYMMDDTHH-<hash of the input names>.parquet`.
pub fn compacted_name(hour_ms: i64, inputs: &[String]) -> String {
    format!(
        "compacted-{}-{:016x}.parquet",
        hour_label(hour_ms),
        fnv64(inputs)
    )
}

/// The intent file of a merge into `output` (`compacted-X.parquet` → `.compaction-X.intent`).
pub fn intent_name(output: &str) -> String {
    let stem = output
        .strip_prefix("compacted-")
        .and_then(|s| s.strip_suffix(".parquet"))
        .unwrap_or(output);
    format!(".compaction-{stem}.intent")
}

/// The merges of one partition directory: its closed files grouped by the hour of their first row;
/// a group is merged when it holds two files or more (one file is already one file per hour). Inputs
/// go in order of their first row, then name (write order), so rows keep their order.
pub fn plan_partition(files: &[PartFile], now_ms: i64, grace_ms: i64) -> Vec<Merge> {
    let mut groups: std::collections::BTreeMap<i64, Vec<&PartFile>> = Default::default();
    for f in files.iter().filter(|f| is_mergeable(&f.name)) {
        if is_closed(f, now_ms, grace_ms) {
            groups.entry(hour_of(f.min_ts_ms)).or_default().push(f);
        }
    }
    groups
        .into_iter()
        .filter(|(_, g)| g.len() >= 2)
        .map(|(hour_ms, mut g)| {
            g.sort_by(|a, b| (a.min_ts_ms, &a.name).cmp(&(b.min_ts_ms, &b.name)));
            let inputs: Vec<String> = g.iter().map(|f| f.name.clone()).collect();
            Merge {
                hour_ms,
                output: compacted_name(hour_ms, &inputs),
                rows: g.iter().map(|f| f.rows).sum(),
                inputs,
            }
        })
        .collect()
}

/// The `date=` partitions retention deletes: those before `today − retention_days` (UTC dates,
/// `YYYY-MM-DD`); never today's, never a partial day; 0 days keeps everything. Names that are not a
/// date are kept.
pub fn expired_dates(dates: &[String], now_ms: i64, retention_days: u32) -> Vec<String> {
    if retention_days == 0 {
        return Vec::new();
    }
    let cutoff = super::utc_date(now_ms - i64::from(retention_days) * DAY_MS);
    dates
        .iter()
        .filter(|d| is_date(d) && d.as_str() < cutoff.as_str())
        .cloned()
        .collect()
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// The durable record of a merge in progress (JSON in the intent file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub output: String,
    pub rows: u64,
    pub inputs: Vec<String>,
}

/// What is on disk for one intent, as recovery finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntentState {
    /// The hidden temporary of the merged file exists.
    pub temp: bool,
    /// The merged file exists under its final name.
    pub output: bool,
    /// How many of the intent's inputs still exist.
    pub inputs_left: usize,
    pub inputs_total: usize,
}

/// How to end an interrupted merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Nothing deleted yet: delete the temporary and the intent; the inputs stay (the next pass redoes it).
    RollBack,
    /// Inputs partly or wholly deleted, the complete temporary holds their rows: delete the remaining
    /// inputs, rename the temporary into place, delete the intent.
    RollForward,
    /// The merged file is in place: delete what is left of the inputs and the temporary, then the intent.
    Finish,
    /// Inputs are missing and neither the temporary nor the merged file exists: rows are lost outside
    /// the protocol (files removed by hand). Nothing is touched; `parquet check` reports the intent.
    Broken,
}

/// The decision for every crash point of the protocol (see the module doc).
pub fn recovery(s: IntentState) -> Recovery {
    let all_inputs = s.inputs_left == s.inputs_total;
    match (s.output, s.temp) {
        (true, _) => Recovery::Finish,
        (false, true) if all_inputs => Recovery::RollBack,
        (false, true) => Recovery::RollForward,
        (false, false) if all_inputs => Recovery::RollBack,
        (false, false) => Recovery::Broken,
    }
}

/// What kind of hidden leftover a file name is (`None`: not one of the Parquet output's).
pub fn leftover_kind(name: &str) -> Option<Leftover> {
    if name.starts_with(".part-") && name.ends_with(".parquet.tmp") {
        Some(Leftover::FlushTemp)
    } else if name.starts_with(".compacted-") && name.ends_with(".parquet.tmp") {
        Some(Leftover::CompactionTemp)
    } else if name.starts_with(".compaction-") && name.ends_with(".intent") {
        Some(Leftover::Intent)
    } else if name.starts_with(".compaction-") && name.ends_with(".intent.tmp") {
        Some(Leftover::IntentTemp)
    } else if name.starts_with(DELETING_PREFIX) {
        Some(Leftover::Deleting)
    } else {
        None
    }
}

/// The hidden files a crash can leave in a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Leftover {
    /// `.part-….parquet.tmp`: a flush killed before its commit.
    FlushTemp,
    /// `.compacted-….parquet.tmp`: a merge killed before its rename.
    CompactionTemp,
    /// `.compaction-….intent`: a merge killed between its intent and its end.
    Intent,
    /// `.compaction-….intent.tmp`: a merge killed while writing its intent.
    IntentTemp,
    /// `.deleting-date=…`: a retention deletion killed midway.
    Deleting,
}

#[cfg(test)]
#[path = "parquet_compact_tests.rs"]
mod tests;
