//! `parquet check`: read every data file of a dataset fully (footer and every row group), list the
//! damaged ones and the leftovers of crashes, each with what to do. Blocking.

use super::compact::{Leftover, leftover_kind};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Files, rows and bytes of one data type's readable files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// How a data file is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Damage {
    /// Starts like Parquet but has no footer: cut short while being written or copied.
    Truncated,
    /// Not Parquet at all (no `PAR1` magic at its start).
    NotParquet,
    /// Footer present but unreadable.
    BadFooter,
    /// Footer readable, some page not (bit rot, a bad copy).
    BadData,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedFile {
    pub path: PathBuf,
    pub damage: Damage,
    pub error: String,
    pub advice: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftoverFile {
    pub path: PathBuf,
    pub kind: Leftover,
    pub advice: String,
}

/// The result of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub dir: PathBuf,
    /// Readable data files, all data types together, then per data type (`unknown`: outside a
    /// `data_type=` directory).
    pub total: Counts,
    pub per_data_type: BTreeMap<String, Counts>,
    pub damaged: Vec<DamagedFile>,
    pub leftovers: Vec<LeftoverFile>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty() && self.leftovers.is_empty()
    }
}

/// Where damaged files are moved aside: hidden, so no reader of the dataset takes it for data.
pub const QUARANTINE: &str = ".quarantine";

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

fn advice(root: &Path, path: &Path, damage: Damage) -> String {
    let q = root.join(QUARANTINE);
    let mv = format!(
        "mkdir -p {} && mv {} {}/",
        shell_quote(&q),
        shell_quote(path),
        shell_quote(&q)
    );
    match damage {
        Damage::Truncated => format!(
            "truncated by a kill or a full disk during a write or copy (the collector itself only ever \
             makes complete files visible): its rows were never acknowledged as stored by this file; move \
             it aside: `{mv}`"
        ),
        Damage::NotParquet => {
            format!(
                "not a Parquet file (not written by the collector): move it out of the dataset: `{mv}`"
            )
        }
        Damage::BadFooter | Damage::BadData => format!(
            "corrupted after it was written (disk or copy damage): its rows cannot be read; move it aside \
             (`{mv}`) and restore them from a copy (e.g. `job repair` from ClickHouse)"
        ),
    }
}

fn leftover_advice(root: &Path, path: &Path, kind: Leftover) -> String {
    let compact = format!(
        "marketprism-collector parquet compact --dir {}",
        shell_quote(root)
    );
    match kind {
        Leftover::FlushTemp => format!(
            "a leftover temporary of a flush killed before its commit: its rows were never acknowledged \
             as stored; safe to delete when no collector writes here (`rm {}`); the collector deletes it at \
             its next start",
            shell_quote(path)
        ),
        Leftover::CompactionTemp | Leftover::Intent => format!(
            "an unfinished compaction: rerun `{compact}` (it finishes or undoes the merge); do not delete \
             it or the files it names by hand"
        ),
        Leftover::IntentTemp => format!(
            "a compaction killed while recording its intent (nothing was moved): safe to delete; `{compact}` \
             deletes it"
        ),
        Leftover::Deleting => format!(
            "a retention deletion killed midway (already outside the dataset): rerun `{compact}` or `rm -rf {}`",
            shell_quote(path)
        ),
    }
}

/// Reads `path` fully: its rows, or what failed.
pub fn read_fully(path: &Path) -> Result<u64, (Damage, String)> {
    let mut file = std::fs::File::open(path).map_err(|e| (Damage::NotParquet, e.to_string()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut head = [0u8; 4];
    let mut tail = [0u8; 4];
    let head_ok = file.read_exact(&mut head).is_ok() && &head == b"PAR1";
    if !head_ok {
        return Err((
            Damage::NotParquet,
            format!("no PAR1 magic at its start ({len} bytes)"),
        ));
    }
    let tail_ok = len >= 12
        && file.seek(SeekFrom::End(-4)).is_ok()
        && file.read_exact(&mut tail).is_ok()
        && &tail == b"PAR1";
    if !tail_ok {
        return Err((
            Damage::Truncated,
            format!("no footer: the file ends after {len} bytes"),
        ));
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| (Damage::BadFooter, e.to_string()))?;
    let expected = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let reader = builder
        .build()
        .map_err(|e| (Damage::BadFooter, e.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        rows += batch
            .map_err(|e| (Damage::BadData, e.to_string()))?
            .num_rows() as u64;
    }
    if rows != expected {
        return Err((
            Damage::BadData,
            format!("read {rows} rows, the footer says {expected}"),
        ));
    }
    Ok(rows)
}

fn data_type_of(path: &Path) -> String {
    path.parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("data_type="))
        .unwrap_or("unknown")
        .to_owned()
}

/// Checks the dataset at `root`. Errors only when `root` is not a readable directory.
pub fn check_dataset(root: &Path) -> std::io::Result<CheckReport> {
    if !root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such directory", root.display()),
        ));
    }
    let mut report = CheckReport {
        dir: root.to_path_buf(),
        ..CheckReport::default()
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if let Some(kind) = leftover_kind(&name) {
                report.leftovers.push(LeftoverFile {
                    advice: leftover_advice(root, &path, kind),
                    path,
                    kind,
                });
            } else if name.starts_with('.') {
                // The quarantine and other hidden things: not part of the dataset.
            } else if is_dir {
                stack.push(path);
            } else if name.ends_with(".parquet") {
                match read_fully(&path) {
                    Ok(rows) => {
                        let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
                        for c in [
                            &mut report.total,
                            report.per_data_type.entry(data_type_of(&path)).or_default(),
                        ] {
                            c.files += 1;
                            c.rows += rows;
                            c.bytes += bytes;
                        }
                    }
                    Err((damage, error)) => report.damaged.push(DamagedFile {
                        advice: advice(root, &path, damage),
                        path,
                        damage,
                        error,
                    }),
                }
            }
        }
    }
    report.damaged.sort_by(|a, b| a.path.cmp(&b.path));
    report.leftovers.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}
