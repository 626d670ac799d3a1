//! The last finished run of a CronJob, shared by the report (`status.report`) and the scheduled
//! jobs (`status.jobs`): its Job (listed by the CronJob's pod-template labels), and its container's
//! exit code and termination message (the run's summary).
//!
//! The pure half ([`latest_finished`], [`termination`]) is tested without a cluster; [`last_run`]
//! lists the Jobs and the Job's pods (`list` on jobs and pods in the set's namespace only).

use crate::Result;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use std::collections::BTreeMap;

/// How a finished Job's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastRun {
    /// The Job's name.
    pub job: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// The container's exit code; `None` when no pod of the Job is left with a terminated
    /// container (deadline, deleted pod).
    pub exit_code: Option<i32>,
    /// Its termination message.
    pub message: Option<String>,
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

/// `container`'s exit code and termination message in `pods` (a Job's pods): of the attempt that
/// ended last when the Job replaced failed pods.
pub fn termination(pods: &[Pod], container: &str) -> (Option<i32>, Option<String>) {
    pods.iter()
        .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
        .flatten()
        .filter(|c| c.name == container)
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref())
        .max_by_key(|t| t.finished_at.as_ref().map(|f| f.0))
        .map_or((None, None), |t| (Some(t.exit_code), t.message.clone()))
}

fn selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The last finished Job among those labelled `labels` in `namespace` and how its `container`
/// ended; `None` while none has finished.
pub async fn last_run(
    client: &Client,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    container: &str,
) -> Result<Option<LastRun>> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), namespace);
    let listed = jobs
        .list(&ListParams::default().labels(&selector(labels)))
        .await?;
    let Some((job, finished_at)) = latest_finished(&listed.items) else {
        return Ok(None);
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let job_pods = pods
        .list(&ListParams::default().labels(&format!("job-name={}", job.name_any())))
        .await?;
    let (exit_code, message) = termination(&job_pods.items, container);
    Ok(Some(LastRun {
        job: job.name_any(),
        finished_at,
        exit_code,
        message,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn pod(container: &str, exit_code: i32, finished: &str, message: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-1-abc"},
            "status": {"containerStatuses": [{
                "name": container, "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": exit_code, "finishedAt": finished, "message": message}}
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn the_named_containers_termination_is_read() {
        let p = pod(
            "report",
            1,
            "2026-11-30T10:00:00Z",
            "{\"verdict\":\"fail\"}",
        );
        assert_eq!(
            termination(std::slice::from_ref(&p), "report"),
            (Some(1), Some("{\"verdict\":\"fail\"}".into()))
        );
        assert_eq!(termination(&[p], "job"), (None, None), "another container");
        assert_eq!(termination(&[], "report"), (None, None));
    }

    #[test]
    fn of_a_job_that_replaced_failed_pods_the_last_attempt_is_read() {
        let pods = [
            pod("job", 2, "2026-11-30T10:00:00Z", "first attempt"),
            pod("job", 0, "2026-11-30T10:30:00Z", "last attempt"),
            pod("job", 137, "2026-11-30T10:10:00Z", "second attempt"),
        ];
        assert_eq!(
            termination(&pods, "job"),
            (Some(0), Some("last attempt".into()))
        );
    }
}
