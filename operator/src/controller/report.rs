//! `status.report` from the last finished report Job: its pod's exit code and termination message
//! (the report's compact JSON summary, see `marketprism-collector report --summary`).
//!
//! The pure half ([`verdict_of`]) is tested without a cluster; [`observe`] reads the last finished
//! report Job through [`super::runs`] (shared with the scheduled jobs).

use super::runs::last_run;
use crate::Result;
use crate::builders::{Owner, REPORT_CONTAINER};
use crate::crd::ReportStatus;
use kube::Client;

/// The report as the Job's pod ended: exit 0 pass, 1 fail (both with the summary as message),
/// anything else (2: the report could not be made; a kill, a deadline) an error.
pub fn verdict_of(
    job: &str,
    finished_at: Option<String>,
    exit_code: Option<i32>,
    message: Option<&str>,
) -> ReportStatus {
    let summary = message.and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok());
    let base = ReportStatus {
        job: job.to_owned(),
        finished_at,
        ..ReportStatus::default()
    };
    match (exit_code, summary) {
        (Some(code @ (0 | 1)), Some(s)) if s["verdict"].is_string() => ReportStatus {
            verdict: if code == 0 { "Pass" } else { "Fail" }.into(),
            from_ms: s["from_ms"].as_i64(),
            to_ms: s["to_ms"].as_i64(),
            streams: s["streams"].as_i64().unwrap_or(0),
            failing_streams: s["failing_streams"].as_i64().unwrap_or(0),
            failures: s["failures"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(str::to_owned))
                        .take(10)
                        .collect()
                })
                .unwrap_or_default(),
            ..base
        },
        (code, _) => ReportStatus {
            verdict: "Error".into(),
            message: Some(match (code, message) {
                (Some(c), Some(m)) if !m.trim().is_empty() => {
                    format!("exit code {c}: {}", m.chars().take(500).collect::<String>())
                }
                (Some(c), _) => format!("exit code {c} without a summary (see the Job's logs)"),
                (None, _) => {
                    "the Job ended without its pod's status (deadline or deleted pod)".into()
                }
            }),
            ..base
        },
    }
}

/// The last finished report's status, or `None` when no report Job has finished yet.
pub async fn observe(client: &Client, owner: &Owner<'_>) -> Result<Option<ReportStatus>> {
    let Some(run) = last_run(
        client,
        owner.namespace,
        &owner.report_selector(),
        REPORT_CONTAINER,
    )
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(verdict_of(
        &run.job,
        Some(run.finished_at),
        run.exit_code,
        run.message.as_deref(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_with_exit_0_or_1_is_the_verdict() {
        let msg = r#"{"verdict":"fail","from_ms":1,"to_ms":2,"streams":54,"failing_streams":2,"failures":["a: max_gap_ratio 0.2 vs limit 0.01"],"failures_total":1}"#;
        let s = verdict_of("r-1", Some("t".into()), Some(1), Some(msg));
        assert_eq!(s.verdict, "Fail");
        assert_eq!((s.streams, s.failing_streams), (54, 2));
        assert_eq!(s.failures, ["a: max_gap_ratio 0.2 vs limit 0.01"]);
        assert_eq!((s.from_ms, s.to_ms), (Some(1), Some(2)));
        let pass = verdict_of("r-2", None, Some(0), Some(&msg.replace("fail", "pass")));
        assert_eq!(pass.verdict, "Pass");
        assert_eq!(pass.message, None);
    }

    #[test]
    fn anything_else_is_an_error_that_says_why() {
        let e = verdict_of("r", None, Some(2), Some("clickhouse: connection refused"));
        assert_eq!(e.verdict, "Error");
        assert!(e.message.unwrap().contains("connection refused"));
        // Exit 1 without a parsable summary: the process failed before judging anything.
        let e = verdict_of("r", None, Some(1), Some("panicked"));
        assert_eq!(e.verdict, "Error");
        let e = verdict_of("r", None, Some(137), None);
        assert!(e.message.unwrap().contains("137"));
        let e = verdict_of("r", None, None, None);
        assert!(e.message.unwrap().contains("deadline"));
    }
}
