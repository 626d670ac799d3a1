//! The jobs' one dataset root rule and their errors, through the real binary: the root is the
//! directory holding the `date=…` partitions (the Parquet output's `dir`); a path inside or above
//! it fails naming the root expected, a missing one fails naming it (import, replay, verify alike);
//! `--parquet x/` and `--parquet x` are the same job; an upper-case `.PARQUET` file is imported and
//! a file that is not data is counted and named, never silent; a replay that sends nothing (a
//! range or filter matching nothing) does not exit 0.

use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Event};
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use marketprism_tests::jobs::{
    clickhouse_config, counts_final, data_files, drop_databases, job_command, report,
    rows_per_table, run_job, sink_config, write_dataset,
};
use marketprism_tests::servers::{clickhouse_url, unique_name};
use std::path::Path;
use std::process::Output;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The root of a dataset written to `data`, and the first `date=…` directory in it.
fn first_day(data: &Path) -> std::path::PathBuf {
    let f = data_files(data).remove(0);
    let rel = f.strip_prefix(data).unwrap();
    data.join(rel.iter().next().unwrap())
}

#[tokio::test]
async fn paths_inside_above_or_missing_are_refused_naming_the_root_by_every_job() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(dir.path()).unwrap();
    let data = base.join("data/demo");
    write_dataset(&data, synthetic_events(41, 200), 1_000).await;
    let day = first_day(&data);
    assert!(s(&day).contains("date="));
    let config = clickhouse_config(&base, "http://127.0.0.1:9", "jobs_dataset_unused");
    let missing = base.join("no-such-dataset");
    for (path, want) in [
        (day.clone(), format!("expected {}", data.display())),
        (base.join("data"), format!("expected {}", data.display())),
        (missing.clone(), missing.display().to_string()),
    ] {
        let runs: [Vec<&str>; 3] = [
            vec!["import", "--parquet", s(&path), "--config", s(&config)],
            vec![
                "replay",
                "--parquet",
                s(&path),
                "--stdout",
                "--from",
                "2026-01-01T00:00:00Z",
                "--to",
                "2027-01-01T00:00:00Z",
            ],
            vec!["verify", "--parquet", s(&path), "--config", s(&config)],
        ];
        for args in runs {
            let out = job_command(&args).current_dir(&base).output().unwrap();
            assert!(!out.status.success(), "{args:?}");
            let err = stderr(&out);
            assert!(err.contains(&want), "{args:?}: {err}");
            assert!(err.contains(s(&path)), "the path given is named: {err}");
        }
    }
    // Nothing was created for the refused jobs.
    assert!(!base.join(".marketprism-jobs").exists());
}

#[tokio::test]
async fn import_takes_upper_case_parquet_names_and_names_what_it_skips() {
    let Some(url) = clickhouse_url("import_takes_upper_case_parquet_names_and_names_what_it_skips")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(dir.path()).unwrap();
    let data = base.join("data");
    let events = synthetic_events(42, 650);
    let files = write_dataset(&data, events.clone(), 40).await;
    let first = data_files(&data).remove(0);
    let upper = first.with_extension("PARQUET");
    std::fs::rename(&first, &upper).unwrap();
    std::fs::write(first.parent().unwrap().join("README.txt"), b"notes").unwrap();
    std::fs::write(data.join("manifest.json"), b"{}").unwrap();
    let name = unique_name("jobs_dataset_import");
    let config = clickhouse_config(&base, &url, &name);
    // No --work-dir: `data/` and `data` must be the same job (the same default work directory).
    let with_slash = format!("{}/", data.display());
    let run = |path: &str| {
        job_command(&["import", "--parquet", path, "--config", s(&config)])
            .current_dir(&base)
            .output()
            .unwrap()
    };
    let out = run(&with_slash);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out.stdout);
    assert_eq!(r["total"], files, "the .PARQUET file is a unit");
    assert_eq!(r["details"]["rows_inserted"], events.len() as u64);
    assert_eq!(r["details"]["skipped_files"], 2);
    let skipped: Vec<&str> = r["details"]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        skipped.iter().any(|f| f.ends_with("/README.txt")),
        "{skipped:?}"
    );
    assert!(skipped.contains(&"manifest.json"), "{skipped:?}");
    let ch = clickhouse_client(&sink_config(&url, ""));
    assert_eq!(
        counts_final(&ch, &format!("{name}_hot")).await,
        rows_per_table(&events)
    );
    let out = run(s(&data));
    assert!(out.status.success(), "{}", stderr(&out));
    let again = report(&out.stdout);
    assert_eq!(again["work_dir"], r["work_dir"]);
    assert_eq!(
        (again["attempted"].as_u64(), again["done_before"].as_u64()),
        (Some(0), Some(files))
    );
    drop_databases(&ch, &name).await;
}

#[tokio::test]
async fn a_replay_that_sends_nothing_fails_naming_what_matched_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let events: Vec<Event> = synthetic_events(43, 400);
    write_dataset(&data, events.clone(), 1_000).await;
    let (from, to) = (
        events[0].ts_ms.to_string(),
        (events.last().unwrap().ts_ms + 1).to_string(),
    );
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--parquet",
            s(&data),
            "--stdout",
            "--as-fast-as-possible",
        ];
        args.extend_from_slice(extra);
        run_job(&args)
    };
    let out = replay(&["--from", &from, "--to", &to]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    // A symbol nothing has: the days' partitions exist, 0 events sent.
    let out = replay(&["--from", &from, "--to", &to, "--symbol", "NOPE-USDT"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("0 events sent"), "{err}");
    assert!(err.contains("--symbol NOPE-USDT"), "{err}");
    assert!(
        err.contains(s(&std::fs::canonicalize(&data).unwrap())),
        "{err}"
    );
    assert_eq!(
        report(&out.stderr)["empty"]
            .as_str()
            .map(|e| e.contains("NOPE")),
        Some(true)
    );
    // A range before the data: no partition at all.
    let out = replay(&[
        "--from",
        "2020-01-01T00:00:00Z",
        "--to",
        "2020-01-02T00:00:00Z",
    ]);
    assert!(!out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("--from 2020-01-01T00:00:00Z"), "{err}");
    assert_eq!(report(&out.stderr)["total"], 0);
    // An empty dataset directory is not a dataset.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run_job(&[
        "replay",
        "--parquet",
        s(&empty),
        "--stdout",
        "--from",
        &from,
        "--to",
        &to,
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no date="), "{}", stderr(&out));
    assert!(events.iter().any(|e| e.data_type() == DataType::Trades));
}
