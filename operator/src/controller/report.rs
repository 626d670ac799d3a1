//! `status.report` from the last finished report Job: its pod's exit code and termination message
//! (the report's compact JSON summary, see `marketprism-collector report --summary`).
//!
//! The pure half ([`verdict_of`], [`latest_finished`]) is tested without a cluster; [`observe`] lists
//! the set's report Jobs and their pods (`list` on jobs and pods in the set's namespace only).

use crate::Result;
use crate::builders::{Owner, REPORT_CONTAINER};
use crate::crd::ReportStatus;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

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

/// When a Job finished (completion or failure condition), if it has.
fn finished_at(job: &Job) -> Option<String> {
    let status = job.status.as_ref()?;
    if let Some(t) = &status.completion_time {
        return Some(t.0.to_string());
    }
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Failed" && c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0.to_string())
}

/// The most recently finished Job, with its finish time.
pub fn latest_finished(jobs: &[Job]) -> Option<(&Job, String)> {
    jobs.iter()
        .filter_map(|j| finished_at(j).map(|t| (j, t)))
        .max_by(|a, b| a.1.cmp(&b.1))
}

/// The report container's exit code and termination message in `pods` (the Job's one pod).
pub fn termination(pods: &[Pod]) -> (Option<i32>, Option<String>) {
    pods.iter()
        .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter(|c| c.name == REPORT_CONTAINER)
        .find_map(|c| c.state.as_ref()?.terminated.as_ref())
        .map_or((None, None), |t| (Some(t.exit_code), t.message.clone()))
}

/// The last finished report's status, or `None` when no report Job has finished yet.
pub async fn observe(client: &Client, owner: &Owner<'_>) -> Result<Option<ReportStatus>> {
    let selector = owner
        .report_selector()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let jobs: Api<Job> = Api::namespaced(client.clone(), owner.namespace);
    let listed = jobs.list(&ListParams::default().labels(&selector)).await?;
    let Some((job, finished)) = latest_finished(&listed.items) else {
        return Ok(None);
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), owner.namespace);
    let job_pods = pods
        .list(&ListParams::default().labels(&format!("job-name={}", job.name_any())))
        .await?;
    let (exit_code, message) = termination(&job_pods.items);
    Ok(Some(verdict_of(
        &job.name_any(),
        Some(finished),
        exit_code,
        message.as_deref(),
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

    #[test]
    fn the_latest_finished_job_is_read() {
        let job = |name: &str, done: Option<&str>| -> Job {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": name},
                "status": done.map_or(serde_json::json!({}), |t| serde_json::json!({"completionTime": t})),
            }))
            .unwrap()
        };
        let failed: Job = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-3"},
            "status": {"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": "2026-11-30T12:00:00Z"}]},
        }))
        .unwrap();
        let jobs = vec![
            job("r-1", Some("2026-11-30T10:00:00Z")),
            failed,
            job("r-4", None), // still running
            job("r-2", Some("2026-11-30T11:00:00Z")),
        ];
        let (latest, at) = latest_finished(&jobs).unwrap();
        assert_eq!(latest.name_any(), "r-3");
        assert!(at.starts_with("2026-11-30T12:00:00"), "{at}");
        assert!(latest_finished(&jobs[2..3]).is_none());
    }

    #[test]
    fn the_report_containers_termination_is_read() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-1-abc"},
            "status": {"containerStatuses": [{
                "name": "report", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "message": "{\"verdict\":\"fail\"}"}}
            }]}
        }))
        .unwrap();
        assert_eq!(
            termination(&[pod]),
            (Some(1), Some("{\"verdict\":\"fail\"}".into()))
        );
        assert_eq!(termination(&[]), (None, None));
    }
}
