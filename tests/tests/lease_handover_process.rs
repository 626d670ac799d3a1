//! Two real collector processes on one shard Lease (the HTTPS fake of the `coordination.k8s.io/v1`
//! Lease endpoints, reached through a kubeconfig with its CA and a bearer token): warm standby, a SIGKILLed holder
//! is replaced and the hole is a `handover` gap row from its last renewal; a holder frozen past its
//! lease (SIGSTOP) and resumed writes nothing, and counts what it dropped.
#![forbid(unsafe_code)]

use marketprism_model::{DataType, Event, GapCause, Payload};
use marketprism_pipeline::store::parquet::read_file;
use marketprism_tests::kube_fake::FakeApiServer;
use marketprism_tests::process::collector_bin;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const LEASE: &str = "shard-0";
const NAMESPACE: &str = "markets";

/// The HTTPS fake of the Lease API (kubeconfig with CA and bearer token), shared with the other tests.
type Store = Arc<FakeApiServer>;

async fn fake_api(dir: &Path) -> Store {
    let api = FakeApiServer::start(dir).await;
    api.put_lease(NAMESPACE, LEASE, json!({"leaseDurationSeconds": 3}));
    Arc::new(api)
}

fn holder(store: &Store) -> Option<String> {
    store.holder(NAMESPACE, LEASE)
}

/// `spec.renewTime` in UTC ms.
fn renew_ms(store: &Store) -> i64 {
    let lease: k8s_openapi::api::coordination::v1::Lease =
        serde_json::from_value(store.lease(NAMESPACE, LEASE).unwrap()).unwrap();
    marketprism_pipeline::lease::takeover_of(&lease)
        .unwrap()
        .previous_renew_ms
}

async fn wait_for_holder(store: &Store, who: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while holder(store).as_deref() != Some(who) {
        assert!(
            Instant::now() < deadline,
            "{who} never held the Lease: {:?}",
            holder(store)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Pod {
    child: Child,
    dir: PathBuf,
}

fn start(dir: &Path, kubeconfig: &Path, name: &str, flush_interval_ms: u64) -> Pod {
    let data = dir.join(name);
    let config = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &config,
        format!(
            "collector:\n  instance_id: {name}\n  synthetic: {{seed: 5, rate_per_s: 500}}\n\
             outputs:\n  parquet: {{dir: {}, flush_interval_ms: {flush_interval_ms}}}\n\
             lease: {{name: {LEASE}, namespace: {NAMESPACE}, duration_s: 3, holder: {name}}}\n\
             http:\n  listen: 127.0.0.1:0\n",
            data.display()
        ),
    )
    .unwrap();
    let child = Command::new(collector_bin())
        .args(["run", "--config"])
        .arg(&config)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the collector");
    Pod { child, dir: data }
}

fn signal(pod: &Pod, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pod.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig}");
}

/// SIGTERM, wait, and the run summary it printed.
fn stop(mut pod: Pod) -> (Value, PathBuf) {
    signal(&pod, "-TERM");
    let mut out = String::new();
    pod.child
        .stdout
        .take()
        .unwrap()
        .read_to_string_sync(&mut out);
    let _ = pod.child.wait();
    let summary = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or_else(|| panic!("no run summary: {out}"));
    (summary, pod.dir)
}

trait ReadAll {
    fn read_to_string_sync(self, out: &mut String);
}

impl ReadAll for std::process::ChildStdout {
    fn read_to_string_sync(mut self, out: &mut String) {
        use std::io::Read;
        let _ = self.read_to_string(out);
    }
}

/// Every `.parquet` file under `dir` with its modification time.
fn files(dir: &Path) -> Vec<(PathBuf, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push((path, entry.metadata().unwrap().modified().unwrap()));
            }
        }
    }
    out
}

fn events(dir: &Path) -> Vec<Event> {
    let mut out = Vec::new();
    for (path, _) in files(dir) {
        let dt = path
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("data_type="))
            .and_then(DataType::parse)
            .unwrap();
        out.extend(read_file(&path, dt).unwrap().to_events().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_is_replaced_by_the_warm_standby_and_the_hole_is_a_handover_gap() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fake_api(tmp.path()).await;
    let kube = store.kubeconfig.clone();
    let mut a = start(tmp.path(), &kube, "pod-a", 500);
    wait_for_holder(&store, "pod-a", Duration::from_secs(30)).await;
    let b = start(tmp.path(), &kube, "pod-b", 500);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(holder(&store).as_deref(), Some("pod-a"), "b stands by");

    a.child.kill().unwrap();
    let _ = a.child.wait();
    let last_renew = renew_ms(&store);
    let killed = Instant::now();
    wait_for_holder(&store, "pod-b", Duration::from_secs(15)).await;
    let took = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (summary, b_dir) = stop(b);
    eprintln!("takeover after SIGKILL: {took:?}; standby summary: {summary}");

    assert!(
        summary["fenced"].as_u64().unwrap() > 0,
        "warm: b's sources ran while standing by: {summary}"
    );
    let written = events(&b_dir);
    let data: Vec<&Event> = written
        .iter()
        .filter(|e| e.data_type() != DataType::Gaps)
        .collect();
    assert!(!data.is_empty(), "b published after the takeover");
    // Trades b received while a held the Lease stay fenced (the handover gap covers them).
    let first = (data.iter())
        .filter(|e| e.data_type() == DataType::Trades)
        .map(|e| e.recv_ts_ms)
        .min()
        .expect("b published trades");
    assert!(
        first > last_renew,
        "b forwarded no trade fenced while a held the Lease: {first} <= {last_renew}"
    );
    // Polled and state-like rows fenced while standing by are published late, never early.
    let renewed = SystemTime::UNIX_EPOCH + Duration::from_millis(last_renew as u64);
    for (path, written) in files(&b_dir) {
        assert!(
            written >= renewed,
            "b wrote {path:?} while a held the Lease"
        );
    }
    let handovers: Vec<(&Event, DataType, i64)> = written
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Gap(g) if g.cause == GapCause::Handover => Some((e, g.data_type, g.start_ms)),
            _ => None,
        })
        .collect();
    assert!(!handovers.is_empty(), "the hole is recorded");
    let mut keys = BTreeSet::new();
    for (e, data_type, start_ms) in &handovers {
        assert_eq!(
            *start_ms, last_renew,
            "from the deposed holder's last renewal"
        );
        let key = (*data_type, e.exchange, e.market_type, e.symbol.clone());
        assert!(
            keys.insert(key.clone()),
            "one gap per instrument and type: {key:?}"
        );
        assert!(
            data.iter()
                .any(|d| (d.data_type(), d.exchange, d.market_type, d.symbol.clone()) == key),
            "a gap for an instrument b published: {key:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_frozen_past_its_lease_writes_nothing_when_it_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let store = fake_api(tmp.path()).await;
    let kube = store.kubeconfig.clone();
    // A long flush interval: a's rows sit in its buffer when it is frozen.
    let a = start(tmp.path(), &kube, "pod-a", 2_000);
    wait_for_holder(&store, "pod-a", Duration::from_secs(30)).await;
    let b = start(tmp.path(), &kube, "pod-b", 500);
    tokio::time::sleep(Duration::from_millis(2_900)).await;
    signal(&a, "-STOP");
    wait_for_holder(&store, "pod-b", Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let resumed = SystemTime::now();
    signal(&a, "-CONT");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (a_summary, a_dir) = stop(a);
    let (_, b_dir) = stop(b);
    eprintln!("resumed holder: {a_summary}");

    let late: Vec<_> = files(&a_dir)
        .into_iter()
        .filter(|(_, t)| *t >= resumed)
        .collect();
    assert!(
        late.is_empty(),
        "a deposed holder wrote after resuming: {late:?}"
    );
    let fenced = a_summary["outputs"]["parquet"]["rows_fenced"]
        .as_u64()
        .unwrap();
    assert!(
        fenced > 0,
        "its buffered rows were dropped and counted: {a_summary}"
    );
    assert!(!events(&b_dir).is_empty(), "b took over and wrote");
}
