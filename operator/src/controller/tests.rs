//! Reconciler tests against a fake API server on a tower-test mock service (no cluster).
//!
//! The fake answers like the apiserver would for the calls the reconciler makes (apply echoes the
//! object, list returns what the test says exists, delete succeeds) and records every request,
//! so tests assert on what the operator asked the cluster to do.

use super::*;
use crate::crd::{CollectorSetStatus, ShardStatus, Venue};
use crate::fixtures::{collector_set, exchange, spec, symbols};
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::BTreeMap;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

#[derive(Debug, Clone)]
struct Call {
    method: Method,
    path: String,
    query: String,
    body: Value,
}

impl Call {
    /// Last path segment before `/status`, e.g. `deployments` for an apply, or the object name.
    fn resource(&self) -> &str {
        let parts: Vec<&str> = self.path.split('/').collect();
        match self.method {
            Method::PATCH | Method::DELETE => parts[parts.len() - 2],
            _ => parts[parts.len() - 1],
        }
    }
    fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }
}

/// What the fake cluster contains and reports.
#[derive(Clone)]
struct World {
    set: CollectorSet,
    /// Objects returned by label-selected lists, by resource plural.
    existing: BTreeMap<&'static str, Vec<Value>>,
    /// Whether applied Deployments report a finished rollout with ready pods.
    deployments_ready: bool,
    lease_holder: Option<&'static str>,
    /// `marketprism.io/not-ready` annotations the holders wrote, by Lease name.
    lease_notes: BTreeMap<&'static str, &'static str>,
    /// Answer the first apply with HTTP 500.
    fail_first_apply: bool,
    /// Secrets by name and the keys they hold (absent: 404).
    secrets: BTreeMap<&'static str, Vec<&'static str>>,
}

impl World {
    fn new(set: CollectorSet) -> World {
        World {
            set,
            existing: BTreeMap::new(),
            deployments_ready: true,
            lease_holder: Some("pod-a"),
            lease_notes: BTreeMap::new(),
            fail_first_apply: false,
            secrets: BTreeMap::from([
                ("nats-creds", vec!["user", "password"]),
                ("ch-creds", vec!["user", "password"]),
            ]),
        }
    }

    fn respond(&mut self, call: &Call) -> (u16, Value) {
        match call.method {
            Method::PATCH if call.path.ends_with("/status") => {
                let mut set = serde_json::to_value(&self.set).unwrap();
                set["status"] = call.body["status"].clone();
                (200, set)
            }
            Method::PATCH => {
                if std::mem::take(&mut self.fail_first_apply) {
                    return (500, status_body(500, "etcd unavailable"));
                }
                let mut object = call.body.clone();
                object["metadata"]["resourceVersion"] = "1".into();
                object["metadata"]["generation"] = 1.into();
                if object["kind"] == "Deployment" {
                    let n = object["spec"]["replicas"].clone();
                    let ready = if self.deployments_ready {
                        n.clone()
                    } else {
                        0.into()
                    };
                    object["status"] = json!({
                        "observedGeneration": if self.deployments_ready { 1 } else { 0 },
                        "replicas": n, "updatedReplicas": ready, "readyReplicas": ready,
                    });
                }
                if let (true, Some(holder)) = (object["kind"] == "Lease", self.lease_holder) {
                    object["spec"]["holderIdentity"] = holder.into();
                }
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if let (true, Some(note)) = (
                    object["kind"] == "Lease",
                    self.lease_notes.get(name.as_str()),
                ) {
                    object["metadata"]["annotations"] = json!({ "marketprism.io/not-ready": note });
                }
                (200, object)
            }
            Method::GET if call.path.contains("/secrets/") => match self.secrets.get(call.name()) {
                Some(keys) => {
                    let data: serde_json::Map<String, Value> = keys
                        .iter()
                        .map(|k| ((*k).to_owned(), "eA==".into()))
                        .collect();
                    (
                        200,
                        json!({"apiVersion": "v1", "kind": "Secret",
                               "metadata": {"name": call.name(), "namespace": "markets"}, "data": data}),
                    )
                }
                None => {
                    let mut body = status_body(404, "secrets not found");
                    body["reason"] = "NotFound".into();
                    (404, body)
                }
            },
            Method::GET => {
                let items = self
                    .existing
                    .get(call.resource())
                    .cloned()
                    .unwrap_or_default();
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                )
            }
            Method::DELETE => (200, status_body(200, "deleted")),
            Method::POST => (201, call.body.clone()),
            _ => (405, status_body(405, "unexpected")),
        }
    }
}

fn status_body(code: u16, message: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": if code < 300 { "Success" } else { "Failure" },
           "message": message, "reason": "", "code": code})
}

/// Serve requests until every client is dropped; return what was asked.
async fn serve(mut handle: Handle, mut world: World) -> Vec<Call> {
    let mut calls = Vec::new();
    while let Some((request, send)) = handle.next_request().await {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap();
        let call = Call {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        };
        let (code, value) = world.respond(&call);
        calls.push(call);
        send.send_response(
            Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&value).unwrap()))
                .unwrap(),
        );
    }
    calls
}

/// Run one reconcile against `world`; return its result and the recorded calls.
async fn reconcile_in(world: World) -> (Result<Action>, Vec<Call>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let set = Arc::new(world.set.clone());
    let server = tokio::spawn(serve(handle, world));
    let client = Client::new(service, "default");
    let ctx = Arc::new(Context::new(
        client,
        BuildOptions {
            default_image: "collector:test".into(),
            ..BuildOptions::default()
        },
        Some("operator-0".into()),
    ));
    let result = reconcile(set, ctx).await;
    (result, server.await.unwrap())
}

/// With the shared sink Deployment; `prod_with_sidecars` has the default placement.
fn prod() -> CollectorSet {
    let mut set = prod_with_sidecars();
    set.spec.sink.placement = crate::crd::SinkPlacement::Deployment;
    set
}

fn prod_with_sidecars() -> CollectorSet {
    collector_set(
        "prod",
        spec(vec![exchange(Venue::BinanceSpot, symbols(30))], 10),
    )
}

fn applied<'a>(calls: &'a [Call], resource: &str) -> Vec<&'a str> {
    calls
        .iter()
        .filter(|c| c.method == Method::PATCH && c.resource() == resource)
        .map(Call::name)
        .collect()
}

fn status_patch(calls: &[Call]) -> CollectorSetStatus {
    let call = calls
        .iter()
        .find(|c| c.method == Method::PATCH && c.path.ends_with("/status"))
        .expect("status is written every reconcile");
    serde_json::from_value(call.body["status"].clone()).unwrap()
}

fn condition(status: &CollectorSetStatus, type_: &str) -> (String, String) {
    let c = status.condition(type_).unwrap();
    (c.status.clone(), c.reason.clone())
}

fn events(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.method == Method::POST && c.path.ends_with("/events"))
        .map(|c| c.body["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn applies_every_child_with_one_field_manager_and_writes_status() {
    let (result, calls) = reconcile_in(World::new(prod())).await;
    assert_eq!(result.unwrap(), Action::requeue(RESYNC));
    assert_eq!(
        applied(&calls, "deployments"),
        ["prod-s0", "prod-s1", "prod-s2", "prod-sink"]
    );
    assert_eq!(
        applied(&calls, "configmaps"),
        ["prod-s0", "prod-s1", "prod-s2", "prod-sink"]
    );
    for kind in ["leases", "roles", "rolebindings", "serviceaccounts"] {
        assert_eq!(
            applied(&calls, kind),
            ["prod-s0", "prod-s1", "prod-s2"],
            "{kind}"
        );
    }
    assert_eq!(applied(&calls, "services"), ["prod-metrics"]);
    assert_eq!(applied(&calls, "poddisruptionbudgets").len(), 4);
    for c in calls.iter().filter(|c| c.method == Method::PATCH) {
        assert!(
            c.query.contains("fieldManager=marketprism-operator"),
            "{}",
            c.query
        );
        assert!(c.query.contains("force=true"), "{}", c.query);
        assert!(c.path.contains("/namespaces/markets/"), "{}", c.path);
    }
    let status = status_patch(&calls);
    assert_eq!(status.observed_generation, Some(3));
    assert_eq!((status.shard_count, status.ready_shards), (3, 3));
    assert_eq!(status.ready, "3/3");
    assert_eq!(status.shards[0].lock_holder.as_deref(), Some("pod-a"));
    assert_eq!(status.shards[0].symbols.len(), 10);
    assert_eq!(
        condition(&status, "Ready"),
        ("True".into(), "AllShardsServing".into())
    );
    assert_eq!(condition(&status, "Progressing").0, "False");
    let ev = events(&calls);
    assert!(
        ev.contains(&"Resharded".to_owned()) && ev.contains(&"Ready".to_owned()),
        "{ev:?}"
    );
}

/// What a shard's lock holder says is not ready (its Lease annotation) reaches the status: on the
/// shard and in a `Degraded` condition naming the shard and the unlisted symbol. A released Lease's
/// leftover note is not shown (it no longer describes a running pod).
#[tokio::test]
async fn holder_reported_problems_reach_the_status() {
    let mut world = World::new(prod());
    world.lease_notes.insert(
        "prod-s1",
        r#"{"instruments:binance_spot":"not listed by the venue: BNB-XYZ"}"#,
    );
    let (_, calls) = reconcile_in(world.clone()).await;
    let status = status_patch(&calls);
    assert_eq!(
        status.shards[1].not_ready,
        ["instruments:binance_spot: not listed by the venue: BNB-XYZ"]
    );
    assert!(status.shards[0].not_ready.is_empty());
    assert_eq!(
        condition(&status, "Degraded"),
        ("True".into(), "CollectorsNotReady".into())
    );
    let degraded = status.condition("Degraded").unwrap();
    assert!(
        degraded
            .message
            .contains("s1: instruments:binance_spot: not listed by the venue: BNB-XYZ"),
        "{}",
        degraded.message
    );

    world.lease_holder = None;
    let (_, calls) = reconcile_in(world).await;
    let status = status_patch(&calls);
    assert!(status.shards.iter().all(|s| s.not_ready.is_empty()));
    assert_ne!(
        condition(&status, "Degraded").1,
        "CollectorsNotReady",
        "a released Lease's note is not the shard's state"
    );
}

fn stale_shard_objects() -> BTreeMap<&'static str, Vec<Value>> {
    let object = |name: &str| {
        let mut labels = json!({"marketprism.io/collectorset": "prod"});
        if let Some(shard) = name
            .strip_prefix("prod-")
            .filter(|s| s.starts_with('s') && *s != "sink")
        {
            labels["marketprism.io/shard"] = shard.into();
        }
        json!({"metadata": {"name": name, "namespace": "markets", "labels": labels}})
    };
    let mut existing = BTreeMap::new();
    existing.insert("deployments", vec![object("prod-s0"), object("prod-s7")]);
    existing.insert("configmaps", vec![object("prod-s7"), object("prod-sink")]);
    existing.insert("leases", vec![object("prod-s7")]);
    existing
}

#[tokio::test]
async fn deletes_objects_of_shards_no_longer_planned() {
    let mut world = World::new(prod());
    world.existing = stale_shard_objects();
    let (result, calls) = reconcile_in(world).await;
    assert_eq!(
        result.unwrap(),
        Action::requeue(ROLLOUT_POLL),
        "deleted objects may linger: look again soon"
    );
    let deleted: Vec<(&str, &str)> = calls
        .iter()
        .filter(|c| c.method == Method::DELETE)
        .map(|c| (c.resource(), c.name()))
        .collect();
    assert_eq!(
        deleted,
        [
            ("deployments", "prod-s7"),
            ("leases", "prod-s7"),
            ("configmaps", "prod-s7")
        ]
    );
    let list = calls
        .iter()
        .find(|c| c.method == Method::GET && c.resource() == "deployments")
        .unwrap();
    assert!(
        list.query
            .contains("labelSelector=marketprism.io%2Fcollectorset%3Dprod"),
        "{}",
        list.query
    );
    // They existed when listed, so status says so; the next reconcile lists again.
    let status = status_patch(&calls);
    assert_eq!(status.retired_objects, 3);
    let progressing = status.condition("Progressing").unwrap();
    assert_eq!(progressing.status, "True");
    assert!(
        progressing
            .message
            .contains("3 objects of retired shards [s7] still exist (deleted"),
        "{}",
        progressing.message
    );
}

#[tokio::test]
async fn status_counts_retired_objects_from_what_exists_on_every_reconcile() {
    // The second reconcile after two symbols were removed: status already holds the new plan
    // (no s7), so only listing can tell that the objects of s7 are still there.
    let mut set = prod();
    let (_, first) = reconcile_in(World::new(set.clone())).await;
    set.status = Some(status_patch(&first));
    assert!(
        set.status
            .as_ref()
            .unwrap()
            .shards
            .iter()
            .all(|s| s.name != "s7")
    );
    let mut world = World::new(set.clone());
    world.existing = stale_shard_objects();
    world.deployments_ready = false;
    let (result, calls) = reconcile_in(world).await;
    assert_eq!(result.unwrap(), Action::requeue(ROLLOUT_POLL));
    assert!(
        calls.iter().all(|c| c.method != Method::DELETE),
        "nothing deleted before rollout"
    );
    let status = status_patch(&calls);
    assert_eq!(
        status.retired_objects, 3,
        "prod-s7 Deployment, Lease and ConfigMap"
    );
    let progressing = status.condition("Progressing").unwrap();
    assert_eq!(progressing.status, "True");
    assert!(
        progressing
            .message
            .contains("3 objects of retired shards [s7] still exist (removed once"),
        "{}",
        progressing.message
    );

    // Once they are gone, the same status says so.
    let world = World::new(set);
    let (result, calls) = reconcile_in(world).await;
    assert_eq!(result.unwrap(), Action::requeue(RESYNC));
    let status = status_patch(&calls);
    assert_eq!(status.retired_objects, 0);
    assert_eq!(
        condition(&status, "Progressing"),
        ("False".into(), "RolledOut".into())
    );
}

#[tokio::test]
async fn retires_stale_shards_only_after_the_new_plan_rolled_out() {
    let mut set = prod();
    set.status = Some(CollectorSetStatus {
        shards: vec![ShardStatus {
            name: "s7".into(),
            symbols: vec!["binance_spot/S1-USDT".into()],
            ..ShardStatus::default()
        }],
        ..CollectorSetStatus::default()
    });
    let mut world = World::new(set);
    world.existing = stale_shard_objects();
    world.deployments_ready = false;
    let (result, calls) = reconcile_in(world).await;
    assert_eq!(result.unwrap(), Action::requeue(ROLLOUT_POLL));
    assert!(
        calls.iter().all(|c| c.method != Method::DELETE),
        "nothing deleted before rollout"
    );
    let status = status_patch(&calls);
    assert_eq!(
        condition(&status, "Progressing"),
        ("True".into(), "RollingOut".into())
    );
    assert_eq!(condition(&status, "Ready").0, "False");
    assert!(
        status.shards.iter().any(|s| s.name == "s7"),
        "the sticky planner kept the previous shard name: {:?}",
        status.shards.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn paused_changes_nothing_but_status() {
    let mut set = prod();
    set.spec.paused = true;
    let mut world = World::new(set);
    world.existing = stale_shard_objects();
    let (result, calls) = reconcile_in(world).await;
    assert_eq!(result.unwrap(), Action::requeue(IDLE_RESYNC));
    let writes: Vec<_> = calls
        .iter()
        .filter(|c| c.method != Method::POST && c.method != Method::GET)
        .map(|c| c.path.clone())
        .collect();
    assert_eq!(writes.len(), 1, "only the status patch: {writes:?}");
    assert!(writes[0].ends_with("/collectorsets/prod/status"));
    let status = status_patch(&calls);
    assert_eq!(
        condition(&status, "Paused"),
        ("True".into(), "Paused".into())
    );
    assert!(events(&calls).contains(&"Paused".to_owned()));
}

#[tokio::test]
async fn invalid_spec_is_reported_in_status_and_not_applied() {
    let mut set = prod();
    set.spec.exchanges[0].symbols[1] = "S0-USDT".into();
    let (result, calls) = reconcile_in(World::new(set)).await;
    result.unwrap();
    assert!(applied(&calls, "deployments").is_empty());
    let status = status_patch(&calls);
    let degraded = status.condition("Degraded").unwrap();
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "InvalidSpec")
    );
    assert!(
        degraded.message.contains("spec.exchanges[0].symbols"),
        "{}",
        degraded.message
    );
    assert!(events(&calls).contains(&"InvalidSpec".to_owned()));
}

#[tokio::test]
async fn api_failures_are_errors_with_growing_backoff() {
    let mut world = World::new(prod());
    world.fail_first_apply = true;
    let (result, calls) = reconcile_in(world).await;
    let error = result.unwrap_err();
    assert_eq!(error.reason(), "ApiError");
    assert!(events(&calls).contains(&"ReconcileFailed".to_owned()));
    assert!(
        calls.iter().all(|c| !c.path.ends_with("/status")),
        "no half-baked status after a failed apply"
    );
    assert_eq!(backoff(1), Duration::from_secs(5));
    assert_eq!(backoff(3), Duration::from_secs(20));
    assert_eq!(backoff(50), IDLE_RESYNC);
}

#[tokio::test]
async fn error_policy_backs_off_per_object_and_resets_on_success() {
    let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Arc::new(Context::new(
        Client::new(service, "default"),
        BuildOptions {
            default_image: "x".into(),
            ..BuildOptions::default()
        },
        None,
    ));
    let set = Arc::new(prod());
    let err = Error::MissingField("metadata.uid");
    let first = error_policy(set.clone(), &err, ctx.clone());
    let second = error_policy(set.clone(), &err, ctx.clone());
    assert_eq!(first, Action::requeue(Duration::from_secs(5)));
    assert_eq!(second, Action::requeue(Duration::from_secs(10)));
    ctx.failures().remove(&key(&set));
    assert_eq!(
        error_policy(set, &err, ctx),
        Action::requeue(Duration::from_secs(5))
    );
}

// Secrets, per-venue data types and the sink placements.
#[path = "tests_placement.rs"]
mod placement;

// Scheduled jobs: apply, status, events, pruning.
#[path = "tests_jobs.rs"]
mod jobs;
