//! The Parquet output in the real binary (`marketprism-collector run` with the synthetic source):
//! SIGTERM flushes everything counted, kill -9 loses at most the last flush interval, and a restart
//! never touches the files of an earlier run.

use marketprism_model::synthetic::{synthetic_event, synthetic_index};
use marketprism_model::{DataType, Event};
use marketprism_pipeline::store::parquet::read_file;
use marketprism_tests::process::collector_bin;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SEED: u64 = 77;
const RATE_PER_S: u64 = 2_000;

fn write_config(dir: &Path, flush_interval_ms: u64) -> PathBuf {
    let path = dir.join("collector.yaml");
    let yaml = format!(
        "collector:\n  synthetic: {{seed: {SEED}, rate_per_s: {RATE_PER_S}}}\n\
         outputs:\n  parquet: {{dir: {data}, flush_interval_ms: {flush_interval_ms}, max_rows: 1000000}}\n\
         http:\n  listen: 127.0.0.1:0\n",
        data = dir.join("data").display()
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

fn start(bin: &Path, config: &Path) -> Child {
    Command::new(bin)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start marketprism-collector run")
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig}");
}

/// Every `.parquet` file under `root`, sorted by path.
fn parquet_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn data_type_of(path: &Path) -> DataType {
    let dir = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    DataType::parse(dir.strip_prefix("data_type=").unwrap()).unwrap()
}

/// All events in the files, by synthetic index; duplicates of an index are a failure.
fn events_by_index(files: &[PathBuf]) -> BTreeMap<u64, Event> {
    let mut out = BTreeMap::new();
    for f in files {
        for e in read_file(f, data_type_of(f)).unwrap().to_events().unwrap() {
            let i = synthetic_index(SEED, &e).expect("a synthetic event");
            assert!(out.insert(i, e).is_none(), "event {i} stored twice");
        }
    }
    out
}

/// The events are exactly synthetic events 0..n (the feed stamps its own `recv_ts_ms`).
fn assert_contiguous_prefix(events: &BTreeMap<u64, Event>) -> u64 {
    let n = events.len() as u64;
    assert!(n > 0, "no events written");
    assert_eq!(
        events.keys().next_back().copied(),
        Some(n - 1),
        "indices have holes"
    );
    for (i, e) in events {
        let mut want = synthetic_event(SEED, *i);
        want.recv_ts_ms = e.recv_ts_ms;
        assert_eq!(*e, want, "event {i}");
    }
    n
}

/// The exit summary: `{"events_in": {...}, "outputs": {"parquet": {...}}, ...}` on the last stdout line.
fn summary(child: Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {}", out.status);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().last().expect("a summary line");
    serde_json::from_str(line).unwrap()
}

fn wait_for_files(root: &Path, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while parquet_files(root).len() < at_least {
        assert!(Instant::now() < deadline, "no Parquet files appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One run stopped by SIGTERM after it produced for a while; returns the summary.
fn run_until_sigterm(bin: &Path, config: &Path, produce_for: Duration) -> serde_json::Value {
    let child = start(bin, config);
    std::thread::sleep(produce_for);
    signal(&child, "-TERM");
    summary(child)
}

#[test]
fn sigterm_flushes_every_counted_event_and_restart_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = collector_bin();
    // A flush interval longer than the run: only the shutdown flush can write these files.
    let config = write_config(tmp.path(), 600_000);
    let data = tmp.path().join("data");

    let first = run_until_sigterm(&bin, &config, Duration::from_millis(1_500));
    let counted: u64 = first["events_in"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(counted > 0, "{first}");
    assert_eq!(
        first["outputs"]["parquet"]["rows_written"].as_u64(),
        Some(counted),
        "{first}"
    );
    let files = parquet_files(&data);
    assert_eq!(assert_contiguous_prefix(&events_by_index(&files)), counted);
    let bytes: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();

    // Restart into the same directory: the same synthetic stream again, in new files.
    let second = run_until_sigterm(&bin, &config, Duration::from_millis(800));
    assert_ne!(first["run_id"], second["run_id"]);
    for (f, b) in files.iter().zip(&bytes) {
        assert_eq!(&std::fs::read(f).unwrap(), b, "{} changed", f.display());
    }
    let new_files: Vec<PathBuf> = parquet_files(&data)
        .into_iter()
        .filter(|f| !files.contains(f))
        .collect();
    assert!(!new_files.is_empty());
    let counted_again = second["outputs"]["parquet"]["rows_written"]
        .as_u64()
        .unwrap();
    assert_eq!(
        assert_contiguous_prefix(&events_by_index(&new_files)),
        counted_again
    );
    let no_temps = walk_names(&data).iter().all(|n| !n.ends_with(".tmp"));
    assert!(no_temps, "temporaries left after clean shutdowns");
}

fn walk_names(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

#[test]
fn kill_9_loses_at_most_the_last_flush_interval() {
    const FLUSH_INTERVAL_MS: i64 = 300;
    // Scheduling slack on a loaded 2-core machine: the bound checked is interval + slack.
    const SLACK_MS: i64 = 2_000;
    let tmp = tempfile::tempdir().unwrap();
    let bin = collector_bin();
    let config = write_config(tmp.path(), FLUSH_INTERVAL_MS as u64);
    let data = tmp.path().join("data");

    let child = start(&bin, &config);
    wait_for_files(&data, 1);
    // Let a few more flushes happen, then kill without warning.
    std::thread::sleep(Duration::from_millis(4 * FLUSH_INTERVAL_MS as u64));
    signal(&child, "-KILL");
    let killed_at_ms = marketprism_model::now_ms();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "killed, not exited");

    let events = events_by_index(&parquet_files(&data));
    let n = assert_contiguous_prefix(&events);
    // The feed stamps recv_ts_ms with the wall clock: the newest stored event shows how much was lost.
    let newest = events.values().map(|e| e.recv_ts_ms).max().unwrap();
    let lost_ms = killed_at_ms - newest;
    assert!(
        lost_ms <= FLUSH_INTERVAL_MS + SLACK_MS,
        "lost the last {lost_ms} ms of events (flush interval {FLUSH_INTERVAL_MS} ms); {n} stored"
    );
}

/// The compaction inside a long `run`: with a 1 s pass, the files of closed hours (synthetic event
/// time lies in the past) become one `compacted-…` file per partition and hour while the run keeps
/// writing, late parts join it at the next pass, and every counted event is in the dataset exactly once.
#[test]
fn a_running_collector_compacts_closed_hours_while_it_writes() {
    let first_ts = synthetic_event(SEED, 0).ts_ms;
    assert!(
        first_ts + 86_400_000 < marketprism_model::now_ms(),
        "the synthetic day of seed {SEED} must lie in the past for its hours to be closed"
    );
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("collector.yaml");
    std::fs::write(
        &config,
        format!(
            "collector:\n  synthetic: {{seed: {SEED}, rate_per_s: {RATE_PER_S}}}\n\
             outputs:\n  parquet: {{dir: {}, flush_interval_ms: 100, max_rows: 1000000, \
             compact: {{enabled: true, interval_s: 1, grace_s: 0}}}}\n\
             http:\n  listen: 127.0.0.1:0\n",
            data.display()
        ),
    )
    .unwrap();
    let run = run_until_sigterm(&collector_bin(), &config, Duration::from_secs(6));
    let counted = run["outputs"]["parquet"]["rows_written"].as_u64().unwrap();
    let files = parquet_files(&data);
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let compacted = names.iter().filter(|n| n.starts_with("compacted-")).count();
    assert!(compacted > 0, "no pass merged anything in 6 s: {names:?}");
    // ~60 flushes per partition were written; the passes left about one file per partition and hour
    // plus the parts written since the last pass.
    let partitions: std::collections::BTreeSet<_> = files
        .iter()
        .map(|f| f.parent().unwrap().to_path_buf())
        .collect();
    assert!(
        files.len() < partitions.len() * 20,
        "{} files in {} partitions: compaction did not keep up",
        files.len(),
        partitions.len()
    );
    assert_eq!(
        assert_contiguous_prefix(&events_by_index(&files)),
        counted,
        "every counted event exactly once"
    );
    assert!(
        walk_names(&data).iter().all(|n| !n.starts_with('.')),
        "no temporary or intent left after a clean shutdown"
    );
}
