//! The shell against a fake Lease API (tower-test mock services sharing one Lease), in paused time.

use super::*;
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// One Lease with apiserver semantics: GET returns it, PUT succeeds only on the current resourceVersion.
#[derive(Default)]
struct Store {
    lease: Value,
    version: u64,
}

type Shared = Arc<Mutex<Store>>;

fn store() -> Shared {
    Arc::new(Mutex::new(Store {
        lease: json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "prod-s0", "namespace": "markets", "resourceVersion": "1"},
            "spec": {"leaseDurationSeconds": 15}
        }),
        version: 1,
    }))
}

fn holder(store: &Shared) -> Option<String> {
    let s = store.lock().unwrap();
    s.lease["spec"]["holderIdentity"]
        .as_str()
        .map(str::to_owned)
}

/// A client whose requests go to `store`; while `cut` is set, every call fails with 503.
fn client(store: Shared, cut: Arc<Mutex<bool>>) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let (code, value) = if *cut.lock().unwrap() {
                (
                    503,
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 503, "reason": "ServiceUnavailable", "message": "partitioned"}),
                )
            } else {
                let mut s = store.lock().unwrap();
                match parts.method {
                    Method::GET => (200, s.lease.clone()),
                    Method::PUT => {
                        let body: Value = serde_json::from_slice(&bytes).unwrap();
                        if body["metadata"]["resourceVersion"]
                            == s.lease["metadata"]["resourceVersion"]
                        {
                            s.version += 1;
                            s.lease = body;
                            s.lease["metadata"]["resourceVersion"] = s.version.to_string().into();
                            (200, s.lease.clone())
                        } else {
                            (
                                409,
                                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 409, "reason": "Conflict", "message": "the object has been modified"}),
                            )
                        }
                    }
                    _ => (405, json!({})),
                }
            };
            send.send_response(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&value).unwrap()))
                    .unwrap(),
            );
        }
    });
    Client::new(service, "markets")
}

struct Pod {
    may_publish: watch::Receiver<bool>,
    takeovers: watch::Receiver<Option<Takeover>>,
    cut: Arc<Mutex<bool>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<()>>,
    health: Health,
}

fn start(store: &Shared, name: &str) -> Pod {
    let cut = Arc::new(Mutex::new(false));
    let (tx, rx) = watch::channel(false);
    let (takeover_tx, takeovers) = watch::channel(None);
    let shutdown = CancellationToken::new();
    let health = Health::new();
    let config = LeaseConfig {
        name: "prod-s0".into(),
        namespace: "markets".into(),
        duration_s: 15,
        holder: name.into(),
    };
    let signals = Signals {
        may_publish: tx,
        takeovers: takeover_tx,
        deadline: watch::channel(None).0,
    };
    let task = tokio::spawn(run_lease_reporting(
        client(store.clone(), cut.clone()),
        config,
        health.clone(),
        signals,
        shutdown.clone(),
    ));
    Pod {
        may_publish: rx,
        takeovers,
        cut,
        shutdown,
        task,
        health,
    }
}

/// Step virtual time in 100 ms ticks for `secs`, asserting at most one pod may publish at any tick.
async fn run_for(secs: u64, pods: &[&Pod]) -> Vec<usize> {
    let mut active_ticks = vec![0; pods.len()];
    for _ in 0..secs * 10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let active: Vec<usize> = (0..pods.len())
            .filter(|i| *pods[*i].may_publish.borrow())
            .collect();
        assert!(active.len() <= 1, "two publishers at once: {active:?}");
        for i in active {
            active_ticks[i] += 1;
        }
    }
    active_ticks
}

#[tokio::test(start_paused = true)]
async fn exactly_one_of_two_pods_publishes_and_a_standby_takes_over() {
    let store = store();
    let a = start(&store, "pod-a");
    let b = start(&store, "pod-b");
    let ticks = run_for(30, &[&a, &b]).await;
    assert_eq!(
        ticks.iter().filter(|t| **t > 0).count(),
        1,
        "one active: {ticks:?}"
    );
    let (active, standby) = if ticks[0] > 0 { (&a, &b) } else { (&b, &a) };
    assert!(
        active.health.is_ready() && standby.health.is_ready(),
        "active and standby are both ready"
    );

    assert_eq!(
        *active.takeovers.borrow(),
        None,
        "a new Lease: nobody to take over from"
    );
    // Partition the active pod from the API server: it fences itself, then the standby takes over.
    *active.cut.lock().unwrap() = true;
    let last_renew = renew_ms(&store);
    let active_name = holder(&store);
    let ticks = run_for(40, &[active, standby]).await;
    assert_eq!(
        *standby.takeovers.borrow(),
        Some(Takeover {
            previous_holder: active_name,
            previous_renew_ms: last_renew,
        }),
        "the takeover names the deposed holder and its last renewal (the handover gap's start)"
    );
    assert!(
        !*active.may_publish.borrow(),
        "the partitioned pod stopped publishing"
    );
    assert!(*standby.may_publish.borrow(), "the standby took over");
    assert!(ticks[1] > 0);
    assert!(!active.health.is_ready(), "a fenced pod is not ready");
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_the_lease_for_an_immediate_handover() {
    let store = store();
    let a = start(&store, "pod-a");
    run_for(3, &[&a]).await;
    assert_eq!(holder(&store).as_deref(), Some("pod-a"));
    let b = start(&store, "pod-b");
    run_for(3, &[&a, &b]).await;
    assert!(*a.may_publish.borrow() && !*b.may_publish.borrow());
    a.shutdown.cancel();
    let Pod {
        task,
        may_publish: a_publishes,
        ..
    } = a;
    task.await.unwrap().unwrap();
    assert!(!*a_publishes.borrow());
    // Much less than a lease duration later, b holds it.
    let released_at = renew_ms(&store);
    run_for(5, &[&b]).await;
    assert_eq!(holder(&store).as_deref(), Some("pod-b"));
    assert!(*b.may_publish.borrow());
    assert_eq!(
        *b.takeovers.borrow(),
        Some(Takeover {
            previous_holder: None,
            previous_renew_ms: released_at,
        }),
        "a released Lease is a handover too"
    );
}

/// `spec.renewTime` of the shared Lease, UTC ms.
fn renew_ms(store: &Shared) -> i64 {
    let lease: Lease = serde_json::from_value(store.lock().unwrap().lease.clone()).unwrap();
    takeover_of(&lease).expect("renewed").previous_renew_ms
}

#[test]
fn wall_clock_timestamps_do_not_reach_the_state_machine() {
    let lease = |renew: &str| -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "x", "resourceVersion": "9"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": renew}
        }))
        .unwrap()
    };
    assert_eq!(
        observed(&lease("2020-01-01T00:00:00.000000Z")),
        observed(&lease("2099-01-01T00:00:00.000000Z"))
    );
    let claimed = claimed(
        lease("2020-01-01T00:00:00.000000Z"),
        "b",
        Duration::from_secs(15),
        None,
    );
    let spec = claimed.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    assert_eq!(
        claimed.metadata.resource_version.as_deref(),
        Some("9"),
        "optimistic concurrency"
    );
}

#[test]
fn the_holder_annotates_its_not_ready_components_and_clears_them_when_ready() {
    use marketprism_telemetry::Health;
    let health = Health::new();
    let lease_component = health.register("lease");
    lease_component.not_ready("renewing");
    let instruments = health.register("instruments:binance_spot");
    instruments.not_ready("not listed by the venue: BNB-XYZ");
    let nats = health.register("nats");
    nats.ready();
    let value = not_ready_annotation(&health.snapshot()).expect("one component not ready");
    let parsed: std::collections::BTreeMap<String, String> = serde_json::from_str(&value).unwrap();
    assert_eq!(
        parsed.into_iter().collect::<Vec<_>>(),
        vec![(
            "instruments:binance_spot".to_owned(),
            "not listed by the venue: BNB-XYZ".to_owned()
        )],
        "the lease component itself is left out"
    );
    let base: Lease = serde_json::from_value(json!({
        "metadata": {"name": "x", "annotations": {"other": "kept"}},
        "spec": {"holderIdentity": "a"}
    }))
    .unwrap();
    let annotated = claimed(base, "a", Duration::from_secs(15), Some(value));
    let notes = annotated.metadata.annotations.clone().unwrap();
    assert!(notes[NOT_READY_ANNOTATION].contains("BNB-XYZ"));
    assert_eq!(notes["other"], "kept", "foreign annotations survive");

    instruments.not_ready(&"x".repeat(10_000));
    let long = not_ready_annotation(&health.snapshot()).unwrap();
    assert!(long.len() < 400, "reasons are cut: {} bytes", long.len());

    instruments.ready();
    assert_eq!(not_ready_annotation(&health.snapshot()), None);
    let cleared = claimed(annotated, "a", Duration::from_secs(15), None);
    let notes = cleared.metadata.annotations.unwrap();
    assert!(!notes.contains_key(NOT_READY_ANNOTATION));
    assert_eq!(notes["other"], "kept");
}
