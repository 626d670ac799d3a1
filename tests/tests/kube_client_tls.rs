//! The Kubernetes clients for real: built from a kubeconfig (CA file + bearer token) and talking HTTPS
//! to a fake of the Lease endpoints. Covers the collector's shard lock (acquire, standby, conflict,
//! release, hand-over) and the operator's leader election (create, claim, release).
#![forbid(unsafe_code)]

use marketprism_config::LeaseConfig;
use marketprism_operator::leader::{Ended, LeaderConfig, run_as_leader};
use marketprism_pipeline::lease::run_lease_with;
use marketprism_telemetry::Health;
use marketprism_tests::kube_fake::FakeApiServer;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const NS: &str = "markets";
const LEASE: &str = "full-s0";

async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Keeper {
    may_publish: watch::Receiver<bool>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<marketprism_pipeline::Result<()>>,
}

async fn keeper(api: &FakeApiServer, holder: &str) -> Keeper {
    keeper_reporting(api, holder, Health::new()).await
}

/// A shard lock keeper whose process readiness is `health`.
async fn keeper_reporting(api: &FakeApiServer, holder: &str, health: Health) -> Keeper {
    let (tx, rx) = watch::channel(false);
    let stop = CancellationToken::new();
    let config = LeaseConfig {
        name: LEASE.into(),
        namespace: NS.into(),
        duration_s: 3,
        holder: holder.into(),
    };
    let task = tokio::spawn(run_lease_with(
        api.client().await,
        config,
        health,
        tx,
        stop.clone(),
    ));
    Keeper {
        may_publish: rx,
        stop,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_lock_over_https_acquires_conflicts_releases_and_hands_over() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApiServer::start(dir.path()).await;
    api.put_lease(NS, LEASE, json!({"leaseDurationSeconds": 3}));

    // Two pods race for one free Lease: resourceVersion conflicts decide, exactly one holds it.
    let a = keeper(&api, "pod-a").await;
    let b = keeper(&api, "pod-b").await;
    eventually("someone holds the Lease", Duration::from_secs(10), || {
        api.holder(NS, LEASE).is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first = api.holder(NS, LEASE).unwrap();
    let (active, standby) = if first == "pod-a" { (a, b) } else { (b, a) };
    eventually("the holder may publish", Duration::from_secs(5), || {
        *active.may_publish.borrow()
    })
    .await;
    assert!(
        !*standby.may_publish.borrow(),
        "the standby must not publish"
    );

    // Renewals move resourceVersion while the holder stays.
    let version = |api: &FakeApiServer| {
        api.lease(NS, LEASE).unwrap()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let v1 = version(&api);
    eventually("a renewal", Duration::from_secs(5), || version(&api) != v1).await;
    assert_eq!(api.holder(NS, LEASE).as_deref(), Some(first.as_str()));

    // Shutdown releases at once; the standby takes over well before the 3 s duration runs out.
    active.stop.cancel();
    active.task.await.unwrap().expect("keeper ends cleanly");
    let second = if first == "pod-a" { "pod-b" } else { "pod-a" };
    eventually("the standby takes over", Duration::from_secs(5), || {
        api.holder(NS, LEASE).as_deref() == Some(second)
    })
    .await;
    eventually("the new holder may publish", Duration::from_secs(5), || {
        *standby.may_publish.borrow()
    })
    .await;
    standby.stop.cancel();
    standby.task.await.unwrap().expect("keeper ends cleanly");
    assert_eq!(api.holder(NS, LEASE), None, "released at shutdown");

    let (requests, unauthorized) = api.requests();
    assert!(
        requests > 5,
        "the clients really talked to the API: {requests}"
    );
    assert_eq!(unauthorized, 0, "every request carried the bearer token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_leader_election_over_https_creates_claims_and_releases() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApiServer::start(dir.path()).await;
    let config = LeaderConfig {
        namespace: NS.into(),
        name: "marketprism-operator".into(),
        identity: "operator-0".into(),
        duration: Duration::from_secs(6),
    };
    let api_ok = Arc::new(AtomicBool::new(false));
    let (led_tx, mut led_rx) = tokio::sync::mpsc::channel(1);
    let stop = CancellationToken::new();
    let leader = {
        let (client, config, api_ok, stop) = (
            api.client().await,
            config.clone(),
            api_ok.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            run_as_leader(client, config, api_ok, stop, move |token| async move {
                let _ = led_tx.send(()).await;
                token.cancelled().await;
            })
            .await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), led_rx.recv())
        .await
        .expect("becomes leader")
        .expect("work started");
    assert_eq!(
        api.holder(NS, "marketprism-operator").as_deref(),
        Some("operator-0"),
        "the Lease was created (POST) and claimed (PUT)"
    );
    assert!(api_ok.load(std::sync::atomic::Ordering::SeqCst));
    stop.cancel();
    let ended = leader.await.unwrap().expect("leadership ends cleanly");
    assert_eq!(ended, Ended::Released);
    assert_eq!(
        api.holder(NS, "marketprism-operator"),
        None,
        "released over HTTPS at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_is_refused_and_reported_not_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApiServer::start(dir.path()).await;
    api.put_lease(NS, LEASE, json!({"leaseDurationSeconds": 3}));
    let text = std::fs::read_to_string(&api.kubeconfig).unwrap();
    std::fs::write(
        &api.kubeconfig,
        text.replace(marketprism_tests::kube_fake::TOKEN, "wrong"),
    )
    .unwrap();
    let (tx, rx) = watch::channel(false);
    let health = Health::new();
    let stop = CancellationToken::new();
    let config = LeaseConfig {
        name: LEASE.into(),
        namespace: NS.into(),
        duration_s: 3,
        holder: "pod-a".into(),
    };
    let task = tokio::spawn(run_lease_with(
        api.client().await,
        config,
        health.clone(),
        tx,
        stop.clone(),
    ));
    eventually("refused requests", Duration::from_secs(5), || {
        api.requests().1 > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!*rx.borrow(), "never publishes without the Lease");
    assert_eq!(api.holder(NS, LEASE), None);
    let lease = health.snapshot().remove("lease").expect("lease readiness");
    assert!(!lease.ready, "not ready: {lease:?}");
    assert!(
        lease.reason.contains("401") || lease.reason.to_lowercase().contains("unauthorized"),
        "the reason names the refusal: {lease:?}"
    );
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// The holder's not-ready components travel on its Lease to the operator: the collector's lease
/// keeper writes them with a renewal over HTTPS, the operator's reader turns that Lease into the
/// shard's status lines, and the note goes away once the component is ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_holders_not_ready_reasons_reach_the_operator_through_the_lease() {
    use k8s_openapi::api::coordination::v1::Lease;
    use marketprism_operator::controller::apply::holder_not_ready;
    let dir = tempfile::tempdir().unwrap();
    let api = FakeApiServer::start(dir.path()).await;
    api.put_lease(NS, LEASE, json!({"leaseDurationSeconds": 3}));
    let health = Health::new();
    let instruments = health.register("instruments:binance_spot");
    instruments.not_ready("not listed by the venue: BNB-XYZ");
    let keeper = keeper_reporting(&api, "pod-a", health.clone()).await;
    let seen = |api: &FakeApiServer| {
        let lease: Lease = serde_json::from_value(api.lease(NS, LEASE).unwrap()).unwrap();
        holder_not_ready(&lease)
    };
    eventually(
        "the holder's note on its Lease",
        Duration::from_secs(10),
        || seen(&api) == ["instruments:binance_spot: not listed by the venue: BNB-XYZ"],
    )
    .await;
    instruments.ready();
    eventually(
        "the note cleared with a renewal",
        Duration::from_secs(5),
        || seen(&api).is_empty(),
    )
    .await;
    keeper.stop.cancel();
    keeper.task.await.unwrap().expect("keeper ends cleanly");
}
