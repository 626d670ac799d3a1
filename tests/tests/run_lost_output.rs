//! A run whose only output took nothing must not end well: the release shape of `run` (the real
//! binary) with NATS unreachable exits non-zero and names the drop in its summary, even though
//! every stream delivered to the collector. (Found by trying it as a user: it exited 0.)

use marketprism_tests::process::collector_bin;
use std::process::{Command, Stdio};

#[test]
fn a_run_whose_nats_output_dropped_events_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.yaml");
    // Port 1: nothing listens; the publisher buffers, then drops at the shutdown deadline.
    std::fs::write(
        &config,
        "collector:\n  duration_s: 3\n  synthetic: {seed: 3, rate_per_s: 200}\n\
         outputs:\n  nats: {url: 'nats://127.0.0.1:1', drain_timeout_ms: 500}\n\
         http:\n  listen: 127.0.0.1:0\n",
    )
    .unwrap();
    let out = Command::new(collector_bin())
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit {:?}\n{stderr}", out.status);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let dropped = summary["outputs"]["nats"]["dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{summary}");
    let problems = summary["problems"].to_string();
    assert!(
        problems.contains(&format!("output nats: {dropped} events dropped")),
        "{problems}"
    );
}
