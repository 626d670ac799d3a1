//! `progress.json`: a human-readable snapshot of a job, replaced atomically.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::JobError;

/// The file name of the progress snapshot inside a work directory.
pub const PROGRESS_FILE: &str = "progress.json";

/// A snapshot of a job's progress, as written to `progress.json`.
///
/// Counts are over the job's current plan: `done + failed + pending == total`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The job's name (as given to [`crate::WorkDir::open`]).
    pub job: String,
    /// Units in the plan.
    pub total: u64,
    /// Units of the plan finished (durably recorded).
    pub done: u64,
    /// Units of the plan whose last attempt failed.
    pub failed: u64,
    /// Units of the plan neither done nor failed.
    pub pending: u64,
    /// The number of the batch being worked on in this run (1-based; 0 before the first).
    pub current_batch: u64,
    /// Units attempted in this run.
    pub attempted_this_run: u64,
    /// Units attempted per second in this run, averaged since it started.
    pub rate_units_per_s: f64,
    /// Seconds until this run's selection is finished at `rate_units_per_s`; `None` when unknown.
    pub eta_s: Option<f64>,
    /// Whether this run has finished its selection (or was cancelled: see `cancelled`).
    pub finished: bool,
    /// Whether this run stopped early on its cancellation flag.
    pub cancelled: bool,
    /// When this run started, RFC 3339 UTC.
    pub started_at: String,
    /// When this snapshot was written, RFC 3339 UTC.
    pub updated_at: String,
}

impl Progress {
    /// Reads `progress.json` from `dir`; `Ok(None)` when there is none yet.
    pub fn read(dir: &Path) -> Result<Option<Self>, JobError> {
        let path = dir.join(PROGRESS_FILE);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(JobError::io("read", path)(e)),
        }
    }

    /// Writes `progress.json` into `dir` atomically: a temporary file, then a rename over the old
    /// one, so a reader (or a crash) only ever sees a complete previous or new snapshot. Not
    /// `fsync`ed: it is a report, rebuilt from the status log on the next run.
    pub fn write(&self, dir: &Path) -> Result<(), JobError> {
        let tmp = dir.join(".progress.json.tmp");
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        let mut file = File::create(&tmp).map_err(JobError::io("create", &tmp))?;
        file.write_all(&json).map_err(JobError::io("write", &tmp))?;
        drop(file);
        let path = dir.join(PROGRESS_FILE);
        fs::rename(&tmp, &path).map_err(JobError::io("rename", path))
    }
}

/// Now, RFC 3339 UTC.
pub(crate) fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}
