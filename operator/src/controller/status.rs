//! Pure status computation: what the reconcile saw → `CollectorSetStatus` and the Events to emit.

use super::jobs::slot;
use crate::builders::JobKind;
use crate::crd::{
    CollectorSetSpec, CollectorSetStatus, DEGRADED, PAUSED, PROGRESSING, READY, ShardStatus,
};
use crate::planner::{self, Shard};
use crate::validate::FieldError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use std::collections::BTreeSet;

/// What a collector shard looked like in the apply responses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardObservation {
    pub ready_replicas: i32,
    /// The Deployment has rolled out its current spec on every replica.
    pub rolled_out: bool,
    pub lock_holder: Option<String>,
    /// The lock holder's not-ready components, `component: reason`.
    pub not_ready: Vec<String>,
}

/// How the reconcile went, as far as status is concerned.
#[derive(Debug, Clone)]
pub enum Outcome {
    Invalid(Vec<FieldError>),
    /// Referenced credential Secrets or keys that do not exist (one message each).
    MissingSecret(Vec<String>),
    Paused,
    Applied {
        shards: Vec<(Shard, ShardObservation)>,
        /// `Some(ready)` when a sink runs.
        sink_ready: Option<bool>,
        /// Objects of the set that the plan no longer contains, as listed this reconcile.
        retired: Retired,
    },
}

/// What is left of retired shards (and of a sink no longer planned), as listed this reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Retired {
    pub objects: usize,
    /// Their shard labels (empty for set-wide objects).
    pub shards: BTreeSet<String>,
    /// The new plan has rolled out and they were deleted this reconcile (they may take a while to go).
    pub deleting: bool,
}

/// An Event to publish on the CollectorSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub warning: bool,
    pub reason: &'static str,
    pub note: String,
}

/// The new status: shards and totals from the outcome; conditions keep their transition time
/// unless their status flips.
pub fn compute(
    spec: &CollectorSetSpec,
    generation: Option<i64>,
    previous: &CollectorSetStatus,
    outcome: &Outcome,
    now: &Time,
) -> CollectorSetStatus {
    let mut status = CollectorSetStatus {
        observed_generation: generation,
        conditions: previous.conditions.clone(),
        shards: previous.shards.clone(),
        exchanges: spec.exchanges.len() as i32,
        symbols: spec.exchanges.iter().map(|e| e.symbols.len() as i32).sum(),
        ..CollectorSetStatus::default()
    };
    let mut set = |type_: &str, on: bool, reason: &str, message: String| {
        set_condition(
            &mut status.conditions,
            type_,
            on,
            reason,
            message,
            generation,
            now,
        )
    };
    match outcome {
        Outcome::Invalid(errors) => {
            let message = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            set(READY, false, "InvalidSpec", message.clone());
            set(DEGRADED, true, "InvalidSpec", message);
            set(
                PROGRESSING,
                false,
                "InvalidSpec",
                "fix the spec to continue".into(),
            );
            set(PAUSED, false, "NotPaused", String::new());
        }
        Outcome::MissingSecret(problems) => {
            let message = problems.join("; ");
            set(READY, false, "MissingSecret", message.clone());
            set(DEGRADED, true, "MissingSecret", message);
            set(
                PROGRESSING,
                false,
                "MissingSecret",
                "create the Secret (or fix the reference) to continue; running pods are left as they are".into(),
            );
            set(PAUSED, false, "NotPaused", String::new());
        }
        Outcome::Paused => {
            let message = "spec.paused is true: child objects are left as they are".to_owned();
            set(PAUSED, true, "Paused", message.clone());
            set(PROGRESSING, false, "Paused", message);
        }
        Outcome::Applied {
            shards,
            sink_ready,
            retired,
        } => {
            status.shards =
                planner::to_status(&shards.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>())
                    .into_iter()
                    .zip(shards)
                    .map(|(s, (_, seen))| ShardStatus {
                        ready_replicas: seen.ready_replicas,
                        lock_holder: seen.lock_holder.clone(),
                        not_ready: seen.not_ready.clone(),
                        ..s
                    })
                    .collect();
            let serving = |o: &ShardObservation| o.ready_replicas > 0 && o.lock_holder.is_some();
            let ready_shards = shards.iter().filter(|(_, o)| serving(o)).count();
            let rolling = shards.iter().filter(|(_, o)| !o.rolled_out).count();
            let broken: Vec<&str> = shards
                .iter()
                .filter(|(_, o)| o.rolled_out && o.ready_replicas == 0)
                .map(|(s, _)| s.name.as_str())
                .collect();
            let all_ready = ready_shards == shards.len() && sink_ready.unwrap_or(true);
            set(
                READY,
                all_ready,
                if all_ready {
                    "AllShardsServing"
                } else {
                    "ShardsNotServing"
                },
                format!(
                    "{ready_shards}/{} shards have a ready pod holding the shard lock{}",
                    shards.len(),
                    match sink_ready {
                        Some(false) => "; sink not ready",
                        _ => "",
                    }
                ),
            );
            let progressing = rolling > 0 || retired.objects > 0;
            set(
                PROGRESSING,
                progressing,
                if progressing {
                    "RollingOut"
                } else {
                    "RolledOut"
                },
                progress_message(rolling, retired),
            );
            // What the lock holders say is wrong (unlisted symbols, refused or stalled streams).
            let reported: Vec<String> = shards
                .iter()
                .flat_map(|(s, o)| o.not_ready.iter().map(move |r| format!("{}: {r}", s.name)))
                .collect();
            let (degraded, reason, message) = match (broken.is_empty(), reported.is_empty()) {
                (true, true) => (false, "AsExpected", String::new()),
                (false, _) => (
                    true,
                    "ShardsUnavailable",
                    format!("no ready pod in shards {}", broken.join(", ")),
                ),
                (true, false) => (true, "CollectorsNotReady", String::new()),
            };
            let message = if reported.is_empty() {
                message
            } else {
                let listed = reported.join("; ");
                if message.is_empty() {
                    listed
                } else {
                    format!("{message}; {listed}")
                }
            };
            set(DEGRADED, degraded, reason, message);
            set(PAUSED, false, "NotPaused", String::new());
            status.retired_objects = retired.objects as i32;
            status.shard_count = shards.len() as i32;
            status.ready_shards = ready_shards as i32;
        }
    }
    if !matches!(outcome, Outcome::Applied { .. }) {
        // Keep the last observed numbers while nothing is applied.
        status.shard_count = previous.shard_count;
        status.ready_shards = previous.ready_shards;
        status.retired_objects = previous.retired_objects;
    }
    status.ready = format!("{}/{}", status.ready_shards, status.shard_count);
    status
}

fn progress_message(rolling: usize, retired: &Retired) -> String {
    let mut message = format!("{rolling} shard Deployments rolling out");
    if retired.objects > 0 {
        let shards = retired
            .shards
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        message.push_str(&format!(
            "; {} objects of retired shards [{shards}] still exist ({})",
            retired.objects,
            if retired.deleting {
                "deleted, waiting for them to go"
            } else {
                "removed once the new plan has rolled out"
            }
        ));
    } else {
        message.push_str("; no retired objects left");
    }
    message
}

fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    on: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if on { "True" } else { "False" };
    let last_transition_time = match conditions.iter().find(|c| c.type_ == type_) {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => now.clone(),
    };
    conditions.retain(|c| c.type_ != type_);
    conditions.push(Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: generation,
    });
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

fn is_true(status: &CollectorSetStatus, type_: &str) -> bool {
    status.condition(type_).is_some_and(|c| c.status == "True")
}

/// Events worth telling a human: readiness flips, pause/resume, invalid spec, resharding.
pub fn transitions(before: &CollectorSetStatus, after: &CollectorSetStatus) -> Vec<Transition> {
    let mut out = Vec::new();
    let reason_of = |s: &CollectorSetStatus, t: &str| s.condition(t).map(|c| c.reason.clone());
    let blocked = |s: &CollectorSetStatus| {
        reason_of(s, DEGRADED).filter(|r| r == "InvalidSpec" || r == "MissingSecret")
    };
    if let Some(reason) = blocked(after).filter(|r| blocked(before).as_ref() != Some(r)) {
        out.push(Transition {
            warning: true,
            reason: if reason == "InvalidSpec" {
                "InvalidSpec"
            } else {
                "MissingSecret"
            },
            note: after
                .condition(DEGRADED)
                .map(|c| c.message.clone())
                .unwrap_or_default(),
        });
    }
    match (is_true(before, PAUSED), is_true(after, PAUSED)) {
        (false, true) => out.push(Transition {
            warning: false,
            reason: "Paused",
            note: "reconciliation paused; child objects left as they are".into(),
        }),
        (true, false) => out.push(Transition {
            warning: false,
            reason: "Resumed",
            note: "reconciliation resumed".into(),
        }),
        _ => {}
    }
    let names = |s: &CollectorSetStatus| -> BTreeSet<String> {
        s.shards.iter().map(|s| s.name.clone()).collect()
    };
    let (old, new) = (names(before), names(after));
    if old != new && !is_true(after, PAUSED) {
        let added: Vec<_> = new.difference(&old).cloned().collect();
        let removed: Vec<_> = old.difference(&new).cloned().collect();
        out.push(Transition {
            warning: false,
            reason: "Resharded",
            note: format!(
                "{} shards; added [{}], retiring [{}] (their objects go once the new plan has rolled out; see the Progressing condition)",
                new.len(),
                added.join(", "),
                removed.join(", ")
            ),
        });
    }
    let ready_before = is_true(before, READY);
    let ready_after = is_true(after, READY);
    if ready_before != ready_after || (before.conditions.is_empty() && !after.conditions.is_empty())
    {
        let message = after
            .condition(READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        out.push(Transition {
            warning: !ready_after,
            reason: if ready_after { "Ready" } else { "NotReady" },
            note: message,
        });
    }
    // Each finished report Job once: a new Job name with a verdict.
    if let Some(r) = after
        .report
        .as_ref()
        .filter(|r| before.report.as_ref().map(|b| &b.job) != Some(&r.job))
    {
        let (warning, reason) = match r.verdict.as_str() {
            "Pass" => (false, "DataQualityPassed"),
            "Fail" => (true, "DataQualityFailed"),
            _ => (true, "DataQualityReportError"),
        };
        let detail = r
            .message
            .clone()
            .or_else(|| r.failures.first().cloned())
            .unwrap_or_default();
        out.push(Transition {
            warning,
            reason,
            note: format!(
                "report {}: {} streams, {} failing{}{}",
                r.job,
                r.streams,
                r.failing_streams,
                if detail.is_empty() { "" } else { "; " },
                detail
            ),
        });
    }
    out.extend(job_transitions(before, after));
    out
}

/// Each finished scheduled Job once: a kind's new Job name with a result.
fn job_transitions(before: &CollectorSetStatus, after: &CollectorSetStatus) -> Vec<Transition> {
    let mut out = Vec::new();
    let Some(jobs) = &after.jobs else {
        return out;
    };
    for kind in JobKind::ALL {
        let Some(r) = slot(jobs, kind) else { continue };
        let seen = before
            .jobs
            .as_ref()
            .and_then(|b| slot(b, kind).as_ref())
            .is_some_and(|b| b.job == r.job);
        if seen {
            continue;
        }
        let passed = r.result == "Pass";
        let reason = match (kind, passed) {
            (JobKind::Verify, true) => "VerifyPassed",
            (JobKind::Verify, false) => "VerifyFailed",
            (JobKind::Backfill, true) => "BackfillSucceeded",
            (JobKind::Backfill, false) => "BackfillFailed",
        };
        let mut note = format!(
            "{} {} {}: {}/{} units done, {} failed",
            kind.as_str(),
            r.job,
            r.result,
            r.done_units,
            r.units,
            r.failed_units
        );
        if let Some(d) = r.discrepancies {
            note.push_str(&format!(", {d} discrepancies"));
        }
        if let (Some(gaps), Some(filled)) = (r.gaps, r.filled) {
            note.push_str(&format!(", {filled}/{gaps} gaps filled"));
        }
        if let Some(detail) = r.message.as_ref().or(r.problems.first()) {
            note.push_str(&format!("; {detail}"));
        }
        out.push(Transition {
            warning: !passed,
            reason,
            note,
        });
    }
    out
}
