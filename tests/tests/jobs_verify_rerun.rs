//! Rerunning `job verify` in the same work directory, through the real binary: a completed run
//! starts afresh (its files in `previous/`) and checks the present again; an unfinished one
//! (failed units) resumes; `--last` pins its window in the work directory until a run completes;
//! `--summary FILE` is written on success, on failure and on an error before the run.

use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Event};
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use marketprism_pipeline::store::parquet::utc_date;
use marketprism_tests::jobs::{
    clickhouse_config, drop_databases, exec, insert_events, job_command, report, run_job,
    sink_config, wait_mutations,
};
use marketprism_tests::servers::{clickhouse_url, unique_name};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(text.len() <= 4096, "{}", text.len());
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn a_completed_verify_rerun_checks_again_and_keeps_the_old_run_in_previous() {
    let test = "a_completed_verify_rerun_checks_again_and_keeps_the_old_run_in_previous";
    let Some(url) = clickhouse_url(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("jobs_rerun");
    let config = clickhouse_config(dir.path(), &url, &name);
    let ch = clickhouse_client(&sink_config(&url, ""));
    let events = synthetic_events(51, 650);
    insert_events(&url, &name, &events).await;
    let wd = dir.path().join("work");
    let summary = dir.path().join("summary.json");
    let args = [
        "verify",
        "--config",
        s(&config),
        "--work-dir",
        s(&wd),
        "--summary",
        s(&summary),
    ];
    let out = run_job(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = report(&out.stdout);
    let sum = json(&summary);
    assert_eq!(sum["job"], "verify");
    assert_eq!(sum["succeeded"], true);
    assert_eq!(
        (sum["total"].clone(), sum["done"].clone()),
        (first["total"].clone(), first["total"].clone())
    );
    assert_eq!(sum["discrepancies"], 0);
    assert_eq!(sum["from_ms"], Value::Null);

    // The present changes: rows of one unit deleted from cold.
    let victim = events
        .iter()
        .find(|e| e.data_type() == DataType::Trades)
        .unwrap()
        .clone();
    let cold = format!("{name}_cold");
    exec(
        &ch,
        &format!(
            "ALTER TABLE {cold}.trades DELETE WHERE exchange = '{}' AND symbol = '{}'",
            victim.exchange,
            victim.symbol.as_str()
        ),
    )
    .await;
    wait_mutations(&ch, &cold).await;
    let out = run_job(&args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "checked again: {}",
        stderr(&out)
    );
    let r = report(&out.stdout);
    assert_eq!(r["done_before"], 0, "started afresh");
    assert_eq!(r["attempted"], first["total"]);
    let unit = format!(
        "trades/{}/{}/{}",
        utc_date(victim.ts_ms),
        victim.exchange,
        victim.symbol.as_str()
    );
    assert!(stderr(&out).contains(&unit), "{}", stderr(&out));
    assert!(wd.join("previous/results.jsonl").exists());
    assert!(wd.join("previous/progress.json").exists());
    let sum = json(&summary);
    assert_eq!(sum["succeeded"], false);
    assert!(sum["discrepancies"].as_u64().unwrap() > 0);
    let problems: Vec<&str> = sum["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with(&unit) && p.contains("missing in cold")),
        "{problems:?}"
    );

    // --retry-failed never starts afresh: nothing failed, nothing is attempted.
    let out = run_job(&[&args[..], &["--retry-failed"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let again = report(&out.stdout);
    assert_eq!(
        (again["attempted"].as_u64(), again["done_before"].clone()),
        (Some(0), first["total"].clone())
    );

    // An error before the run: the summary says so, naming it.
    let out = run_job(&[
        "verify",
        "--config",
        "/nonexistent.yaml",
        "--summary",
        s(&summary),
    ]);
    assert!(!out.status.success());
    let sum = json(&summary);
    assert_eq!(
        (sum["succeeded"].clone(), sum["total"].clone()),
        (Value::Bool(false), Value::from(0))
    );
    assert!(
        sum["first"][0]
            .as_str()
            .unwrap()
            .contains("/nonexistent.yaml"),
        "{sum}"
    );
    drop_databases(&ch, &name).await;
}

/// `events` moved to end `age_ms` before now, one per second.
fn recent(events: Vec<Event>, age_ms: i64) -> Vec<Event> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let n = events.len() as i64;
    events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.ts_ms = now - age_ms - (n - i as i64) * 1_000;
            e.recv_ts_ms = e.ts_ms + 5;
            e
        })
        .collect()
}

#[tokio::test]
async fn the_last_window_is_pinned_until_a_run_completes() {
    let Some(url) = clickhouse_url("the_last_window_is_pinned_until_a_run_completes") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("jobs_last");
    let config = clickhouse_config(dir.path(), &url, &name);
    let ch = clickhouse_client(&sink_config(&url, ""));
    let events = recent(synthetic_events(52, 1_300), 2 * 3_600_000);
    assert!(events.len() > 10);
    insert_events(&url, &name, &events).await;
    let cold = format!("{name}_cold");
    // Cold's table gone: its units fail (an unfinished run).
    exec(&ch, &format!("DROP TABLE {cold}.trades_from_hot")).await;
    exec(&ch, &format!("DROP TABLE {cold}.trades")).await;
    let summary = dir.path().join("summary.json");
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--config",
            s(&config),
            "--last",
            "1d",
            "--summary",
            s(&summary),
        ];
        args.extend_from_slice(extra);
        // No --work-dir: the default one, keyed by the literal `--last 1d`.
        job_command(&args).current_dir(dir.path()).output().unwrap()
    };
    let out = verify(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let r = report(&out.stdout);
    let failed = r["failed"].as_u64().unwrap();
    assert!(failed > 0 && r["done"].as_u64().unwrap() > 0, "{r}");
    let wd = dir.path().join(r["work_dir"].as_str().unwrap());
    let pinned = json(&wd.join("window.json"));
    let to = pinned["to_ms"].as_i64().unwrap();
    assert_eq!(to % 60_000, 0, "now floored to the minute");
    assert_eq!(to - pinned["from_ms"].as_i64().unwrap(), 86_400_000);
    let sum = json(&summary);
    assert_eq!(
        (sum["from_ms"].clone(), sum["to_ms"].clone()),
        (pinned["from_ms"].clone(), pinned["to_ms"].clone())
    );
    assert!(sum["failed"].as_u64().unwrap() > 0);
    assert!(sum["first"][0].as_str().unwrap().contains("query"), "{sum}");

    // As if the run had started an hour ago (a pod restarted later): the rerun keeps that window.
    let earlier = serde_json::json!({
        "from_ms": pinned["from_ms"].as_i64().unwrap() - 3_600_000,
        "to_ms": to - 3_600_000,
    });
    std::fs::write(wd.join("window.json"), earlier.to_string()).unwrap();
    let repair = run_job(&[
        "repair",
        "--config",
        s(&config),
        "--work-dir",
        s(&dir.path().join("repair")),
    ]);
    assert!(repair.status.success(), "{}", stderr(&repair));
    let out = verify(&["--retry-failed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out.stdout);
    assert_eq!(
        dir.path().join(r["work_dir"].as_str().unwrap()),
        wd,
        "the same job"
    );
    assert_eq!(
        (r["from_ms"].clone(), r["to_ms"].clone()),
        (earlier["from_ms"].clone(), earlier["to_ms"].clone()),
        "the pinned window"
    );
    assert_eq!(
        r["attempted"], failed,
        "resumed: only the failed units ran: {r}"
    );

    // Complete: the next run takes a new window, the old one is in previous/.
    let out = verify(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out.stdout);
    assert_eq!(r["done_before"], 0, "afresh: {r}");
    assert_eq!(json(&wd.join("previous/window.json")), earlier);
    let now_window = json(&wd.join("window.json"));
    assert!(now_window["to_ms"].as_i64().unwrap() >= to, "{now_window}");
    assert_eq!(r["to_ms"], now_window["to_ms"]);
    drop_databases(&ch, &name).await;
}
