//! Reconciles with scheduled jobs: applied with the set's children, results read into status, an
//! Event per new result, and everything pruned (the work volume last) when `spec.jobs` goes.

use super::*;
use crate::crd::{JobsSpec, VerifyJobSpec};

fn with_verify() -> CollectorSet {
    let mut set = prod();
    set.spec.jobs = Some(JobsSpec {
        verify: Some(VerifyJobSpec::default()),
        ..JobsSpec::default()
    });
    set
}

const SUMMARY: &str = r#"{"job":"verify","succeeded":false,"total":48,"done":48,"failed":0,"pending":0,"cancelled":false,"discrepancies":2,"from_ms":1,"to_ms":2,"first":["trades 2026-11-29 okx BTC-USDT: 2 keys only in hot"],"details":{}}"#;

/// A finished verify Job and its pod, as the Job controller leaves them.
fn finished_verify_run() -> BTreeMap<&'static str, Vec<Value>> {
    let job = json!({
        "metadata": {"name": "prod-verify-29410590", "namespace": "markets"},
        "status": {"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": "2026-11-30T00:45:00Z"}]},
    });
    let pod = json!({
        "metadata": {"name": "prod-verify-29410590-x1", "namespace": "markets"},
        "status": {"containerStatuses": [{
            "name": "job", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-30T00:44:59Z", "message": SUMMARY}}
        }]}
    });
    BTreeMap::from([("jobs", vec![job]), ("pods", vec![pod])])
}

#[tokio::test]
async fn scheduled_jobs_are_applied_and_their_last_result_reaches_status_once_with_an_event() {
    let mut world = World::new(with_verify());
    world.existing = finished_verify_run();
    let (result, calls) = reconcile_in(world.clone()).await;
    result.unwrap();
    assert_eq!(applied(&calls, "persistentvolumeclaims"), ["prod-jobs"]);
    assert_eq!(applied(&calls, "cronjobs"), ["prod-verify"]);
    assert!(applied(&calls, "configmaps").contains(&"prod-jobs"));
    // The work volume exists before the CronJob that mounts it.
    let at = |resource: &str| {
        calls
            .iter()
            .position(|c| c.method == Method::PATCH && c.resource() == resource)
            .unwrap()
    };
    assert!(at("persistentvolumeclaims") < at("cronjobs"));
    let list = calls
        .iter()
        .find(|c| c.method == Method::GET && c.resource() == "jobs")
        .unwrap();
    assert!(
        list.query
            .contains("app.kubernetes.io%2Fcomponent%3Dverify"),
        "{}",
        list.query
    );
    let status = status_patch(&calls);
    let verify = status.jobs.as_ref().unwrap().verify.clone().unwrap();
    assert_eq!(verify.result, "Fail");
    assert_eq!(verify.job, "prod-verify-29410590");
    assert_eq!((verify.units, verify.discrepancies), (48, Some(2)));
    assert_eq!(
        status.jobs.as_ref().unwrap().backfill,
        None,
        "not scheduled"
    );
    assert!(events(&calls).contains(&"VerifyFailed".to_owned()));

    // The next reconcile sees the same Job: the same status, no second event.
    world.set.status = Some(status);
    let (_, again) = reconcile_in(world).await;
    assert_eq!(
        status_patch(&again).jobs.unwrap().verify.unwrap().job,
        "prod-verify-29410590"
    );
    assert!(!events(&again).contains(&"VerifyFailed".to_owned()));
}

#[tokio::test]
async fn removing_spec_jobs_prunes_its_objects_and_the_work_volume_last() {
    let object = |name: &str, component: &str| {
        json!({"metadata": {"name": name, "namespace": "markets", "labels": {
            "marketprism.io/collectorset": "prod", "app.kubernetes.io/component": component}}})
    };
    let mut world = World::new(prod());
    world.existing = BTreeMap::from([
        ("cronjobs", vec![object("prod-verify", "verify")]),
        ("configmaps", vec![object("prod-jobs", "jobs")]),
        ("persistentvolumeclaims", vec![object("prod-jobs", "jobs")]),
    ]);
    let (result, calls) = reconcile_in(world).await;
    result.unwrap();
    let deleted: Vec<(&str, &str)> = calls
        .iter()
        .filter(|c| c.method == Method::DELETE)
        .map(|c| (c.resource(), c.name()))
        .collect();
    assert_eq!(
        deleted,
        [
            ("cronjobs", "prod-verify"),
            ("configmaps", "prod-jobs"),
            ("persistentvolumeclaims", "prod-jobs")
        ]
    );
    assert_eq!(status_patch(&calls).jobs, None);
}
