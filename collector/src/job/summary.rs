//! `--summary FILE`: one JSON object of at most [`SUMMARY_MAX_BYTES`] bytes written at the end of
//! every job run, success or failure, and also when the job fails before running (then
//! `succeeded: false` and the error in `first`). It is a Kubernetes termination message, so it
//! must fit and always be valid JSON: too long, entries of `first` are dropped (last first), then
//! entries of `details`.
//!
//! `{"job","succeeded","total","done","failed","pending","cancelled","discrepancies"|null,
//! "from_ms"|null,"to_ms"|null,"first":[≤ 10 problems],"details":{…}}`

use super::{Error, JobOutcome, JobReport, Result, io_error};
use marketprism_jobs::WorkDir;
use serde::Serialize;
use std::path::Path;

/// The most bytes a summary takes (a Kubernetes termination message is at most 4096).
pub const SUMMARY_MAX_BYTES: usize = 4096;
/// The most problems in `first`.
pub const SUMMARY_FIRST: usize = 10;
/// The most characters of one problem.
const PROBLEM_CHARS: usize = 400;

/// The summary of a run (see the module).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub job: String,
    pub succeeded: bool,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    pub pending: u64,
    pub cancelled: bool,
    pub discrepancies: Option<u64>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub first: Vec<String>,
    pub details: serde_json::Value,
}

fn clip(s: &str) -> String {
    if s.chars().count() <= PROBLEM_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(PROBLEM_CHARS - 1).collect();
    out.push('…');
    out
}

impl Summary {
    /// The summary of a finished run.
    pub fn of_report(r: &JobReport) -> Summary {
        let mut first: Vec<String> = r.empty.iter().cloned().collect();
        first.extend(r.first.iter().cloned());
        first.truncate(SUMMARY_FIRST);
        Summary {
            job: r.job.to_owned(),
            succeeded: r.succeeded(),
            total: r.total,
            done: r.done,
            failed: r.failed,
            pending: r.pending,
            cancelled: r.cancelled,
            discrepancies: r.discrepancies,
            from_ms: r.from_ms,
            to_ms: r.to_ms,
            first: first.iter().map(|s| clip(s)).collect(),
            details: r.details.clone(),
        }
    }

    /// The summary of a job that failed before (or instead of) finishing its run.
    pub fn of_error(job: &str, error: &Error) -> Summary {
        Summary {
            job: job.to_owned(),
            succeeded: false,
            total: 0,
            done: 0,
            failed: 0,
            pending: 0,
            cancelled: false,
            discrepancies: None,
            from_ms: None,
            to_ms: None,
            first: vec![clip(&format!("error: {error}"))],
            details: serde_json::json!({}),
        }
    }

    /// The JSON text, at most `max` bytes: entries of `first` dropped from the end, then entries
    /// of `details`, until it fits.
    pub fn to_json_bounded(&self, max: usize) -> String {
        let mut s = self.clone();
        loop {
            let text = serde_json::to_string(&s).unwrap_or_else(|_| "{}".into());
            if text.len() <= max {
                return text;
            }
            if s.first.pop().is_some() {
                continue;
            }
            match &mut s.details {
                serde_json::Value::Object(map) if !map.is_empty() => {
                    let last = map.keys().next_back().cloned().unwrap_or_default();
                    map.remove(&last);
                }
                serde_json::Value::Object(_) => return text, // the fixed fields alone: ~250 bytes
                other => *other = serde_json::json!({}),
            }
        }
    }
}

/// Writes `summary` (bounded to [`SUMMARY_MAX_BYTES`]) to `path`; the error names it.
pub fn write_summary(path: &Path, summary: &Summary) -> Result<()> {
    let text = summary.to_json_bounded(SUMMARY_MAX_BYTES);
    std::fs::write(path, text).map_err(io_error("write the summary", path))
}

/// The summary of a job's outcome; `None` for `--show-stats` (not a run).
pub fn summary_of(job: &str, outcome: &Result<JobOutcome>) -> Option<Summary> {
    match outcome {
        Ok(JobOutcome::Ran(r)) => Some(Summary::of_report(r)),
        Ok(JobOutcome::Stats(_)) => None,
        Err(e) => Some(Summary::of_error(job, e)),
    }
}

/// Up to [`SUMMARY_FIRST`] failures of the work directory as `unit: step: error` lines.
pub fn failure_lines(wd: &WorkDir) -> Vec<String> {
    wd.failures()
        .take(SUMMARY_FIRST)
        .map(|f| format!("{}: {}: {}", f.id, f.step, f.error))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(first: usize, details: usize) -> Summary {
        let mut d = serde_json::Map::new();
        for i in 0..details {
            d.insert(format!("k{i:03}"), "v".repeat(100).into());
        }
        Summary {
            job: "verify".into(),
            succeeded: false,
            total: 3,
            done: 2,
            failed: 1,
            pending: 0,
            cancelled: false,
            discrepancies: Some(7),
            from_ms: Some(1),
            to_ms: None,
            first: (0..first)
                .map(|i| format!("problem {i} \"quoted\" {}", "é".repeat(300)))
                .collect(),
            details: serde_json::Value::Object(d),
        }
    }

    #[test]
    fn a_summary_fits_and_stays_valid_json() {
        let small = summary(2, 2);
        let text = small.to_json_bounded(SUMMARY_MAX_BYTES);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["first"].as_array().unwrap().len(), 2);
        assert_eq!(v["to_ms"], serde_json::Value::Null);
        assert_eq!(v["discrepancies"], 7);
        // Too long: `first` loses entries from its end, then details.
        let big = summary(10, 10);
        let text = big.to_json_bounded(SUMMARY_MAX_BYTES);
        assert!(text.len() <= SUMMARY_MAX_BYTES, "{}", text.len());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let first = v["first"].as_array().unwrap();
        assert!(first.len() < 10 && !first.is_empty(), "{}", first.len());
        assert!(first[0].as_str().unwrap().starts_with("problem 0"));
        assert_eq!(v["details"].as_object().unwrap().len(), 10);
        let huge = summary(10, 100);
        let text = huge.to_json_bounded(SUMMARY_MAX_BYTES);
        assert!(text.len() <= SUMMARY_MAX_BYTES);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(v["first"].as_array().unwrap().is_empty());
        let kept = v["details"].as_object().unwrap();
        assert!(
            kept.len() < 100 && kept.contains_key("k000"),
            "{}",
            kept.len()
        );
        assert!(summary(0, 0).to_json_bounded(10).starts_with('{'));
    }

    #[test]
    fn an_error_summary_names_the_error() {
        let s = Summary::of_error("import", &Error::Other("x".repeat(1000)));
        assert!(!s.succeeded);
        assert_eq!(s.first.len(), 1);
        assert!(
            s.first[0].starts_with("error: xxx") && s.first[0].chars().count() == PROBLEM_CHARS
        );
    }
}
