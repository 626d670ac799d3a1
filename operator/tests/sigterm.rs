//! The real `marketprism-operator` process, SIGTERM, and the leader Lease: released within about
//! a second on every run, only after the controller stopped, with a shutdown line in the log.
//!
//! The API server is a small local fake (plain HTTP): the `coordination.k8s.io/v1` Lease endpoints
//! with `resourceVersion` conflicts as the apiserver does them, empty lists for the controller's
//! initial lists, and watches held open without events.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const NAMESPACE: &str = "ops";
const LEASE: &str = "marketprism-operator";
const RUNS: usize = 10;
/// The goal is "about a second"; this allows for a loaded 2-core CI machine.
const RELEASE_WITHIN: Duration = Duration::from_millis(1500);

#[derive(Default)]
struct Fake {
    lease: Option<Value>,
    version: u64,
    /// (holder that was cleared, when) for every write that emptied the holder.
    releases: Vec<(String, Instant)>,
    /// Watch requests served so far, by path.
    watches: Vec<String>,
    /// Lease writes (method, holder written) in order.
    writes: Vec<(Method, Option<String>)>,
}

type Shared = Arc<Mutex<Fake>>;

fn status(code: StatusCode, reason: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "code": code.as_u16(), "reason": reason, "message": reason});
    (code, axum::Json(body)).into_response()
}

fn holder_of(lease: &Value) -> Option<String> {
    lease["spec"]["holderIdentity"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
}

async fn handle(State(fake): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    let lease_path = format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases");
    let one_lease = format!("{lease_path}/{LEASE}");
    if method == Method::GET
        && query
            .split('&')
            .any(|q| q == "watch=true" || q == "watch=1")
    {
        fake.lock().unwrap().watches.push(path);
        // Held open: no events, no end (the controller idles on it).
        return Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>())
            .into_response();
    }
    let mut f = fake.lock().unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if path == one_lease && method == Method::GET {
        return match &f.lease {
            Some(l) => axum::Json(l.clone()).into_response(),
            None => status(StatusCode::NOT_FOUND, "NotFound"),
        };
    }
    let creating = path == lease_path && method == Method::POST;
    let replacing = path == one_lease && method == Method::PUT;
    if creating || replacing {
        if creating && f.lease.is_some() {
            return status(StatusCode::CONFLICT, "AlreadyExists");
        }
        let current = f
            .lease
            .as_ref()
            .map(|l| l["metadata"]["resourceVersion"].clone());
        if replacing && current.as_ref() != Some(&body["metadata"]["resourceVersion"]) {
            return status(StatusCode::CONFLICT, "Conflict");
        }
        f.version += 1;
        let mut stored = body;
        stored["metadata"]["resourceVersion"] = f.version.to_string().into();
        let before = f.lease.as_ref().and_then(holder_of);
        let after = holder_of(&stored);
        if let (Some(was), None) = (&before, &after) {
            let entry = (was.clone(), Instant::now());
            f.releases.push(entry);
        }
        f.writes.push((method, after));
        f.lease = Some(stored.clone());
        return (StatusCode::OK, axum::Json(stored)).into_response();
    }
    if method == Method::GET {
        return axum::Json(json!({"apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": "1"}, "items": []}))
        .into_response();
    }
    status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed")
}

async fn start_fake() -> (Shared, String) {
    let fake: Shared = Arc::default();
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}"))
}

fn kubeconfig(dir: &tempfile::TempDir, server: &str) -> std::path::PathBuf {
    let path = dir.path().join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {server}\n\
         users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
         current-context: fake\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn_operator(kubeconfig: &std::path::Path, identity: &str) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_marketprism-operator"))
        .arg("run")
        .env_clear()
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", identity)
        .env("POD_NAMESPACE", NAMESPACE)
        .env("MARKETPRISM_OPERATOR_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the operator binary starts")
}

/// Poll `check` every 10 ms until it is true or `limit` passes.
async fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}

fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_leader_lease_within_a_second_every_time() {
    let (fake, server) = start_fake().await;
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(&dir, &server);
    let mut handover = Vec::new();
    for run in 0..RUNS {
        let identity = format!("op-{run}");
        let watches_before = fake.lock().unwrap().watches.len();
        let mut child = spawn_operator(&config, &identity);
        let leading = wait_for(Duration::from_secs(20), || {
            let f = fake.lock().unwrap();
            // Leader, and the controller has opened both its watches (sets and Deployments).
            f.lease.as_ref().and_then(holder_of).as_deref() == Some(identity.as_str())
                && f.watches.len() >= watches_before + 2
        })
        .await;
        if !leading {
            let _ = child.start_kill();
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "run {run}: {identity} never led with a running controller; its output:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Vary where in the renewal cycle the signal lands.
        tokio::time::sleep(Duration::from_millis(50 * run as u64)).await;
        let sent = Instant::now();
        sigterm(&child);
        let released = wait_for(Duration::from_secs(5), || {
            fake.lock()
                .unwrap()
                .releases
                .iter()
                .any(|(h, at)| *h == identity && *at >= sent)
        })
        .await;
        let took = sent.elapsed();
        assert!(released, "run {run}: the Lease was not released within 5 s");
        let exit = tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .unwrap_or_else(|_| panic!("run {run}: still running 5 s after SIGTERM"))
            .unwrap();
        assert!(exit.success(), "run {run}: exit {exit:?}");
        let mut log = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut log)
            .await
            .unwrap();
        for line in [
            "shutdown requested",
            "controller stopped",
            "released the leader lease",
            "\"shut down\"",
        ] {
            assert!(
                log.contains(line),
                "run {run}: no {line:?} in the log:\n{log}"
            );
        }
        let at = |line: &str| log.find(line).unwrap();
        assert!(
            at("shutdown requested") < at("controller stopped")
                && at("controller stopped") < at("released the leader lease")
                && at("released the leader lease") < at("\"shut down\""),
            "run {run}: stop reconciling, then release, then exit:\n{log}"
        );
        handover.push(took);
    }
    let slowest = handover.iter().max().unwrap();
    assert!(
        *slowest <= RELEASE_WITHIN,
        "release took up to {slowest:?} after SIGTERM: {handover:?}"
    );
    // Each run claimed a free Lease at once (nothing waited out a previous holder's duration).
    let f = fake.lock().unwrap();
    let claims = f
        .writes
        .iter()
        .filter(|(m, h)| *m == Method::PUT && h.is_some());
    assert!(claims.count() >= RUNS, "{:?}", f.writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_receiving_sigterm_exits_and_leaves_the_lease_alone() {
    let (fake, server) = start_fake().await;
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(&dir, &server);
    let mut leader = spawn_operator(&config, "op-leader");
    assert!(
        wait_for(Duration::from_secs(20), || {
            fake.lock()
                .unwrap()
                .lease
                .as_ref()
                .and_then(holder_of)
                .as_deref()
                == Some("op-leader")
        })
        .await
    );
    let mut follower = spawn_operator(&config, "op-follower");
    // Give the follower time to read the Lease and start waiting.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sigterm(&follower);
    let exit = tokio::time::timeout(Duration::from_secs(5), follower.wait())
        .await
        .expect("the follower exits promptly")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    {
        let f = fake.lock().unwrap();
        assert_eq!(
            holder_of(f.lease.as_ref().unwrap()).as_deref(),
            Some("op-leader")
        );
        assert!(f.releases.is_empty(), "{:?}", f.releases);
    }
    sigterm(&leader);
    let _ = tokio::time::timeout(Duration::from_secs(5), leader.wait()).await;
}
