//! `status.jobs` from the last finished Job of each scheduled kind: its container's termination
//! message, the summary `marketprism-collector job <kind> --summary` writes (one JSON object,
//! ≤ 4 KB):
//!
//! ```json
//! {"job":"verify","succeeded":false,"total":120,"done":120,"failed":0,"pending":0,
//!  "cancelled":false,"discrepancies":2,"from_ms":1,"to_ms":2,"first":["…"],"details":{}}
//! ```
//!
//! Read tolerantly: unknown fields are ignored and missing ones default, so either side may add a
//! field first. The pure half ([`result_of`]) is tested without a cluster; [`observe`] reads each
//! kind's last finished Job through [`super::runs`] (shared with the report).

use super::runs::{LastRun, last_run};
use crate::Result;
use crate::builders::{JOB_CONTAINER, JobKind, Owner};
use crate::crd::{JobRunStatus, JobsStatus};
use kube::Client;
use serde::Deserialize;

/// Problems kept in status (the summary carries at most 10).
const MAX_PROBLEMS: usize = 10;
/// Characters of an unreadable termination message kept in `message`.
const MAX_MESSAGE_CHARS: usize = 500;

/// The summary's fields the operator reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Summary {
    job: String,
    succeeded: bool,
    total: u64,
    done: u64,
    failed: u64,
    pending: u64,
    cancelled: bool,
    discrepancies: Option<u64>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
    first: Vec<String>,
    details: Details,
}

/// `details` of backfill (verify's are not read).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Details {
    gaps: Option<u64>,
    filled: Option<u64>,
    trades: Option<u64>,
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

/// `kind`'s run as its Job ended: `Pass` when the summary says it succeeded (and the process
/// exited 0), `Fail` when the summary says it did not, `Error` when there is no summary to read.
pub fn result_of(kind: JobKind, run: &LastRun) -> JobRunStatus {
    let base = JobRunStatus {
        job: run.job.clone(),
        finished_at: Some(run.finished_at.clone()),
        ..JobRunStatus::default()
    };
    let error = |message: String| JobRunStatus {
        result: "Error".into(),
        message: Some(message),
        ..base.clone()
    };
    let Some(code) = run.exit_code else {
        return error("the Job ended without its pod's status (deadline or deleted pod)".into());
    };
    let text = run.message.as_deref().unwrap_or_default().trim();
    if text.is_empty() {
        return error(format!(
            "exit code {code} without a summary (see the Job's logs)"
        ));
    }
    let s: Summary = match serde_json::from_str(text) {
        Ok(s) => s,
        Err(e) if e.is_eof() => {
            return error(format!(
                "exit code {code}: the summary is truncated ({e}): {}",
                clip(text)
            ));
        }
        Err(e) => {
            return error(format!(
                "exit code {code}: the summary is not JSON ({e}): {}",
                clip(text)
            ));
        }
    };
    if !s.job.is_empty() && s.job != kind.as_str() {
        return error(format!(
            "exit code {code}: a summary of job {:?} from the {} CronJob",
            s.job,
            kind.as_str()
        ));
    }
    let result = match (s.succeeded, code) {
        (true, 0) => "Pass",
        (false, _) => "Fail",
        (true, _) => {
            return error(format!(
                "exit code {code} although the summary says the run succeeded"
            ));
        }
    };
    let backfill = kind == JobKind::Backfill;
    JobRunStatus {
        result: result.into(),
        from_ms: s.from_ms,
        to_ms: s.to_ms,
        units: count(s.total),
        done_units: count(s.done),
        failed_units: count(s.failed),
        pending_units: count(s.pending),
        cancelled: s.cancelled,
        discrepancies: s.discrepancies.map(count),
        gaps: s.details.gaps.filter(|_| backfill).map(count),
        filled: s.details.filled.filter(|_| backfill).map(count),
        trades: s.details.trades.filter(|_| backfill).map(count),
        problems: s.first.into_iter().take(MAX_PROBLEMS).collect(),
        ..base
    }
}

/// `kind`'s last finished run, or `None` while none has finished.
async fn observe_kind(
    client: &Client,
    owner: &Owner<'_>,
    kind: JobKind,
) -> Result<Option<JobRunStatus>> {
    let labels = owner.component_selector(kind.as_str());
    let run = last_run(client, owner.namespace, &labels, JOB_CONTAINER).await?;
    Ok(run.map(|run| result_of(kind, &run)))
}

/// `status.jobs`: for each scheduled kind its last finished run; the previous one while no newer
/// Job finished or when the Jobs cannot be read (logged: a result is informative, never a reason
/// to fail a reconcile). `None` without `spec.jobs`.
pub async fn observe(
    client: &Client,
    owner: &Owner<'_>,
    previous: Option<&JobsStatus>,
) -> Option<JobsStatus> {
    let jobs = owner.set.spec.jobs.as_ref()?;
    let mut status = JobsStatus::default();
    for kind in JobKind::ALL {
        if kind.scheduled(jobs).is_none() {
            continue;
        }
        let before = previous.and_then(|p| slot(p, kind).clone());
        let now = match observe_kind(client, owner, kind).await {
            Ok(Some(found)) => Some(found),
            Ok(None) => before,
            Err(e) => {
                tracing::warn!(collectorset = %owner.name, job = kind.as_str(), error = %e, "cannot read the scheduled Jobs");
                before
            }
        };
        *slot_mut(&mut status, kind) = now;
    }
    Some(status)
}

/// `kind`'s entry in `status`.
pub fn slot(status: &JobsStatus, kind: JobKind) -> &Option<JobRunStatus> {
    match kind {
        JobKind::Verify => &status.verify,
        JobKind::Backfill => &status.backfill,
    }
}

fn slot_mut(status: &mut JobsStatus, kind: JobKind) -> &mut Option<JobRunStatus> {
    match kind {
        JobKind::Verify => &mut status.verify,
        JobKind::Backfill => &mut status.backfill,
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
