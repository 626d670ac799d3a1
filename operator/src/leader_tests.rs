//! `run_as_leader` against a fake Lease API shared by two replicas, in paused time.

use super::*;
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

/// The Lease (absent until created) with resourceVersion checks, as the apiserver does.
type Store = Arc<Mutex<Option<Value>>>;

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": code, "reason": reason, "message": reason})
}

fn client(store: Store, cut: Arc<AtomicBool>) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut version = 0u64;
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let body: Value =
                serde_json::from_slice(&body.collect_bytes().await.unwrap()).unwrap_or(Value::Null);
            let mut lease = store.lock().unwrap();
            version += 1;
            let (code, value) = match (cut.load(Ordering::Relaxed), parts.method) {
                (true, _) => (503, status(503, "ServiceUnavailable")),
                (false, Method::GET) => match lease.as_ref() {
                    Some(l) => (200, l.clone()),
                    None => (404, status(404, "NotFound")),
                },
                (false, Method::POST) if lease.is_some() => (409, status(409, "AlreadyExists")),
                (false, Method::PUT)
                    if lease.as_ref().map(|l| &l["metadata"]["resourceVersion"])
                        != Some(&body["metadata"]["resourceVersion"]) =>
                {
                    (409, status(409, "Conflict"))
                }
                (false, Method::POST | Method::PUT) => {
                    let mut stored = body;
                    // Globally increasing versions, unique per write.
                    stored["metadata"]["resourceVersion"] =
                        format!("{}{version}", stored["metadata"]["name"]).into();
                    *lease = Some(stored.clone());
                    (200, stored)
                }
                _ => (405, status(405, "MethodNotAllowed")),
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
    Client::new(service, "ops")
}

fn config(identity: &str) -> LeaderConfig {
    LeaderConfig {
        namespace: "ops".into(),
        name: "marketprism-operator".into(),
        identity: identity.into(),
        duration: Duration::from_secs(15),
    }
}

#[tokio::test(start_paused = true)]
async fn two_replicas_never_both_reconcile_and_a_partitioned_leader_steps_down() {
    let store: Store = Arc::new(Mutex::new(None));
    let working = Arc::new(AtomicUsize::new(0));
    let max_working = Arc::new(AtomicUsize::new(0));
    let mut replicas = Vec::new();
    for name in ["op-a", "op-b"] {
        let cut = Arc::new(AtomicBool::new(false));
        let (working, max_working) = (working.clone(), max_working.clone());
        let ready = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(run_as_leader(
            client(store.clone(), cut.clone()),
            config(name),
            ready.clone(),
            CancellationToken::new(),
            move |_stop| async move {
                let now = working.fetch_add(1, Ordering::SeqCst) + 1;
                max_working.fetch_max(now, Ordering::SeqCst);
                // Reconcile forever; dropped when leadership is lost.
                struct Done(Arc<AtomicUsize>);
                impl Drop for Done {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                let _done = Done(working);
                std::future::pending::<()>().await;
            },
        ));
        replicas.push((name, cut, task, ready));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(
        working.load(Ordering::SeqCst),
        1,
        "exactly one leader works"
    );
    assert!(
        replicas.iter().all(|r| r.3.load(Ordering::Relaxed)),
        "both ready"
    );
    let leader_name = store.lock().unwrap().as_ref().unwrap()["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_owned();
    let (leader, follower): (Vec<_>, Vec<_>) =
        replicas.into_iter().partition(|r| r.0 == leader_name);
    let (leader, follower) = (
        leader.into_iter().next().unwrap(),
        follower.into_iter().next().unwrap(),
    );

    leader.1.store(true, Ordering::Relaxed);
    let result = leader.2.await.unwrap();
    assert!(
        matches!(result, Err(Error::LostLeadership(_))),
        "{result:?}"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let holder = store.lock().unwrap().as_ref().unwrap()["spec"]["holderIdentity"].clone();
    assert_eq!(holder, follower.0, "the follower took over");
    assert_eq!(working.load(Ordering::SeqCst), 1);
    assert_eq!(max_working.load(Ordering::SeqCst), 1, "never two at once");
    follower.2.abort();
}

fn holder(store: &Store) -> Value {
    store.lock().unwrap().as_ref().unwrap()["spec"]["holderIdentity"].clone()
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_the_work_first_and_then_releases_the_lease() {
    let store: Store = Arc::new(Mutex::new(None));
    let shutdown = CancellationToken::new();
    let held_while_draining = Arc::new(Mutex::new(None));
    let task = tokio::spawn(run_as_leader(
        client(store.clone(), Arc::new(AtomicBool::new(false))),
        config("op-a"),
        Arc::new(AtomicBool::new(false)),
        shutdown.clone(),
        {
            let (store, seen) = (store.clone(), held_while_draining.clone());
            move |stop: CancellationToken| async move {
                stop.cancelled().await;
                // A reconcile still finishing: the Lease must stay ours until we return.
                tokio::time::sleep(Duration::from_secs(2)).await;
                *seen.lock().unwrap() = Some(holder(&store));
            }
        },
    ));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(holder(&store), "op-a");
    shutdown.cancel();
    let ended = task.await.unwrap().unwrap();
    assert_eq!(ended, Ended::Released);
    assert_eq!(
        held_while_draining.lock().unwrap().clone(),
        Some(json!("op-a")),
        "released only after the work returned"
    );
    assert_eq!(holder(&store), Value::Null, "holder cleared");
    assert!(
        store.lock().unwrap().as_ref().unwrap()["spec"]["renewTime"].is_string(),
        "renewTime written with the release"
    );
}

#[tokio::test(start_paused = true)]
async fn a_follower_shutting_down_leaves_the_leaders_lease_alone() {
    let store: Store = Arc::new(Mutex::new(None));
    let leader = tokio::spawn(run_as_leader(
        client(store.clone(), Arc::new(AtomicBool::new(false))),
        config("op-a"),
        Arc::new(AtomicBool::new(false)),
        CancellationToken::new(),
        |_stop| std::future::pending::<()>(),
    ));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let shutdown = CancellationToken::new();
    let follower = tokio::spawn(run_as_leader(
        client(store.clone(), Arc::new(AtomicBool::new(false))),
        config("op-b"),
        Arc::new(AtomicBool::new(false)),
        shutdown.clone(),
        |_stop| async { panic!("the follower never works") },
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    shutdown.cancel();
    assert_eq!(follower.await.unwrap().unwrap(), Ended::NeverLed);
    assert_eq!(holder(&store), "op-a");
    leader.abort();
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_lost_the_lease_does_not_release_it() {
    let store: Store = Arc::new(Mutex::new(None));
    let cut = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(run_as_leader(
        client(store.clone(), cut.clone()),
        config("op-a"),
        Arc::new(AtomicBool::new(false)),
        CancellationToken::new(),
        |_stop| std::future::pending::<()>(),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    cut.store(true, Ordering::Relaxed);
    let result = task.await.unwrap();
    assert!(
        matches!(result, Err(Error::LostLeadership(_))),
        "{result:?}"
    );
    assert_eq!(holder(&store), "op-a", "no write after losing the lease");
}
