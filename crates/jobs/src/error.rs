//! The crate's one error enum, and the error a unit's work function returns.

use std::path::PathBuf;

/// Everything the framework itself can fail with (a unit's own failure is a [`UnitError`], which is
/// recorded in the work directory, not returned).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A file-system operation on a work-directory file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `read`, `append`, `fsync`, `rename`, …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the work directory's lock (two runs of one job at once).
    #[error("work directory {0} is in use by another process")]
    Locked(PathBuf),
    /// The status log does not start with a header this version understands.
    #[error("{path}: not a marketprism-jobs status log (header {found:?})")]
    BadHeader {
        /// The log file.
        path: PathBuf,
        /// The first line that was found instead.
        found: String,
    },
    /// A unit id is empty, longer than [`crate::MAX_UNIT_ID_LEN`] bytes, or holds a control character.
    #[error("invalid unit id {0:?}: must be 1..=1024 bytes without control characters")]
    InvalidUnitId(String),
    /// The checkpoint file is damaged or belongs to another log. Opening a work directory does not
    /// fail with it: it warns and reads the whole status log instead.
    #[error("{path}: unusable checkpoint: {reason}")]
    BadCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `progress.json` or a failure record could not be encoded or decoded.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl JobError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}

/// Why one unit failed: the step it was in (e.g. `fetch`, `insert`, `verify`) and a message.
///
/// Failures are grouped by `step` in [`crate::Stats`]; keep steps a small fixed vocabulary per job kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {message}")]
pub struct UnitError {
    /// The step of the unit's work that failed (a short, stable word).
    pub step: String,
    /// A human-readable message (may be multi-line; stored escaped).
    pub message: String,
}

impl UnitError {
    /// A failure in `step` with `message`.
    pub fn new(step: impl Into<String>, message: impl ToString) -> Self {
        Self {
            step: step.into(),
            message: message.to_string(),
        }
    }
}
