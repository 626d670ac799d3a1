//! Helpers of the job tests (`tests/tests/jobs_*.rs`): datasets written by the collector's real
//! Parquet output, configs, the real binary's `job …` commands, ClickHouse counts.

use crate::process::collector_bin;
use marketprism_config::ParquetConfig;
use marketprism_model::{DataType, Event};
use marketprism_pipeline::store::parquet::{new_run_id, run_parquet_output};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tokio_util::sync::CancellationToken;

/// Writes `events` through the collector's Parquet output (`run_parquet_output`) into `dir`, a file
/// whenever a partition reaches `max_rows`; returns the files written.
pub async fn write_dataset(dir: &Path, events: Vec<Event>, max_rows: usize) -> u64 {
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let config = ParquetConfig {
        dir: dir.to_path_buf(),
        max_rows,
        ..ParquetConfig::default()
    };
    let out = tokio::spawn(run_parquet_output(
        config,
        new_run_id(),
        rx,
        CancellationToken::new(),
    ));
    let n = events.len() as u64;
    for e in events {
        tx.send(e).await.unwrap();
    }
    drop(tx);
    let stats = out.await.unwrap().unwrap();
    assert_eq!(stats.rows_written, n, "{stats:?}");
    stats.files_written
}

/// Rows per table of `events`.
pub fn rows_per_table(events: &[Event]) -> BTreeMap<DataType, u64> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(e.data_type()).or_default() += 1;
    }
    out
}

/// A collector config whose `sink.clickhouse` is `url` with databases `{name}_hot` / `{name}_cold`.
pub fn clickhouse_config(dir: &Path, url: &str, name: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "sink:\n  clickhouse:\n    url: {url}\n    hot_database: {name}_hot\n    cold_database: {name}_cold\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `marketprism-collector job <args…>`, with the server overrides of the environment removed
/// (the test's config decides).
pub fn job_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(collector_bin());
    cmd.arg("job")
        .args(args)
        .env_remove("MARKETPRISM_CLICKHOUSE_URL")
        .env_remove("MARKETPRISM_NATS_URL")
        .env_remove("MARKETPRISM_CONFIG")
        .stdin(Stdio::null());
    cmd
}

/// Runs a job to its end; its output.
pub fn run_job(args: &[&str]) -> Output {
    job_command(args)
        .output()
        .expect("run the collector binary")
}

/// The JSON report line a run printed (on stdout, or on stderr for replay to stdout).
pub fn report(text: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .filter(|v| v.get("job").is_some())
        })
        .unwrap_or_else(|| panic!("no job report in {text}"))
}

/// `progress.json` of a work directory.
pub fn progress(work_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(work_dir.join("progress.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `SELECT count() FROM db.table FINAL`.
pub async fn count_final(ch: &clickhouse::Client, db: &str, data_type: DataType) -> u64 {
    ch.query(&format!("SELECT count() FROM {db}.{data_type} FINAL"))
        .fetch_one::<u64>()
        .await
        .unwrap()
}

/// Every table's count after `FINAL` (tables with none left out).
pub async fn counts_final(ch: &clickhouse::Client, db: &str) -> BTreeMap<DataType, u64> {
    let mut out = BTreeMap::new();
    for d in DataType::ALL {
        let n = count_final(ch, db, d).await;
        if n > 0 {
            out.insert(d, n);
        }
    }
    out
}

/// Drops `{name}_hot` and `{name}_cold` (best effort).
pub async fn drop_databases(ch: &clickhouse::Client, name: &str) {
    for db in ["hot", "cold"] {
        let _ = ch
            .query(&format!("DROP DATABASE IF EXISTS {name}_{db}"))
            .execute()
            .await;
    }
}

/// Data files of a dataset (relative, sorted), as the import plans them.
pub fn data_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}

/// The sink config of `{name}_hot` / `{name}_cold` on `url`, as [`clickhouse_config`] writes it.
pub fn sink_config(url: &str, name: &str) -> marketprism_config::ClickHouseConfig {
    marketprism_config::ClickHouseConfig {
        url: url.to_owned(),
        hot_database: format!("{name}_hot"),
        cold_database: format!("{name}_cold"),
        ..marketprism_config::ClickHouseConfig::default()
    }
}

/// Inserts `events` into `{name}_hot` through the sink's writer (schema created; the views copy
/// every insert on to `{name}_cold`), one insert per table.
pub async fn insert_events(url: &str, name: &str, events: &[Event]) {
    let writer = marketprism_pipeline::store::ClickHouseWriter::connect(&sink_config(url, name))
        .await
        .unwrap();
    for d in DataType::ALL {
        let of: Vec<Event> = events
            .iter()
            .filter(|e| e.data_type() == d)
            .cloned()
            .collect();
        writer.insert(d, &of).await.unwrap();
    }
}

/// Runs one statement, panicking with it on failure.
pub async fn exec(ch: &clickhouse::Client, sql: &str) {
    ch.query(sql)
        .execute()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Waits (≤ 60 s) until the mutations (`ALTER TABLE … DELETE`) of database `db` are done: 18.16
/// runs them in the background and knows no `mutations_sync`.
pub async fn wait_mutations(ch: &clickhouse::Client, db: &str) {
    let sql =
        format!("SELECT count() FROM system.mutations WHERE database = '{db}' AND is_done = 0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ch.query(&sql).fetch_one::<u64>().await.unwrap() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "mutations of {db} never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `SELECT count() FROM db.table` before `FINAL`: every copy.
pub async fn count_all(ch: &clickhouse::Client, db: &str, data_type: DataType) -> u64 {
    ch.query(&format!("SELECT count() FROM {db}.{data_type}"))
        .fetch_one::<u64>()
        .await
        .unwrap()
}
