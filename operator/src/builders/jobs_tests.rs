use super::*;
use crate::builders::{NatsAuth, RUN_AS, children};
use crate::crd::{BackfillJobSpec, CollectorSet, JobsSpec, Venue, VerifyJobSpec, WorkVolumeSpec};
use crate::fixtures::{collector_set, exchange, spec, symbols};
use crate::planner;
use k8s_openapi::api::batch::v1::CronJob;

fn with_jobs(jobs: Option<JobsSpec>) -> CollectorSet {
    let mut s = spec(vec![exchange(Venue::BinanceDerivatives, symbols(3))], 10);
    s.jobs = jobs;
    collector_set("prod", s)
}

fn both() -> JobsSpec {
    JobsSpec {
        verify: Some(VerifyJobSpec::default()),
        backfill: Some(BackfillJobSpec {
            schedule: "*/20 * * * *".into(),
            window: "2h".into(),
        }),
        work_volume: WorkVolumeSpec {
            size: "5Gi".into(),
            storage_class_name: Some("fast".into()),
        },
    }
}

fn options() -> BuildOptions {
    BuildOptions {
        default_image: "marketprism/collector:1".into(),
        ..BuildOptions::default()
    }
}

fn built(set: &CollectorSet) -> crate::builders::Children {
    let plan = planner::plan(&set.spec, &[]);
    children(set, &plan, &options()).unwrap()
}

fn cron_job<'a>(c: &'a crate::builders::Children, name: &str) -> &'a CronJob {
    c.cron_jobs
        .iter()
        .find(|j| j.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no CronJob {name}"))
}

fn pod_of(cj: &CronJob) -> &k8s_openapi::api::core::v1::PodSpec {
    cj.spec
        .as_ref()
        .unwrap()
        .job_template
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
}

#[test]
fn no_jobs_no_cron_jobs_config_map_or_volume() {
    let c = built(&with_jobs(None));
    assert!(c.cron_jobs.is_empty());
    assert!(c.persistent_volume_claims.is_empty());
    assert!(
        c.config_maps
            .iter()
            .all(|m| m.metadata.name.as_deref() != Some("prod-jobs"))
    );
}

#[test]
fn each_kind_runs_its_exact_command_over_its_window() {
    let c = built(&with_jobs(Some(both())));
    let names: Vec<_> = c
        .cron_jobs
        .iter()
        .filter_map(|j| j.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["prod-verify", "prod-backfill"]);
    let args = |name: &str| {
        pod_of(cron_job(&c, name)).containers[0]
            .args
            .clone()
            .unwrap()
            .join(" ")
    };
    assert_eq!(
        args("prod-verify"),
        "job verify --config /etc/marketprism/job/config.yaml --last 1d \
         --work-dir /var/lib/marketprism/jobs/verify --summary /dev/termination-log"
    );
    assert_eq!(
        args("prod-backfill"),
        "job backfill --config /etc/marketprism/job/config.yaml --from-gaps --last 2h \
         --work-dir /var/lib/marketprism/jobs/backfill --summary /dev/termination-log"
    );
    let verify = cron_job(&c, "prod-verify");
    let spec = verify.spec.as_ref().unwrap();
    assert_eq!(spec.schedule, "30 0 * * *", "the default schedule");
    assert_eq!(
        cron_job(&c, "prod-backfill")
            .spec
            .as_ref()
            .unwrap()
            .schedule,
        "*/20 * * * *"
    );
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(
        (
            spec.successful_jobs_history_limit,
            spec.failed_jobs_history_limit
        ),
        (Some(3), Some(3))
    );
    let job = spec.job_template.spec.as_ref().unwrap();
    assert_eq!(job.backoff_limit, Some(JOB_BACKOFF_LIMIT));
    assert!(job.active_deadline_seconds.is_some_and(|s| s > 0));
    let policy = job.pod_failure_policy.as_ref().unwrap();
    assert_eq!(
        policy.rules[0].action, "Ignore",
        "evictions do not use up retries"
    );
    let answer = policy.rules[1].on_exit_codes.as_ref().unwrap();
    assert_eq!(
        (
            policy.rules[1].action.as_str(),
            answer.operator.as_str(),
            &answer.values[..]
        ),
        ("FailJob", "In", &[1][..]),
        "exit 1 (discrepancies found) ends the Job; exit 2 (units failed) is retried and resumes"
    );
    assert_eq!(answer.container_name.as_deref(), Some(JOB_CONTAINER));
    let container = &pod_of(verify).containers[0];
    assert_eq!(container.name, JOB_CONTAINER);
    assert_eq!(
        container.command.as_deref(),
        Some(&["marketprism-collector".to_owned()][..])
    );
    assert_eq!(
        container.image.as_deref(),
        Some("marketprism/collector:1"),
        "the collector's image"
    );
    assert_eq!(
        container.termination_message_path, None,
        "the default /dev/termination-log"
    );
    assert_eq!(
        container.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
}

#[test]
fn job_pods_are_hardened_without_api_access_and_labelled_by_kind() {
    let c = built(&with_jobs(Some(both())));
    for kind in JobKind::ALL {
        let cj = cron_job(&c, &format!("prod-{}", kind.as_str()));
        let labels = cj.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/component"], kind.as_str());
        assert_eq!(labels["marketprism.io/collectorset"], "prod");
        assert_eq!(
            labels["app.kubernetes.io/managed-by"],
            "marketprism-operator"
        );
        let owner = &cj.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("CollectorSet", Some(true))
        );
        let template = &cj
            .spec
            .as_ref()
            .unwrap()
            .job_template
            .spec
            .as_ref()
            .unwrap()
            .template;
        let pod_labels = template.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        // The selector the reconciler lists this kind's Jobs and pods by.
        let set = c_set();
        let owner = Owner::of(&set).unwrap();
        for (k, v) in owner.component_selector(kind.as_str()) {
            assert_eq!(pod_labels.get(&k), Some(&v), "{k}");
        }
        let pod = pod_of(cj);
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.service_account_name, None);
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!(
            (psc.run_as_non_root, psc.fs_group),
            (Some(true), Some(RUN_AS))
        );
        let csc = pod.containers[0].security_context.as_ref().unwrap();
        assert_eq!(csc.read_only_root_filesystem, Some(true));
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(csc.privileged, Some(false));
    }
}

fn c_set() -> CollectorSet {
    with_jobs(Some(both()))
}

#[test]
fn the_config_is_mounted_read_only_and_the_work_volume_writable() {
    let c = built(&with_jobs(Some(both())));
    for kind in JobKind::ALL {
        let pod = pod_of(cron_job(&c, &format!("prod-{}", kind.as_str())));
        let mounts = pod.containers[0].volume_mounts.as_ref().unwrap();
        let at = |path: &str| mounts.iter().find(|m| m.mount_path == path).unwrap();
        assert_eq!(at(JOB_CONFIG_DIR).read_only, Some(true));
        assert_eq!(at(WORK_DIR).read_only, None, "writable");
        assert!(mounts.iter().any(|m| m.mount_path == "/tmp"));
        let volumes = pod.volumes.as_ref().unwrap();
        let volume = |name: &str| volumes.iter().find(|v| v.name == name).unwrap();
        assert_eq!(
            volume(&at(JOB_CONFIG_DIR).name)
                .config_map
                .as_ref()
                .unwrap()
                .name,
            "prod-jobs"
        );
        let claim = volume(&at(WORK_DIR).name)
            .persistent_volume_claim
            .as_ref()
            .unwrap();
        assert_eq!(claim.claim_name, "prod-jobs");
    }
}

#[test]
fn the_work_volume_is_one_read_write_once_claim_of_the_asked_size() {
    let c = built(&with_jobs(Some(both())));
    assert_eq!(c.persistent_volume_claims.len(), 1);
    let pvc = &c.persistent_volume_claims[0];
    assert_eq!(pvc.metadata.name.as_deref(), Some("prod-jobs"));
    assert_eq!(
        pvc.metadata.labels.as_ref().unwrap()["app.kubernetes.io/component"],
        JOBS_COMPONENT
    );
    assert!(
        pvc.metadata
            .owner_references
            .as_ref()
            .is_some_and(|o| o.len() == 1)
    );
    let spec = pvc.spec.as_ref().unwrap();
    assert_eq!(
        spec.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_owned()][..])
    );
    assert_eq!(spec.storage_class_name.as_deref(), Some("fast"));
    assert_eq!(
        spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "5Gi"
    );
    // Defaults: 1Gi of the default class. `jobs: {}` keeps the volume without any CronJob.
    let c = built(&with_jobs(Some(JobsSpec::default())));
    assert!(c.cron_jobs.is_empty());
    assert!(
        c.config_maps
            .iter()
            .all(|m| m.metadata.name.as_deref() != Some("prod-jobs"))
    );
    let spec = c.persistent_volume_claims[0].spec.clone().unwrap();
    assert_eq!(spec.storage_class_name, None);
    assert_eq!(
        spec.resources.unwrap().requests.unwrap()["storage"].0,
        "1Gi"
    );
}

#[test]
fn credentials_are_secret_references_only_and_nats_only_for_backfill() {
    let mut set = with_jobs(Some(both()));
    let plan = planner::plan(&set.spec, &[]);
    let options = BuildOptions {
        nats_auth: NatsAuth {
            user_password: true,
            token: true,
        },
        ..options()
    };
    let c = children(&set, &plan, &options).unwrap();
    let env_names = |name: &str| -> Vec<String> {
        let env = pod_of(cron_job(&c, name)).containers[0]
            .env
            .clone()
            .unwrap();
        assert!(env.iter().all(|e| e.value.is_none()), "no literal values");
        assert!(env.iter().all(|e| {
            e.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .is_some_and(|s| s.optional == Some(false))
        }));
        env.into_iter().map(|e| e.name).collect()
    };
    assert_eq!(
        env_names("prod-verify"),
        [
            "MARKETPRISM_CLICKHOUSE_USER",
            "MARKETPRISM_CLICKHOUSE_PASSWORD"
        ]
    );
    assert_eq!(
        env_names("prod-backfill"),
        [
            "MARKETPRISM_CLICKHOUSE_USER",
            "MARKETPRISM_CLICKHOUSE_PASSWORD",
            "MARKETPRISM_NATS_USER",
            "MARKETPRISM_NATS_PASSWORD",
            "MARKETPRISM_NATS_TOKEN"
        ]
    );
    // No credential value in any object the jobs add, even with values that look like secrets.
    set.spec
        .clickhouse
        .as_mut()
        .unwrap()
        .credentials_secret_ref
        .as_mut()
        .unwrap()
        .name = "ch-secret-name".into();
    let c = children(&set, &plan, &options).unwrap();
    let text = serde_json::to_string(&(
        &c.cron_jobs,
        &c.persistent_volume_claims,
        c.config_maps
            .iter()
            .find(|m| m.metadata.name.as_deref() == Some("prod-jobs")),
    ))
    .unwrap();
    assert!(text.contains("ch-secret-name"), "referenced by name");
    for leak in ["password:", "\"password\":\"", "token:"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

#[test]
fn the_config_map_is_a_collector_config_with_nats_output_only_for_backfill() {
    let config_of = |jobs: JobsSpec| {
        let c = built(&with_jobs(Some(jobs)));
        let cm = c
            .config_maps
            .iter()
            .find(|m| m.metadata.name.as_deref() == Some("prod-jobs"))
            .expect("the jobs' ConfigMap")
            .clone();
        let yaml = cm.data.unwrap()[CONFIG_KEY].clone();
        let config = marketprism_config::Config::from_yaml(&yaml).unwrap();
        config.validate().unwrap();
        config
    };
    let config = config_of(both());
    assert_eq!(config.exchanges.len(), 1);
    assert_eq!(
        config.exchanges[0].symbols.len(),
        3,
        "every symbol of the set"
    );
    let ch = &config.sink.as_ref().unwrap().clickhouse;
    assert_eq!(ch.url, "http://clickhouse:8123");
    assert_eq!(ch.password, None, "credentials never rendered");
    let nats = config.outputs.nats.as_ref().expect("backfill publishes");
    assert_eq!(nats.url, "nats://nats.marketprism:4222");
    let verify_only = JobsSpec {
        backfill: None,
        ..both()
    };
    assert!(config_of(verify_only).outputs.nats.is_none());
}

#[test]
fn removing_one_kind_keeps_the_other_and_the_volume() {
    let c = built(&with_jobs(Some(JobsSpec {
        verify: None,
        ..both()
    })));
    let names: Vec<_> = c
        .cron_jobs
        .iter()
        .filter_map(|j| j.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["prod-backfill"]);
    assert_eq!(c.persistent_volume_claims.len(), 1);
}

#[test]
fn jobs_without_clickhouse_build_nothing_and_are_refused_naming_spec() {
    let mut set = with_jobs(Some(both()));
    set.spec.clickhouse = None;
    let errors = crate::validate::validate(&set.spec);
    assert!(
        errors
            .iter()
            .any(|e| e.field == "spec" && e.message.contains("set spec.clickhouse")),
        "{errors:?}"
    );
    let c = built(&set);
    assert!(c.cron_jobs.is_empty() && c.persistent_volume_claims.is_empty());
}

#[test]
fn bad_schedules_windows_and_sizes_are_refused_naming_the_field() {
    let mut set = with_jobs(Some(both()));
    assert_eq!(crate::validate::validate(&set.spec), []);
    let jobs = set.spec.jobs.as_mut().unwrap();
    jobs.verify.as_mut().unwrap().schedule = "daily".into();
    jobs.backfill.as_mut().unwrap().window = "0h".into();
    jobs.work_volume.size = "1G".into();
    let fields: Vec<String> = crate::validate::validate(&set.spec)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "spec.jobs.verify.schedule",
            "spec.jobs.backfill.window",
            "spec.jobs.workVolume.size"
        ]
    );
}
