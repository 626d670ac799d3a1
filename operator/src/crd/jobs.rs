//! `spec.jobs`: the collector's resumable jobs (`marketprism-collector job verify|backfill`) on a
//! schedule, as CronJobs `<set>-verify` and `<set>-backfill` sharing one work volume `<set>-jobs`.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The work volume's size: a whole number of Mi, Gi or Ti (the PersistentVolumeClaim's request).
pub const WORK_VOLUME_SIZE_PATTERN: &str = "^[1-9][0-9]{0,5}(Mi|Gi|Ti)$";

/// Scheduled jobs over the set's ClickHouse (needs `clickhouse`). Removing `jobs` deletes the work
/// volume (every job's progress and results); removing one kind keeps it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobsSpec {
    /// `marketprism-collector job verify` on a schedule: hot vs cold per table × day × exchange ×
    /// symbol over the last `window`; its result is published in `status.jobs.verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyJobSpec>,
    /// `marketprism-collector job backfill --from-gaps` on a schedule: refetches what the recorded
    /// gaps of the last `window` lost and publishes it to NATS; result in `status.jobs.backfill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillJobSpec>,
    /// The PersistentVolumeClaim `<set>-jobs` holding the jobs' work directories, so a restarted or
    /// retried pod resumes where the last one stopped.
    #[serde(default)]
    pub work_volume: WorkVolumeSpec,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyJobSpec {
    /// Cron schedule, in the controller manager's time zone (usually UTC).
    #[serde(default = "default_verify_schedule")]
    #[schemars(length(min = 9, max = 100))]
    pub schedule: String,
    /// The range each run verifies, ending when it runs: a number and `s`, `m`, `h` or `d`.
    #[serde(default = "default_verify_window")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[smhd]$"))]
    pub window: String,
}

impl Default for VerifyJobSpec {
    fn default() -> Self {
        VerifyJobSpec {
            schedule: default_verify_schedule(),
            window: default_verify_window(),
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackfillJobSpec {
    /// Cron schedule, in the controller manager's time zone (usually UTC).
    #[serde(default = "default_backfill_schedule")]
    #[schemars(length(min = 9, max = 100))]
    pub schedule: String,
    /// The range whose gaps each run fills, ending when it runs: a number and `s`, `m`, `h` or `d`.
    #[serde(default = "default_backfill_window")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[smhd]$"))]
    pub window: String,
}

impl Default for BackfillJobSpec {
    fn default() -> Self {
        BackfillJobSpec {
            schedule: default_backfill_schedule(),
            window: default_backfill_window(),
        }
    }
}

/// The work volume. Its storage class cannot change once created, and its size can only grow where
/// the storage class allows expansion (the apiserver refuses the rest; the reconcile reports it).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkVolumeSpec {
    /// Requested capacity, e.g. `1Gi` (whole Mi, Gi or Ti).
    #[serde(default = "default_work_volume_size")]
    #[schemars(regex(pattern = WORK_VOLUME_SIZE_PATTERN))]
    pub size: String,
    /// The cluster's default storage class when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

impl Default for WorkVolumeSpec {
    fn default() -> Self {
        WorkVolumeSpec {
            size: default_work_volume_size(),
            storage_class_name: None,
        }
    }
}

fn default_verify_schedule() -> String {
    "30 0 * * *".into()
}
fn default_verify_window() -> String {
    "1d".into()
}
fn default_backfill_schedule() -> String {
    "*/30 * * * *".into()
}
fn default_backfill_window() -> String {
    "6h".into()
}
fn default_work_volume_size() -> String {
    "1Gi".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::CollectorSet;
    use crate::fixtures::{collector_set, exchange, spec, symbols};
    use kube::CustomResourceExt;
    use serde_json::Value;

    /// The CRD's `x-kubernetes-validations` evaluated on `object`, as the apiserver would.
    fn cel_errors(object: &Value) -> Vec<String> {
        let crd = CollectorSet::crd();
        let schema = serde_json::to_value(
            crd.spec.versions[0]
                .schema
                .as_ref()
                .unwrap()
                .open_api_v3_schema
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        match kube::core::cel::Validator::new().validate(&schema, object, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn set_with(jobs: Option<JobsSpec>) -> Value {
        let mut s = spec(vec![exchange(crate::crd::Venue::OkxSpot, symbols(2))], 10);
        s.jobs = jobs;
        serde_json::to_value(collector_set("prod", s)).unwrap()
    }

    fn both() -> JobsSpec {
        JobsSpec {
            verify: Some(VerifyJobSpec::default()),
            backfill: Some(BackfillJobSpec::default()),
            work_volume: WorkVolumeSpec::default(),
        }
    }

    #[test]
    fn cel_refuses_jobs_without_clickhouse_as_the_rust_rules_do() {
        let valid = set_with(Some(both()));
        assert_eq!(cel_errors(&valid), Vec::<String>::new());
        let mut invalid = valid.clone();
        invalid["spec"]
            .as_object_mut()
            .unwrap()
            .remove("clickhouse");
        let cel = cel_errors(&invalid);
        assert!(
            cel.iter().any(|e| e.contains("set spec.clickhouse")),
            "{cel:?}"
        );
        let set: CollectorSet = serde_json::from_value(invalid).unwrap();
        let rust = crate::validate::validate(&set.spec);
        assert!(
            rust.iter()
                .any(|e| e.message.contains("set spec.clickhouse")),
            "{rust:?}"
        );
        // Without jobs, no ClickHouse is fine (data stays in JetStream).
        let mut plain = set_with(None);
        plain["spec"].as_object_mut().unwrap().remove("clickhouse");
        assert_eq!(cel_errors(&plain), Vec::<String>::new());
    }

    #[test]
    fn backfill_always_has_nats_the_schema_requires_it() {
        let crd = serde_json::to_value(CollectorSet::crd()).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let required: Vec<&str> = spec["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(required.contains(&"nats"), "{required:?}");
        let mut no_nats = set_with(Some(both()));
        no_nats["spec"].as_object_mut().unwrap().remove("nats");
        assert!(serde_json::from_value::<CollectorSet>(no_nats).is_err());
    }

    #[test]
    fn the_schema_defaults_and_bounds_each_field() {
        let crd = serde_json::to_value(CollectorSet::crd()).unwrap();
        let jobs = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["jobs"]["properties"];
        assert_eq!(
            jobs["verify"]["properties"]["schedule"]["default"],
            "30 0 * * *"
        );
        assert_eq!(jobs["verify"]["properties"]["window"]["default"], "1d");
        assert_eq!(
            jobs["backfill"]["properties"]["schedule"]["default"],
            "*/30 * * * *"
        );
        assert_eq!(jobs["backfill"]["properties"]["window"]["default"], "6h");
        assert_eq!(
            jobs["backfill"]["properties"]["window"]["pattern"],
            r"^[1-9][0-9]{0,5}[smhd]$"
        );
        let size = &jobs["workVolume"]["properties"]["size"];
        assert_eq!(size["default"], "1Gi");
        assert_eq!(size["pattern"], WORK_VOLUME_SIZE_PATTERN);
        // `jobs: {verify: {}}` takes every default.
        let parsed: JobsSpec = serde_json::from_value(serde_json::json!({"verify": {}})).unwrap();
        assert_eq!(parsed.verify, Some(VerifyJobSpec::default()));
        assert_eq!(
            (parsed.backfill, parsed.work_volume),
            (None, WorkVolumeSpec::default())
        );
    }
}
