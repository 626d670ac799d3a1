//! `--show-stats`: progress plus failures grouped by step.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::log::Failure;
use crate::progress::Progress;
use crate::{JobError, WorkDir};

/// How many example unit ids [`Stats`] keeps per failed step.
pub const EXAMPLES_PER_STEP: usize = 3;

/// The failures of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepFailures {
    /// The step.
    pub step: String,
    /// Units whose last failure was in this step.
    pub count: u64,
    /// Up to [`EXAMPLES_PER_STEP`] of them, the smallest ids first.
    pub examples: Vec<Failure>,
}

/// What `--show-stats` prints: the last progress snapshot, the log's counts and failures by step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// The last `progress.json`, if a run has written one.
    pub progress: Option<Progress>,
    /// Distinct units recorded done in the log.
    pub done: u64,
    /// Units whose last attempt failed.
    pub failed: u64,
    /// Failures grouped by step, the most frequent step first.
    pub by_step: Vec<StepFailures>,
    /// Corrupt log lines ignored, and bytes of a torn last line cut off, when the log was opened.
    pub corrupt_lines: u64,
    /// See `corrupt_lines`.
    pub torn_bytes: u64,
}

impl WorkDir {
    /// The job's statistics (reads `progress.json`; the rest is in memory).
    pub fn stats(&self) -> Result<Stats, JobError> {
        let mut steps: BTreeMap<&str, Vec<&Failure>> = BTreeMap::new();
        for f in self.failures() {
            steps.entry(&f.step).or_default().push(f);
        }
        let mut by_step: Vec<StepFailures> = steps
            .into_iter()
            .map(|(step, mut fs)| {
                fs.sort_by(|a, b| a.id.cmp(&b.id));
                StepFailures {
                    step: step.to_owned(),
                    count: fs.len() as u64,
                    examples: fs.into_iter().take(EXAMPLES_PER_STEP).cloned().collect(),
                }
            })
            .collect();
        by_step.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.step.cmp(&b.step)));
        Ok(Stats {
            progress: Progress::read(self.path())?,
            done: self.done_count(),
            failed: by_step.iter().map(|s| s.count).sum(),
            by_step,
            corrupt_lines: self.corrupt_lines(),
            torn_bytes: self.torn_bytes(),
        })
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.progress {
            writeln!(
                f,
                "job {}: {} of {} units done, {} failed, {} pending",
                p.job, p.done, p.total, p.failed, p.pending
            )?;
            let state = if p.cancelled {
                "cancelled"
            } else if p.finished {
                "finished"
            } else {
                "running or interrupted"
            };
            writeln!(
                f,
                "last run: {state}, batch {}, {} attempted at {:.1} units/s, updated {}",
                p.current_batch, p.attempted_this_run, p.rate_units_per_s, p.updated_at
            )?;
        }
        writeln!(
            f,
            "status log: {} units done, {} failed",
            self.done, self.failed
        )?;
        if self.corrupt_lines > 0 || self.torn_bytes > 0 {
            writeln!(
                f,
                "ignored: {} corrupt lines, {} bytes of a torn last line",
                self.corrupt_lines, self.torn_bytes
            )?;
        }
        for s in &self.by_step {
            writeln!(f, "  step {}: {} failed", s.step, s.count)?;
            for e in &s.examples {
                let first_line = e.error.lines().next().unwrap_or("");
                writeln!(f, "    {}  ({}): {}", e.id, e.at, first_line)?;
            }
        }
        Ok(())
    }
}
