use super::*;
use crate::controller::status::transitions;
use crate::crd::CollectorSetStatus;

fn run(job: &str, exit_code: Option<i32>, message: Option<&str>) -> LastRun {
    LastRun {
        job: job.into(),
        finished_at: "2026-11-30T00:40:00Z".into(),
        exit_code,
        message: message.map(Into::into),
    }
}

const VERIFY_PASS: &str = r#"{"job":"verify","succeeded":true,"total":120,"done":120,"failed":0,"pending":0,"cancelled":false,"discrepancies":0,"from_ms":1764374400000,"to_ms":1764460800000,"first":[],"details":{"tables":8}}"#;

#[test]
fn a_succeeded_summary_with_exit_0_is_a_pass_with_its_figures() {
    let s = result_of(
        JobKind::Verify,
        &run("prod-verify-1", Some(0), Some(VERIFY_PASS)),
    );
    assert_eq!(s.result, "Pass");
    assert_eq!(s.job, "prod-verify-1");
    assert_eq!(s.finished_at.as_deref(), Some("2026-11-30T00:40:00Z"));
    assert_eq!(
        (s.units, s.done_units, s.failed_units, s.pending_units),
        (120, 120, 0, 0)
    );
    assert_eq!(
        (s.from_ms, s.to_ms),
        (Some(1764374400000), Some(1764460800000))
    );
    assert_eq!(s.discrepancies, Some(0));
    assert_eq!(
        (s.gaps, s.filled, s.trades),
        (None, None, None),
        "verify has no backfill figures"
    );
    assert_eq!(s.message, None);
}

#[test]
fn discrepancies_are_a_fail_naming_the_first_problems() {
    let first: Vec<String> = (0..12)
        .map(|i| format!("trades 2026-11-29 binance BTC-USDT: {i} keys only in hot"))
        .collect();
    let msg = serde_json::json!({
        "job": "verify", "succeeded": false, "total": 120, "done": 120, "failed": 0, "pending": 0,
        "cancelled": false, "discrepancies": 12, "from_ms": 1, "to_ms": 2, "first": first, "details": {}
    })
    .to_string();
    let s = result_of(JobKind::Verify, &run("prod-verify-2", Some(1), Some(&msg)));
    assert_eq!(s.result, "Fail");
    assert_eq!(s.discrepancies, Some(12));
    assert_eq!(s.problems.len(), 10, "at most 10 problems");
    assert_eq!(s.problems[0], first[0]);
    assert_eq!(s.message, None);
}

#[test]
fn backfill_figures_come_from_its_details() {
    let msg = r#"{"job":"backfill","succeeded":false,"total":5,"done":4,"failed":1,"pending":0,"cancelled":false,"discrepancies":null,"from_ms":10,"to_ms":20,"first":["okx_spot BTC-USDT 10..20: venue answered 429"],"details":{"gaps":5,"filled":4,"trades":1234}}"#;
    let s = result_of(
        JobKind::Backfill,
        &run("prod-backfill-1", Some(1), Some(msg)),
    );
    assert_eq!(s.result, "Fail");
    assert_eq!((s.gaps, s.filled, s.trades), (Some(5), Some(4), Some(1234)));
    assert_eq!((s.units, s.failed_units), (5, 1));
    assert_eq!(s.discrepancies, None);
    assert_eq!(s.problems, ["okx_spot BTC-USDT 10..20: venue answered 429"]);
}

#[test]
fn unknown_fields_are_ignored_and_missing_ones_default() {
    let s = result_of(
        JobKind::Backfill,
        &run(
            "b",
            Some(0),
            Some(r#"{"succeeded":true,"total":3,"done":3,"new_field":{"x":1}}"#),
        ),
    );
    assert_eq!(s.result, "Pass");
    assert_eq!((s.units, s.done_units, s.failed_units), (3, 3, 0));
    assert_eq!((s.from_ms, s.gaps, s.cancelled), (None, None, false));
    // An absent `succeeded` is not a success.
    let s = result_of(JobKind::Verify, &run("v", Some(0), Some(r#"{"total":3}"#)));
    assert_eq!(s.result, "Fail");
}

#[test]
fn an_unparsable_message_is_an_error_with_the_text() {
    let s = result_of(
        JobKind::Verify,
        &run("v", Some(2), Some("Error: clickhouse: connection refused")),
    );
    assert_eq!(s.result, "Error");
    let m = s.message.unwrap();
    assert!(
        m.contains("not JSON") && m.contains("connection refused"),
        "{m}"
    );
    assert!(m.contains("exit code 2"), "{m}");
    // The tail of a long log (FallbackToLogsOnError) is clipped.
    let long = "x".repeat(5000);
    let s = result_of(JobKind::Verify, &run("v", Some(101), Some(&long)));
    assert!(s.message.unwrap().len() < 1000);
}

#[test]
fn a_truncated_summary_is_an_error_naming_it() {
    let cut = &VERIFY_PASS[..VERIFY_PASS.len() / 2];
    let s = result_of(JobKind::Verify, &run("v", Some(0), Some(cut)));
    assert_eq!(s.result, "Error");
    let m = s.message.unwrap();
    assert!(m.contains("truncated"), "{m}");
    assert_eq!(s.units, 0, "no figures from a cut summary");
}

#[test]
fn no_summary_a_lost_pod_or_a_contradiction_is_an_error() {
    let s = result_of(JobKind::Verify, &run("v", Some(137), None));
    assert!(s.message.unwrap().contains("137 without a summary"));
    let s = result_of(JobKind::Verify, &run("v", None, None));
    assert!(s.message.unwrap().contains("deadline"));
    let s = result_of(JobKind::Verify, &run("v", Some(1), Some(VERIFY_PASS)));
    assert_eq!(s.result, "Error", "exit 1 but succeeded: {:?}", s.message);
    let s = result_of(JobKind::Backfill, &run("b", Some(0), Some(VERIFY_PASS)));
    assert_eq!(
        s.result, "Error",
        "verify's summary in the backfill CronJob"
    );
}

fn status_with(verify: Option<JobRunStatus>, backfill: Option<JobRunStatus>) -> CollectorSetStatus {
    CollectorSetStatus {
        jobs: Some(JobsStatus { verify, backfill }),
        ..CollectorSetStatus::default()
    }
}

fn reasons(before: &CollectorSetStatus, after: &CollectorSetStatus) -> Vec<&'static str> {
    transitions(before, after)
        .into_iter()
        .map(|t| t.reason)
        .collect()
}

#[test]
fn an_event_when_a_new_job_result_is_first_seen_only() {
    let pass = result_of(
        JobKind::Verify,
        &run("prod-verify-1", Some(0), Some(VERIFY_PASS)),
    );
    let fail = JobRunStatus {
        job: "prod-verify-2".into(),
        result: "Fail".into(),
        discrepancies: Some(3),
        ..pass.clone()
    };
    let filled = JobRunStatus {
        job: "prod-backfill-7".into(),
        result: "Pass".into(),
        gaps: Some(2),
        filled: Some(2),
        ..JobRunStatus::default()
    };
    let none = CollectorSetStatus::default();
    let first = status_with(Some(pass.clone()), None);
    assert_eq!(reasons(&none, &first), ["VerifyPassed"]);
    assert_eq!(
        reasons(&first, &first),
        Vec::<&str>::new(),
        "the same Job again: no event"
    );
    let second = status_with(Some(fail), Some(filled));
    let t = transitions(&first, &second);
    assert_eq!(
        t.iter().map(|t| t.reason).collect::<Vec<_>>(),
        ["VerifyFailed", "BackfillSucceeded"]
    );
    assert!(t[0].warning && !t[1].warning);
    assert!(t[0].note.contains("3 discrepancies"), "{}", t[0].note);
    assert!(t[1].note.contains("2/2 gaps filled"), "{}", t[1].note);
    let error = status_with(
        None,
        Some(JobRunStatus {
            job: "prod-backfill-8".into(),
            result: "Error".into(),
            message: Some("exit code 2: the summary is not JSON".into()),
            ..JobRunStatus::default()
        }),
    );
    let t = transitions(&second, &error);
    assert_eq!(
        t.iter().map(|t| t.reason).collect::<Vec<_>>(),
        ["BackfillFailed"]
    );
    assert!(t[0].note.contains("not JSON"), "{}", t[0].note);
}
