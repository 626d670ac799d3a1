//! The scheduled data-quality report: a ConfigMap (the ClickHouse config and the criteria) and a
//! CronJob running `marketprism-collector report` over the last `spec.report.window`. The Job writes
//! its verdict as its termination message, which the reconciler copies into `status.report`
//! (`controller::report`); the pod needs no Kubernetes API access at all.

use super::pod::{
    clickhouse_env, config_and_tmp_mounts, config_and_tmp_volumes, container_security_context,
    default_resources, pod_security_context,
};
use super::{BuildOptions, Owner};
use crate::Result;
use crate::render::{self, CONFIG_DIR, CONFIG_KEY};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

/// The criteria file's key in the report's ConfigMap.
pub const CRITERIA_KEY: &str = "criteria.yaml";
/// The report container's name (the reconciler reads its termination message).
pub const REPORT_CONTAINER: &str = "report";
/// A run that takes longer than this is stopped and reported as an error.
const REPORT_DEADLINE_S: i64 = 1_800;

/// The report's ConfigMap and CronJob; `None` without `spec.report` or without ClickHouse (which
/// validation reports).
pub fn report(owner: &Owner<'_>, options: &BuildOptions) -> Result<Option<(ConfigMap, CronJob)>> {
    let spec = &owner.set.spec;
    let Some(report) = &spec.report else {
        return Ok(None);
    };
    let name = owner.report_object();
    let Some(config) = render::report_config(spec, &name)? else {
        return Ok(None);
    };
    let labels = owner.report_labels();
    let config_map = ConfigMap {
        metadata: owner.meta(&name, labels.clone())?,
        data: Some(BTreeMap::from([
            (CONFIG_KEY.to_owned(), config.yaml),
            (CRITERIA_KEY.to_owned(), render::report_criteria(report)),
        ])),
        ..ConfigMap::default()
    };
    let args: Vec<String> = [
        "report",
        "--config",
        &format!("{CONFIG_DIR}/{CONFIG_KEY}"),
        "--clickhouse",
        "--last",
        &report.window,
        "--criteria",
        &format!("{CONFIG_DIR}/{CRITERIA_KEY}"),
        // The verdict for the reconciler (≤ 4 KB), the whole report for the logs.
        "--summary",
        "/dev/termination-log",
        "--json",
        "-",
    ]
    .map(String::from)
    .to_vec();
    let container = Container {
        env: Some(clickhouse_env(spec)),
        resources: Some(default_resources()),
        security_context: Some(container_security_context()),
        termination_message_policy: Some("File".into()),
        volume_mounts: Some(config_and_tmp_mounts(CONFIG_DIR)),
        ..super::pod::collector_container(REPORT_CONTAINER, spec, options, args)
    };
    let pod = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        security_context: Some(pod_security_context()),
        node_selector: spec.node_selector.clone(),
        tolerations: spec.tolerations.clone(),
        volumes: Some(config_and_tmp_volumes(&name)),
        ..PodSpec::default()
    };
    let template_meta = ObjectMeta {
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };
    let cron_job = CronJob {
        metadata: owner.meta(&name, labels)?,
        spec: Some(CronJobSpec {
            schedule: report.schedule.clone(),
            // One run at a time; a run missed by more than 10 minutes is skipped, not caught up.
            concurrency_policy: Some("Forbid".into()),
            starting_deadline_seconds: Some(600),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(template_meta.clone()),
                spec: Some(JobSpec {
                    // A failing verdict is an answer, not a crash: never retried.
                    backoff_limit: Some(0),
                    active_deadline_seconds: Some(REPORT_DEADLINE_S),
                    template: PodTemplateSpec {
                        metadata: Some(template_meta),
                        spec: Some(pod),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        }),
        ..CronJob::default()
    };
    Ok(Some((config_map, cron_job)))
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
