//! `job replay` of a dataset written by the collector's real Parquet output: to stdout (NDJSON in
//! exchange-time order across types and days, exactly the stored events, filters), and to a real
//! JetStream (the live subjects and message ids, a second replay adds nothing, kill -9 and a resume
//! leave exactly the events, `--speed` paces).

use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Event};
use marketprism_pipeline::store::Rows;
use marketprism_tests::jobs::{job_command, progress, report, run_job, write_dataset};
use marketprism_tests::servers::{nats_url, unique_name};
use std::path::Path;
use std::time::{Duration, Instant};

/// Exchange time of the first event: 10 s before a UTC midnight, so the data spans two days.
const MIDNIGHT: i64 = 1_767_225_600_000 + 40 * 86_400_000;

/// `n` synthetic events of every type, 10 ms apart from 10 s before `MIDNIGHT`.
fn events(seed: u64, n: usize) -> Vec<Event> {
    let mut v = synthetic_events(seed, n);
    let shift = MIDNIGHT - 10_000 - v[0].ts_ms;
    for e in &mut v {
        e.ts_ms += shift;
        e.recv_ts_ms += shift;
    }
    v
}

/// Written in an interleaved order, so files overlap in time and hold unsorted rows.
async fn dataset(dir: &Path, events: &[Event]) {
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|e| (e.ts_ms / 10 % 7, e.ts_ms));
    write_dataset(dir, order.into_iter().cloned().collect(), 25).await;
}

fn sorted(mut v: Vec<Event>) -> Vec<Event> {
    v.sort_by_cached_key(Event::msg_id);
    v
}

/// `event` as the stores give it back: through the table's row type (decimals lose trailing zeros:
/// `1.46044260` is read as `1.4604426`, the same value) and through JSON (serde_json's default parser
/// may be 1 ULP off for some f64, on both sides alike).
fn stored(event: &Event) -> Event {
    let rows = Rows::from_events(event.data_type(), std::slice::from_ref(event)).unwrap();
    let back = rows.to_events().unwrap().remove(0);
    serde_json::from_str(&serde_json::to_string(&back).unwrap()).unwrap()
}

/// `got` and `want` hold the same events (as multisets); on a difference, names the first one only.
fn assert_same(got: Vec<Event>, want: Vec<Event>, what: &str) {
    let (got, want) = (sorted(got), sorted(want.iter().map(stored).collect()));
    assert_eq!(got.len(), want.len(), "{what}: number of events");
    if let Some((g, w)) = got.iter().zip(&want).find(|(g, w)| g != w) {
        panic!("{what}: first difference:\n got  {g:?}\n want {w:?}");
    }
}

fn replay_stdout(data: &Path, extra: &[&str]) -> Vec<Event> {
    let mut args = vec![
        "replay",
        "--parquet",
        data.to_str().unwrap(),
        "--stdout",
        "--as-fast-as-possible",
    ];
    args.extend_from_slice(extra);
    let out = run_job(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report(&out.stderr)["failed"], 0);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn replay_to_stdout_is_in_exchange_time_order_and_exactly_the_stored_events() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let all = events(21, 2_600);
    dataset(&data, &all).await;
    let (from, to) = (
        all[0].ts_ms.to_string(),
        (all.last().unwrap().ts_ms + 1).to_string(),
    );

    let got = replay_stdout(&data, &["--from", &from, "--to", &to]);
    assert!(
        got.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms),
        "exchange-time order across types and days"
    );
    let types: std::collections::BTreeSet<DataType> = got.iter().map(Event::data_type).collect();
    assert_eq!(types.len(), DataType::ALL.len());
    assert_same(got, all.clone(), "exactly the stored events");

    // A range inside: [from, to) of exchange time, across the midnight.
    let (lo, hi) = (MIDNIGHT - 2_000, MIDNIGHT + 3_000);
    let got = replay_stdout(&data, &["--from", &lo.to_string(), "--to", &hi.to_string()]);
    let want: Vec<Event> = all
        .iter()
        .filter(|e| e.ts_ms >= lo && e.ts_ms < hi)
        .cloned()
        .collect();
    assert_eq!(got.len(), 500);
    assert_same(got, want, "a range inside");

    // Filters: data type, exchange, symbol (RFC 3339 times too).
    let pick = all
        .iter()
        .find(|e| e.data_type() == DataType::Trades)
        .unwrap();
    let got = replay_stdout(
        &data,
        &[
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2027-01-01T00:00:00Z",
            "--data-type",
            "trades,gaps",
            "--exchange",
            pick.exchange.as_str(),
            "--symbol",
            pick.symbol.as_str(),
        ],
    );
    let want: Vec<Event> = all
        .iter()
        .filter(|e| matches!(e.data_type(), DataType::Trades | DataType::Gaps))
        .filter(|e| e.exchange == pick.exchange && e.symbol == pick.symbol)
        .cloned()
        .collect();
    assert!(!want.is_empty());
    assert_same(got, want, "filters");
}

/// A config whose `outputs.nats` has its own subject prefix and streams on `url`.
fn nats_config(dir: &Path, url: &str, name: &str) -> std::path::PathBuf {
    let upper = name.to_ascii_uppercase();
    let stream = |s: &str| {
        format!(
            "    {s}:\n      name: {upper}_{s}\n      max_bytes: 268435456\n      max_age_s: 3600\n      duplicate_window_s: 600\n"
        )
    };
    let yaml = format!(
        "outputs:\n  nats:\n    url: {url}\n    subject_prefix: {name}\n{}{}",
        stream("market_data_stream"),
        stream("orderbook_stream")
    );
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    path
}

struct Streams {
    js: async_nats::jetstream::Context,
    names: [String; 2],
}

impl Streams {
    async fn new(url: &str, name: &str) -> Streams {
        let client = async_nats::connect(url).await.unwrap();
        let upper = name.to_ascii_uppercase();
        Streams {
            js: async_nats::jetstream::new(client),
            names: [
                format!("{upper}_market_data_stream"),
                format!("{upper}_orderbook_stream"),
            ],
        }
    }

    async fn count(&self) -> u64 {
        let mut n = 0;
        for s in &self.names {
            n += self
                .js
                .get_stream(s)
                .await
                .unwrap()
                .info()
                .await
                .unwrap()
                .state
                .messages;
        }
        n
    }

    /// Every message as (subject, Nats-Msg-Id, event).
    async fn messages(&self) -> Vec<(String, String, Event)> {
        let mut out = Vec::new();
        for s in &self.names {
            let stream = self.js.get_stream(s).await.unwrap();
            let last = stream.get_info().await.unwrap().state.last_sequence;
            for seq in 1..=last {
                let m = stream.get_raw_message(seq).await.unwrap();
                let id = m.headers.get("Nats-Msg-Id").unwrap().as_str().to_owned();
                out.push((
                    m.subject.to_string(),
                    id,
                    serde_json::from_slice(&m.payload).unwrap(),
                ));
            }
        }
        out
    }

    async fn delete(&self) {
        for s in &self.names {
            let _ = self.js.delete_stream(s).await;
        }
    }
}

#[tokio::test]
async fn replay_to_nats_uses_the_live_subjects_and_ids_and_a_second_replay_adds_nothing() {
    let Some(url) = nats_url("replay_to_nats_uses_the_live_subjects_and_ids") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let all = events(22, 650);
    dataset(&data, &all).await;
    let name = unique_name("jobs_replay");
    let config = nats_config(dir.path(), &url, &name);
    let (from, to) = (
        (MIDNIGHT - 86_400_000).to_string(),
        (MIDNIGHT + 86_400_000).to_string(),
    );
    let replay = |wd: &str| {
        let wd = dir.path().join(wd);
        let args = [
            "replay",
            "--parquet",
            data.to_str().unwrap(),
            "--from",
            &from,
            "--to",
            &to,
            "--nats",
            config.to_str().unwrap(),
            "--as-fast-as-possible",
            "--work-dir",
            wd.to_str().unwrap(),
        ];
        let out = run_job(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        report(&out.stdout)
    };
    let r = replay("first");
    assert_eq!(r["details"]["events"], 650);
    assert_eq!(r["details"]["duplicates"], 0);
    let streams = Streams::new(&url, &name).await;
    let mut got = streams.messages().await;
    assert_eq!(got.len(), 650);
    got.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    // Replayed ids are the ones the live publisher gave the original events (a liquidation's id holds
    // its decimals' values, which survive the stores' dropping of trailing zeros).
    let live: std::collections::BTreeSet<String> = all.iter().map(Event::msg_id).collect();
    let replayed: std::collections::BTreeSet<String> = got.iter().map(|g| g.1.clone()).collect();
    assert_eq!(replayed, live, "replayed ids are the live ids");
    let want = sorted(all.iter().map(stored).collect());
    for ((subject, id, event), e) in got.iter().zip(&want) {
        assert_eq!(subject, &format!("{name}.{}", e.subject()));
        assert_eq!(id, &e.msg_id(), "the live publisher's Nats-Msg-Id");
        assert!(&stored(event) == e, "payload: {event:?} != {e:?}");
    }

    // A second replay (a fresh work directory: every partition again) is dropped by JetStream.
    let r = replay("second");
    assert_eq!(r["details"]["duplicates"], 650);
    assert_eq!(streams.count().await, 650);
    streams.delete().await;
}

#[tokio::test]
async fn replay_to_nats_killed_with_sigkill_resumes_to_exactly_the_events_and_speed_paces() {
    let Some(url) = nats_url("replay_to_nats_killed_with_sigkill_resumes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 10 s before midnight and 16 s after it.
    let all = events(23, 2_600);
    dataset(&data, &all).await;
    let name = unique_name("jobs_replay_kill");
    let config = nats_config(dir.path(), &url, &name);
    let wd = dir.path().join("work");
    let (from, to) = (
        (MIDNIGHT - 86_400_000).to_string(),
        (MIDNIGHT + 86_400_000).to_string(),
    );
    let args = |extra: &[&'static str]| {
        let mut a: Vec<String> = [
            "replay",
            "--parquet",
            data.to_str().unwrap(),
            "--from",
            &from,
            "--to",
            &to,
            "--nats",
            config.to_str().unwrap(),
            "--work-dir",
            wd.to_str().unwrap(),
            "--batch-size",
            "1",
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let paced = args(&["--speed", "5"]);
    let paced: Vec<&str> = paced.iter().map(String::as_str).collect();
    let mut child = job_command(&paced)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first day (10 s at speed 5: ~2 s) is acked and recorded; kill during the second.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the first day never finished");
        let done = std::fs::read_to_string(wd.join("progress.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|p| p["done"].as_u64())
            .unwrap_or(0);
        if done >= DataType::ALL.len() as u64 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    let streams = Streams::new(&url, &name).await;
    let at_kill = streams.count().await;
    assert!(
        (1_000..2_600).contains(&at_kill),
        "killed in the second day: {at_kill} published"
    );
    assert!(progress(&wd)["done"].as_u64().unwrap() < 2 * DataType::ALL.len() as u64);

    let fast = args(&["--as-fast-as-possible"]);
    let fast: Vec<&str> = fast.iter().map(String::as_str).collect();
    let out = run_job(&fast);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out.stdout);
    assert!(r["done_before"].as_u64().unwrap() >= DataType::ALL.len() as u64);
    assert!(
        r["details"]["events"].as_u64().unwrap() < 2_600,
        "the first day was skipped"
    );
    assert!(
        r["details"]["duplicates"].as_u64().unwrap() > 0,
        "the redone part was deduplicated"
    );
    assert_eq!(
        streams.count().await,
        2_600,
        "exactly the events, none twice"
    );
    let p = progress(&wd);
    assert_eq!(p["done"], p["total"]);
    streams.delete().await;

    // Pacing: a 2 s span of exchange time at --speed 2 takes at least ~1 s (a lower bound only).
    let name = unique_name("jobs_replay_pace");
    let config = nats_config(dir.path(), &url, &name);
    let (lo, hi) = (
        (MIDNIGHT + 1_000).to_string(),
        (MIDNIGHT + 3_000).to_string(),
    );
    let wd = dir.path().join("pace");
    let started = Instant::now();
    let out = run_job(&[
        "replay",
        "--parquet",
        data.to_str().unwrap(),
        "--from",
        &lo,
        "--to",
        &hi,
        "--nats",
        config.to_str().unwrap(),
        "--speed",
        "2",
        "--work-dir",
        wd.to_str().unwrap(),
    ]);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(report(&out.stdout)["details"]["events"], 200);
    assert!(
        took >= Duration::from_millis(950),
        "2 s at speed 2 took {took:?}"
    );
    Streams::new(&url, &name).await.delete().await;
}

#[tokio::test]
async fn replay_from_clickhouse_to_stdout_matches_the_parquet_replay() {
    let Some(url) = marketprism_tests::servers::clickhouse_url("replay_from_clickhouse") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let all = events(24, 1_300);
    dataset(&data, &all).await;
    let name = unique_name("jobs_replay_ch");
    let config = marketprism_tests::jobs::clickhouse_config(dir.path(), &url, &name);
    let out = run_job(&[
        "import",
        "--parquet",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--work-dir",
        dir.path().join("import").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (from, to) = (
        (MIDNIGHT - 86_400_000).to_string(),
        (MIDNIGHT + 86_400_000).to_string(),
    );
    let args = [
        "replay",
        "--clickhouse",
        "--config",
        config.to_str().unwrap(),
        "--from",
        &from,
        "--to",
        &to,
        "--stdout",
        "--as-fast-as-possible",
    ];
    let out = run_job(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Event> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        got.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms),
        "exchange-time order"
    );
    assert_same(
        got,
        all.clone(),
        "ClickHouse holds exactly the stored events",
    );
    let pick = &all[1];
    let out = run_job(
        &[
            &args[..],
            &[
                "--symbol",
                pick.symbol.as_str(),
                "--exchange",
                pick.exchange.as_str(),
            ],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = String::from_utf8(out.stdout).unwrap().lines().count();
    let want = all
        .iter()
        .filter(|e| e.symbol == pick.symbol && e.exchange == pick.exchange)
        .count();
    assert_eq!(n, want, "filters in the query");
    let ch = marketprism_pipeline::store::clickhouse::clickhouse_client(
        &marketprism_config::ClickHouseConfig {
            url: url.clone(),
            ..Default::default()
        },
    );
    marketprism_tests::jobs::drop_databases(&ch, &name).await;
}

#[tokio::test]
async fn sigterm_stops_a_paced_replay_at_once_and_the_rerun_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let all = events(25, 1_300); // 13 s of exchange time, 10 before midnight
    dataset(&data, &all).await;
    let wd = dir.path().join("work");
    let (from, to) = (
        (MIDNIGHT - 86_400_000).to_string(),
        (MIDNIGHT + 86_400_000).to_string(),
    );
    let base = [
        "replay",
        "--parquet",
        data.to_str().unwrap(),
        "--from",
        &from,
        "--to",
        &to,
        "--stdout",
        "--work-dir",
        wd.to_str().unwrap(),
    ];
    let child = job_command(&[&base[..], &["--speed", "1"]].concat())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_500));
    let stopped = Instant::now();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "stopped in the middle of the pacing"
    );
    assert_eq!(out.status.code(), Some(130));
    let first = String::from_utf8(out.stdout).unwrap().lines().count();
    assert!(first > 0 && first < 1_300, "{first} events before the stop");

    let out = run_job(&[&base[..], &["--as-fast-as-possible"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out.stderr);
    assert_eq!(r["done"], r["total"]);
    assert_eq!(
        r["details"]["events"], 1_300,
        "the unfinished day is redone whole"
    );
}
