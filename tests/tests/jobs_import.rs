//! `job import` against a real ClickHouse: a dataset written by the collector's own Parquet output
//! lands with exactly its rows per table; kill -9 in the middle and a rerun finish with exactly the
//! right rows, skipping the files already done; a damaged file is a failed unit (step `read`, exit
//! non-zero) that `--retry-failed` finishes once the file is fixed.

use marketprism_config::ClickHouseConfig;
use marketprism_model::synthetic::synthetic_events;
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use marketprism_tests::jobs::{
    clickhouse_config, count_all, counts_final, data_files, drop_databases, job_command, progress,
    report, rows_per_table, run_job, write_dataset,
};
use marketprism_tests::servers::{clickhouse_url, unique_name};
use std::time::{Duration, Instant};

fn client(url: &str) -> clickhouse::Client {
    clickhouse_client(&ClickHouseConfig {
        url: url.to_owned(),
        ..ClickHouseConfig::default()
    })
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn import_lands_every_row_of_the_dataset_once() {
    let Some(url) = clickhouse_url("import_lands_every_row_of_the_dataset_once") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let events = synthetic_events(11, 1_300);
    let files = write_dataset(&data, events.clone(), 40).await;
    assert!(files > 13, "several files per table: {files}");
    // A writer's hidden temporary is not data: it must be skipped, not failed.
    let some_dir = data_files(&data)[0].parent().unwrap().to_path_buf();
    std::fs::write(some_dir.join(".part-x-0000000001.parquet.tmp"), b"partial").unwrap();
    let name = unique_name("jobs_import");
    let config = clickhouse_config(dir.path(), &url, &name);
    let wd = dir.path().join("work");
    let args = [
        "import",
        "--parquet",
        s(&data),
        "--config",
        s(&config),
        "--work-dir",
        s(&wd),
    ];
    let out = run_job(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out.stdout);
    assert_eq!(r["total"], files);
    assert_eq!(
        (r["done"].as_u64(), r["failed"].as_u64()),
        (Some(files), Some(0))
    );
    assert_eq!(r["details"]["rows_inserted"], events.len() as u64);
    let ch = client(&url);
    assert_eq!(
        counts_final(&ch, &format!("{name}_hot")).await,
        rows_per_table(&events)
    );

    // Rerunning the finished job is a no-op: nothing attempted, nothing inserted.
    let out = run_job(&args);
    assert!(out.status.success());
    let r = report(&out.stdout);
    assert_eq!(
        (r["attempted"].as_u64(), r["done_before"].as_u64()),
        (Some(0), Some(files))
    );
    assert_eq!(r["details"]["rows_inserted"], 0);

    // The dataset is compacted (closed hours into one file each); the same import again takes
    // nothing twice: each compacted file's footer names files already imported.
    let compact = std::process::Command::new(marketprism_tests::process::collector_bin())
        .args(["parquet", "compact", "--dir", s(&data), "--json"])
        .output()
        .unwrap();
    assert!(
        compact.status.success(),
        "{}",
        String::from_utf8_lossy(&compact.stderr)
    );
    let compacted = data_files(&data)
        .iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("compacted-")
        })
        .count() as u64;
    assert!(compacted > 0, "the compaction merged something");
    let out = run_job(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out.stdout);
    assert_eq!(
        (
            r["attempted"].as_u64(),
            r["details"]["rows_inserted"].as_u64()
        ),
        (Some(0), Some(0)),
        "{r}"
    );
    assert_eq!(r["details"]["compacted_already_imported"], compacted, "{r}");
    for (data_type, rows) in rows_per_table(&events) {
        assert_eq!(
            count_all(&ch, &format!("{name}_hot"), data_type).await,
            rows,
            "{data_type}: not one row twice, even before FINAL"
        );
    }
    drop_databases(&ch, &name).await;
}

#[tokio::test]
async fn import_killed_with_sigkill_resumes_and_finishes_with_exactly_the_rows() {
    let test = "import_killed_with_sigkill_resumes_and_finishes_with_exactly_the_rows";
    let Some(url) = clickhouse_url(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let events = synthetic_events(12, 6_000);
    let files = write_dataset(&data, events.clone(), 12).await;
    let name = unique_name("jobs_import_kill");
    let config = clickhouse_config(dir.path(), &url, &name);
    let wd = dir.path().join("work");
    let args = [
        "import",
        "--parquet",
        s(&data),
        "--config",
        s(&config),
        "--work-dir",
        s(&wd),
        "--batch-size",
        "5",
    ];
    let mut child = job_command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill once some batches are durable, well before the end.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the import never got going");
        let done = std::fs::read_to_string(wd.join("progress.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|p| p["done"].as_u64())
            .unwrap_or(0);
        if done >= 20 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    let at_kill = progress(&wd);
    let done_at_kill = at_kill["done"].as_u64().unwrap();
    assert!(
        done_at_kill < files,
        "killed in the middle: {done_at_kill} of {files} files"
    );
    let ch = client(&url);
    let hot = format!("{name}_hot");
    let partial: u64 = counts_final(&ch, &hot).await.values().sum();
    assert!(
        partial < events.len() as u64,
        "rows before the resume: {partial}"
    );

    let out = run_job(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out.stdout);
    let before = r["done_before"].as_u64().unwrap();
    assert!(before >= done_at_kill, "the resume knew the durable units");
    assert_eq!(
        r["attempted"].as_u64().unwrap(),
        files - before,
        "the finished files were skipped"
    );
    let p = progress(&wd);
    assert_eq!(
        (p["done"].as_u64(), p["total"].as_u64()),
        (Some(files), Some(files))
    );
    assert_eq!(p["failed"], 0);
    assert_eq!(counts_final(&ch, &hot).await, rows_per_table(&events));
    drop_databases(&ch, &name).await;
}

#[tokio::test]
async fn a_damaged_file_fails_in_step_read_and_retry_failed_finishes_after_the_fix() {
    let test = "a_damaged_file_fails_in_step_read_and_retry_failed_finishes_after_the_fix";
    let Some(url) = clickhouse_url(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let events = synthetic_events(13, 600);
    let files = write_dataset(&data, events.clone(), 50).await;
    let all = data_files(&data);
    let damaged = all[all.len() / 2].clone();
    let good = std::fs::read(&damaged).unwrap();
    let mut broken = good.clone();
    broken.truncate(good.len() / 2);
    std::fs::write(&damaged, &broken).unwrap();
    let rel = damaged
        .strip_prefix(&data)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();

    let name = unique_name("jobs_import_damaged");
    let config = clickhouse_config(dir.path(), &url, &name);
    let wd = dir.path().join("work");
    let base = [
        "import",
        "--parquet",
        s(&data),
        "--config",
        s(&config),
        "--work-dir",
        s(&wd),
    ];
    let out = run_job(&base);
    assert!(!out.status.success(), "a failed unit fails the command");
    let r = report(&out.stdout);
    assert_eq!(
        (r["done"].as_u64(), r["failed"].as_u64()),
        (Some(files - 1), Some(1))
    );

    let stats = run_job(&[&base[..], &["--show-stats"]].concat());
    assert!(stats.status.success());
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(text.contains("step read: 1 failed"), "{text}");
    assert!(text.contains(&rel), "the failed file is named: {text}");

    // A plain rerun leaves the failed unit alone (and still fails); --retry-failed after the fix finishes.
    let out = run_job(&base);
    assert!(!out.status.success());
    assert_eq!(report(&out.stdout)["attempted"], 0);
    std::fs::write(&damaged, &good).unwrap();
    let out = run_job(&[&base[..], &["--retry-failed"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out.stdout);
    assert_eq!(
        (r["attempted"].as_u64(), r["failed"].as_u64()),
        (Some(1), Some(0))
    );
    let p = progress(&wd);
    assert_eq!(
        (p["done"].as_u64(), p["total"].as_u64()),
        (Some(files), Some(files))
    );
    let ch = client(&url);
    assert_eq!(
        counts_final(&ch, &format!("{name}_hot")).await,
        rows_per_table(&events)
    );
    drop_databases(&ch, &name).await;
}
