//! The scheduled jobs (`spec.jobs`): a CronJob per kind (`<set>-verify`, `<set>-backfill`)
//! running `marketprism-collector job <kind>` over the last `window`, one ConfigMap `<set>-jobs`
//! (the collector config both read) and one PersistentVolumeClaim `<set>-jobs` holding their work
//! directories. A retried or restarted pod runs the same command in the same work directory and
//! resumes: finished units are skipped. Each run writes its summary as its termination message,
//! which the reconciler copies into `status.jobs` (`controller::jobs`); the pods need no Kubernetes
//! API access.

use super::pod::{
    clickhouse_env, config_and_tmp_mounts, config_and_tmp_volumes, container_security_context,
    default_resources, nats_env, pod_security_context,
};
use super::{BuildOptions, JOBS_COMPONENT, LABEL_COMPONENT, LABEL_SET, Owner};
use crate::Result;
use crate::crd::JobsSpec;
use crate::render::{self, CONFIG_KEY};
use k8s_openapi::api::batch::v1::{
    CronJob, CronJobSpec, JobSpec, JobTemplateSpec, PodFailurePolicy,
    PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, Container, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodAffinity, PodAffinityTerm, PodSpec, PodTemplateSpec,
    Volume, VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

/// Where the jobs' ConfigMap is mounted (its key is `config.yaml`).
pub const JOB_CONFIG_DIR: &str = "/etc/marketprism/job";
/// Where the work volume is mounted; each kind works in `<WORK_DIR>/<kind>`.
pub const WORK_DIR: &str = "/var/lib/marketprism/jobs";
/// The job container's name (the reconciler reads its termination message).
pub const JOB_CONTAINER: &str = "job";
/// Pods of a Job that fail (exit ≠ 0) are replaced this many times, each resuming in the work
/// directory; evictions and preemptions do not count (they are not the job's fault).
pub const JOB_BACKOFF_LIMIT: i32 = 2;
/// A run that misses its schedule by more than this many seconds is skipped, not caught up.
const STARTING_DEADLINE_S: i64 = 600;

/// A scheduled job kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum JobKind {
    Verify,
    Backfill,
}

impl JobKind {
    pub const ALL: [JobKind; 2] = [JobKind::Verify, JobKind::Backfill];

    /// The `job` subcommand, the CronJob's suffix, its `component` label and work subdirectory.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Verify => "verify",
            JobKind::Backfill => "backfill",
        }
    }

    /// A Job running longer than this many seconds is stopped (the next run resumes its work):
    /// verify reads a day of every table twice, backfill refetches from rate-limited venues.
    pub fn deadline_s(self) -> i64 {
        match self {
            JobKind::Verify => 6 * 3600,
            JobKind::Backfill => 3600,
        }
    }

    /// `(schedule, window)` of this kind in `jobs`, when scheduled.
    pub fn scheduled(self, jobs: &JobsSpec) -> Option<(&str, &str)> {
        match self {
            JobKind::Verify => jobs
                .verify
                .as_ref()
                .map(|v| (v.schedule.as_str(), v.window.as_str())),
            JobKind::Backfill => jobs
                .backfill
                .as_ref()
                .map(|b| (b.schedule.as_str(), b.window.as_str())),
        }
    }

    /// The container's arguments after `marketprism-collector`.
    pub fn args(self, window: &str) -> Vec<String> {
        let config = format!("{JOB_CONFIG_DIR}/{CONFIG_KEY}");
        let work_dir = format!("{WORK_DIR}/{}", self.as_str());
        let mut args = vec!["job", self.as_str(), "--config", &config];
        if self == JobKind::Backfill {
            args.push("--from-gaps");
        }
        args.extend([
            "--last",
            window,
            "--work-dir",
            &work_dir,
            // One JSON object (≤ 4 KB) for the reconciler: the container's termination message.
            "--summary",
            "/dev/termination-log",
        ]);
        args.into_iter().map(String::from).collect()
    }
}

/// What `spec.jobs` asks for: empty without it (or without ClickHouse, which validation reports).
#[derive(Debug, Clone, Default)]
pub struct JobObjects {
    /// `<set>-jobs`, when at least one kind is scheduled.
    pub config_map: Option<ConfigMap>,
    /// `<set>-jobs`, whenever `spec.jobs` is set: removing one kind (or both) keeps the work.
    pub work_volume: Option<PersistentVolumeClaim>,
    pub cron_jobs: Vec<CronJob>,
}

/// The jobs' ConfigMap, work volume and CronJobs.
pub fn jobs(owner: &Owner<'_>, options: &BuildOptions) -> Result<JobObjects> {
    let spec = &owner.set.spec;
    let (Some(jobs), Some(_)) = (&spec.jobs, &spec.clickhouse) else {
        return Ok(JobObjects::default());
    };
    let name = owner.jobs_object();
    let labels = owner.component_labels(JOBS_COMPONENT);
    let mut out = JobObjects {
        work_volume: Some(work_volume(owner, jobs, &name, labels.clone())?),
        ..JobObjects::default()
    };
    let Some(config) = render::jobs_config(spec, &name)? else {
        return Ok(out);
    };
    out.config_map = Some(ConfigMap {
        metadata: owner.meta(&name, labels)?,
        data: Some(BTreeMap::from([(CONFIG_KEY.to_owned(), config.yaml)])),
        ..ConfigMap::default()
    });
    for kind in JobKind::ALL {
        if let Some((schedule, window)) = kind.scheduled(jobs) {
            out.cron_jobs
                .push(cron_job(owner, kind, schedule, window, &name, options)?);
        }
    }
    Ok(out)
}

/// One ReadWriteOnce claim for both kinds (each in its own subdirectory, made by the collector).
fn work_volume(
    owner: &Owner<'_>,
    jobs: &JobsSpec,
    name: &str,
    labels: BTreeMap<String, String>,
) -> Result<PersistentVolumeClaim> {
    Ok(PersistentVolumeClaim {
        metadata: owner.meta(name, labels)?,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: jobs.work_volume.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_owned(),
                    Quantity(jobs.work_volume.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    })
}

fn cron_job(
    owner: &Owner<'_>,
    kind: JobKind,
    schedule: &str,
    window: &str,
    config_map: &str,
    options: &BuildOptions,
) -> Result<CronJob> {
    let spec = &owner.set.spec;
    let mut env = clickhouse_env(spec);
    if kind == JobKind::Backfill {
        // It publishes what it refetched, as the collectors do.
        env.extend(nats_env(spec, options));
    }
    let mut mounts = config_and_tmp_mounts(JOB_CONFIG_DIR);
    mounts.push(VolumeMount {
        name: "work".into(),
        mount_path: WORK_DIR.into(),
        ..VolumeMount::default()
    });
    let mut volumes = config_and_tmp_volumes(config_map);
    volumes.push(Volume {
        name: "work".into(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: config_map.to_owned(),
            read_only: Some(false),
        }),
        ..Volume::default()
    });
    let container = Container {
        env: Some(env),
        resources: Some(default_resources()),
        security_context: Some(container_security_context()),
        // A run that dies before writing its summary still says why (the log's tail).
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(mounts),
        ..super::pod::collector_container(JOB_CONTAINER, spec, options, kind.args(window))
    };
    let pod = PodSpec {
        containers: vec![container],
        // A failed pod stays (its summary readable) and the Job starts a new one, which resumes in
        // the work directory.
        restart_policy: Some("Never".into()),
        automount_service_account_token: Some(false),
        security_context: Some(pod_security_context()),
        node_selector: spec.node_selector.clone(),
        tolerations: spec.tolerations.clone(),
        affinity: Some(beside_other_jobs(owner.name)),
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    let labels = owner.component_labels(kind.as_str());
    let template_meta = ObjectMeta {
        labels: Some(labels.clone()),
        ..ObjectMeta::default()
    };
    Ok(CronJob {
        metadata: owner.meta(&owner.job_object(kind), labels)?,
        spec: Some(CronJobSpec {
            schedule: schedule.to_owned(),
            // One run of a kind at a time (two would share the work directory).
            concurrency_policy: Some("Forbid".into()),
            starting_deadline_seconds: Some(STARTING_DEADLINE_S),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(template_meta.clone()),
                spec: Some(JobSpec {
                    backoff_limit: Some(JOB_BACKOFF_LIMIT),
                    active_deadline_seconds: Some(kind.deadline_s()),
                    pod_failure_policy: Some(PodFailurePolicy {
                        rules: vec![
                            PodFailurePolicyRule {
                                action: "Ignore".into(),
                                on_pod_conditions: Some(vec![
                                    PodFailurePolicyOnPodConditionsPattern {
                                        type_: "DisruptionTarget".into(),
                                        status: "True".into(),
                                    },
                                ]),
                                ..PodFailurePolicyRule::default()
                            },
                            // Exit 1 is an answer (verify found discrepancies), not a failure a
                            // retry would change: the Job ends with it. Exit 2 (units failed)
                            // is retried, and the retry resumes in the work directory.
                            PodFailurePolicyRule {
                                action: "FailJob".into(),
                                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                                    container_name: Some(JOB_CONTAINER.into()),
                                    operator: "In".into(),
                                    values: vec![1],
                                }),
                                ..PodFailurePolicyRule::default()
                            },
                        ],
                    }),
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
    })
}

/// Prefer the node of the set's other job pods: the work volume is ReadWriteOnce, so a verify and a
/// backfill running at once can mount it together only on one node.
fn beside_other_jobs(set: &str) -> Affinity {
    Affinity {
        pod_affinity: Some(PodAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(BTreeMap::from([(
                                LABEL_SET.to_owned(),
                                set.to_owned(),
                            )])),
                            match_expressions: Some(vec![LabelSelectorRequirement {
                                key: LABEL_COMPONENT.into(),
                                operator: "In".into(),
                                values: Some(
                                    JobKind::ALL.iter().map(|k| k.as_str().into()).collect(),
                                ),
                            }]),
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAffinity::default()
        }),
        ..Affinity::default()
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
