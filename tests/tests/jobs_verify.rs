//! `job verify` and `job repair` against a real ClickHouse, through the real binary: a consistent
//! hot/cold pair is clean (exit 0); rows deleted from cold for one symbol-day are named (that unit,
//! that count) and repaired (hot → cold) to equal counts after `FINAL`; a Parquet file never
//! imported is named and imported by repair; repair killed with SIGKILL in the middle and rerun ends
//! with exactly the rows (not one copy more before `FINAL`) and every unit done; duplicates before
//! `FINAL` are reported.

use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Event};
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use marketprism_pipeline::store::parquet::{read_file, utc_date};
use marketprism_tests::jobs::{
    clickhouse_config, count_all, counts_final, data_files, drop_databases, exec, insert_events,
    job_command, progress, report, rows_per_table, run_job, sink_config, wait_mutations,
    write_dataset,
};
use marketprism_tests::servers::{clickhouse_url, unique_name};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The unit id of an event: `{table}/{day}/{exchange}/{symbol}`.
fn unit_of(e: &Event) -> String {
    format!(
        "{}/{}/{}/{}",
        e.data_type(),
        utc_date(e.ts_ms),
        e.exchange,
        e.symbol.as_str()
    )
}

fn units_of(events: &[Event]) -> BTreeSet<String> {
    events.iter().map(unit_of).collect()
}

/// A test's databases and files.
struct Case {
    dir: tempfile::TempDir,
    url: String,
    name: String,
    config: PathBuf,
    ch: clickhouse::Client,
    runs: usize,
}

impl Case {
    fn new(url: String, prefix: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        let name = unique_name(prefix);
        let config = clickhouse_config(dir.path(), &url, &name);
        let ch = clickhouse_client(&sink_config(&url, ""));
        Case {
            dir,
            url,
            name,
            config,
            ch,
            runs: 0,
        }
    }

    fn hot(&self) -> String {
        format!("{}_hot", self.name)
    }

    fn cold(&self) -> String {
        format!("{}_cold", self.name)
    }

    /// `job <kind> --config … --work-dir <fresh> --json <file> extra…`: its output and JSON report.
    fn run(&mut self, kind: &str, extra: &[&str]) -> (Output, Value) {
        self.runs += 1;
        let wd = self.dir.path().join(format!("work-{}", self.runs));
        let json = self.dir.path().join(format!("report-{}.json", self.runs));
        let mut args = vec![kind, "--config", s(&self.config), "--work-dir", s(&wd)];
        args.extend(["--json", s(&json)]);
        args.extend(extra);
        let out = run_job(&args);
        let doc = std::fs::read_to_string(&json)
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap_or_else(|e| panic!("no report {e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out, doc)
    }
}

/// Units with discrepancies → their discrepancies, from a `--json` report.
fn discrepancies(doc: &Value) -> BTreeMap<String, Vec<Value>> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["discrepancies"].as_array().unwrap().is_empty())
        .map(|r| {
            (
                r["unit"].as_str().unwrap().to_owned(),
                r["discrepancies"].as_array().unwrap().clone(),
            )
        })
        .collect()
}

fn missing(d: &[Value]) -> Vec<(String, String, u64)> {
    d.iter()
        .filter(|x| x["kind"] == "missing")
        .map(|x| {
            (
                x["side"].as_str().unwrap().to_owned(),
                x["from"].as_str().unwrap().to_owned(),
                x["rows"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_consistent_pair_is_clean_and_filters_select_units() {
    let Some(url) = clickhouse_url("a_consistent_pair_is_clean_and_filters_select_units") else {
        return;
    };
    let mut case = Case::new(url, "jobs_verify_clean");
    let events = synthetic_events(31, 1_300);
    insert_events(&case.url, &case.name, &events).await;
    let (out, doc) = case.run("verify", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out.stdout);
    let units = units_of(&events);
    assert_eq!(r["total"], units.len() as u64);
    assert_eq!(
        (r["done"].as_u64(), r["discrepancies"].as_u64()),
        (Some(units.len() as u64), Some(0))
    );
    assert!(stderr(&out).contains(&format!("no discrepancy in {} units", units.len())));
    let got: BTreeSet<String> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["unit"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, units);
    // Each unit's figures are its rows.
    let first = &events[1];
    let unit = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["unit"] == unit_of(first))
        .unwrap();
    let rows = events
        .iter()
        .filter(|e| unit_of(e) == unit_of(first))
        .count() as u64;
    assert_eq!(unit["hot"]["rows_final"], rows);
    assert_eq!(unit["cold"]["distinct_keys"], rows);
    assert_eq!(unit["hot"], unit["cold"]);

    let (out, _) = case.run(
        "verify",
        &["--data-type", "trades", "--symbol", first.symbol.as_str()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let want = units
        .iter()
        .filter(|u| u.starts_with("trades/") && u.ends_with(&format!("/{}", first.symbol.as_str())))
        .count();
    assert_eq!(report(&out.stdout)["total"], want as u64);
    drop_databases(&case.ch, &case.name).await;
}

#[tokio::test]
async fn rows_deleted_from_cold_are_named_and_repaired() {
    let Some(url) = clickhouse_url("rows_deleted_from_cold_are_named_and_repaired") else {
        return;
    };
    let mut case = Case::new(url, "jobs_verify_cold");
    let events = synthetic_events(32, 1_300);
    insert_events(&case.url, &case.name, &events).await;
    let victim = events
        .iter()
        .find(|e| e.data_type() == DataType::Trades)
        .unwrap()
        .clone();
    let deleted = events
        .iter()
        .filter(|e| unit_of(e) == unit_of(&victim))
        .count() as u64;
    assert!(deleted > 1);
    let cold = case.cold();
    exec(
        &case.ch,
        &format!(
            "ALTER TABLE {cold}.trades DELETE WHERE exchange = '{}' AND symbol = '{}'",
            victim.exchange,
            victim.symbol.as_str()
        ),
    )
    .await;
    wait_mutations(&case.ch, &cold).await;

    let (out, doc) = case.run("verify", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = discrepancies(&doc);
    assert_eq!(found.keys().collect::<Vec<_>>(), [&unit_of(&victim)]);
    let d = &found[&unit_of(&victim)];
    assert_eq!(
        missing(d),
        [("cold".to_string(), "hot".to_string(), deleted)]
    );
    assert!(
        d.iter()
            .any(|x| x["figure"] == "rows_final" && x["b_value"] == 0),
        "{d:?}"
    );
    let table = stderr(&out);
    assert!(
        table.contains(&format!(
            "{}  {deleted} rows of hot missing in cold",
            unit_of(&victim)
        )),
        "{table}"
    );

    let (out, doc) = case.run("repair", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(report(&out.stdout)["details"]["rows_repaired"], deleted);
    assert!(discrepancies(&doc).is_empty(), "verified again: {doc}");
    let (out, _) = case.run("verify", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = rows_per_table(&events);
    assert_eq!(counts_final(&case.ch, &case.hot()).await, want);
    assert_eq!(counts_final(&case.ch, &cold).await, want);
    assert_eq!(
        count_all(&case.ch, &cold, DataType::Trades).await,
        want[&DataType::Trades]
    );

    // Rows only in cold (as hot's TTL leaves them): repair never copies cold back into hot. That is
    // its answer, not a failure to retry: the unit is done, the run exits 1 naming what is left.
    let hot = case.hot();
    exec(
        &case.ch,
        &format!(
            "ALTER TABLE {hot}.trades DELETE WHERE exchange = '{}' AND symbol = '{}'",
            victim.exchange,
            victim.symbol.as_str()
        ),
    )
    .await;
    wait_mutations(&case.ch, &hot).await;
    let (out, doc) = case.run("repair", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let r = report(&out.stdout);
    assert_eq!(
        (r["failed"].as_u64(), r["discrepancies"].as_u64()),
        (
            Some(0),
            Some(discrepancies(&doc).values().map(Vec::len).sum::<usize>() as u64)
        ),
        "{r}"
    );
    assert_eq!(
        discrepancies(&doc).keys().collect::<Vec<_>>(),
        [&unit_of(&victim)],
        "{doc}"
    );
    drop_databases(&case.ch, &case.name).await;
}

#[tokio::test]
async fn a_parquet_file_never_imported_is_named_and_repair_imports_it() {
    let test = "a_parquet_file_never_imported_is_named_and_repair_imports_it";
    let Some(url) = clickhouse_url(test) else {
        return;
    };
    let mut case = Case::new(url, "jobs_verify_parquet");
    let data = case.dir.path().join("data");
    let events = synthetic_events(33, 1_300);
    write_dataset(&data, events.clone(), 40).await;
    let left_out = data_files(&data)
        .into_iter()
        .find(|p| s(p).contains("data_type=trades"))
        .unwrap();
    let its: Vec<Event> = read_file(&left_out, DataType::Trades)
        .unwrap()
        .to_events()
        .unwrap();
    let aside = case.dir.path().join("aside.parquet");
    std::fs::rename(&left_out, &aside).unwrap();
    let wd = case.dir.path().join("import");
    let out = run_job(&[
        "import",
        "--parquet",
        s(&data),
        "--config",
        s(&case.config),
        "--work-dir",
        s(&wd),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::rename(&aside, &left_out).unwrap();

    let (out, doc) = case.run("verify", &["--parquet", s(&data)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for e in &its {
        *want.entry(unit_of(e)).or_default() += 1;
    }
    let found = discrepancies(&doc);
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        want.keys().cloned().collect()
    );
    for (unit, n) in &want {
        assert_eq!(
            missing(&found[unit]),
            [("hot".to_string(), "parquet".to_string(), *n)],
            "{unit}"
        );
    }

    let (out, doc) = case.run("repair", &["--parquet", s(&data)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        report(&out.stdout)["details"]["rows_repaired"],
        its.len() as u64
    );
    assert!(discrepancies(&doc).is_empty(), "{doc}");
    let (out, _) = case.run("verify", &["--parquet", s(&data)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = rows_per_table(&events);
    assert_eq!(counts_final(&case.ch, &case.hot()).await, rows);
    assert_eq!(counts_final(&case.ch, &case.cold()).await, rows);
    drop_databases(&case.ch, &case.name).await;
}

#[tokio::test]
async fn repair_killed_with_sigkill_resumes_to_exactly_the_rows() {
    let Some(url) = clickhouse_url("repair_killed_with_sigkill_resumes_to_exactly_the_rows") else {
        return;
    };
    let case = Case::new(url, "jobs_verify_kill");
    let events = synthetic_events(34, 6_000);
    insert_events(&case.url, &case.name, &events).await;
    let cold = case.cold();
    for d in DataType::ALL {
        exec(&case.ch, &format!("TRUNCATE TABLE {cold}.{d}")).await;
    }
    let units = units_of(&events).len() as u64;
    let wd = case.dir.path().join("work");
    let args = [
        "repair",
        "--config",
        s(&case.config),
        "--work-dir",
        s(&wd),
        "--batch-size",
        "2",
    ];
    let mut child = job_command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(Instant::now() < deadline, "the repair never got going");
        let done = std::fs::read_to_string(wd.join("progress.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|p| p["done"].as_u64())
            .unwrap_or(0);
        if done >= 6 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success(), "killed, not finished");
    let done_at_kill = progress(&wd)["done"].as_u64().unwrap();
    assert!(
        done_at_kill < units,
        "killed in the middle: {done_at_kill} of {units}"
    );
    let partial: u64 = counts_final(&case.ch, &cold).await.values().sum();
    assert!(
        partial < events.len() as u64,
        "cold before the resume: {partial}"
    );

    let json = case.dir.path().join("resumed.json");
    let out = run_job(&[&args[..], &["--json", s(&json)]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out.stdout);
    assert!(r["done_before"].as_u64().unwrap() >= done_at_kill);
    assert_eq!(
        (r["done"].as_u64(), r["total"].as_u64()),
        (Some(units), Some(units))
    );
    assert_eq!(r["failed"], 0);
    // The final report holds every unit, those repaired before the kill too.
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["results"].as_array().unwrap().len() as u64, units);
    assert!(discrepancies(&doc).is_empty(), "{doc}");
    let want = rows_per_table(&events);
    assert_eq!(counts_final(&case.ch, &cold).await, want);
    // Exactly the rows: a unit redone after the kill copied nothing twice.
    for (d, n) in &want {
        assert_eq!(count_all(&case.ch, &cold, *d).await, *n, "{d} before FINAL");
    }
    drop_databases(&case.ch, &case.name).await;
}

#[tokio::test]
async fn duplicates_before_final_are_reported() {
    let Some(url) = clickhouse_url("duplicates_before_final_are_reported") else {
        return;
    };
    let mut case = Case::new(url, "jobs_verify_dups");
    let events = synthetic_events(35, 650);
    insert_events(&case.url, &case.name, &events).await;
    let (hot, cold) = (case.hot(), case.cold());
    for db in [&hot, &cold] {
        exec(&case.ch, &format!("SYSTEM STOP MERGES {db}.trades")).await;
    }
    let trades: Vec<Event> = events
        .iter()
        .filter(|e| e.data_type() == DataType::Trades)
        .cloned()
        .collect();
    insert_events(&case.url, &case.name, &trades).await;
    let (out, doc) = case.run("verify", &["--data-type", "trades"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = discrepancies(&doc);
    assert_eq!(
        found.keys().cloned().collect::<BTreeSet<_>>(),
        units_of(&trades)
    );
    for (unit, d) in &found {
        let n = trades.iter().filter(|e| &unit_of(e) == unit).count() as u64;
        let dups: Vec<(String, u64)> = d
            .iter()
            .map(|x| {
                assert_eq!(x["kind"], "duplicates", "{x}");
                (
                    x["side"].as_str().unwrap().to_owned(),
                    x["rows"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            dups,
            [("hot".to_string(), n), ("cold".to_string(), n)],
            "{unit}"
        );
    }
    assert!(stderr(&out).contains("duplicates before FINAL in hot"));
    for db in [&hot, &cold] {
        exec(&case.ch, &format!("SYSTEM START MERGES {db}.trades")).await;
    }
    drop_databases(&case.ch, &case.name).await;
}

#[tokio::test]
async fn a_missing_table_fails_in_step_query_and_retry_failed_finishes_after_repair() {
    let test = "a_missing_table_fails_in_step_query_and_retry_failed_finishes_after_repair";
    let Some(url) = clickhouse_url(test) else {
        return;
    };
    let case = Case::new(url, "jobs_verify_missing_table");
    let events = synthetic_events(36, 1_300);
    insert_events(&case.url, &case.name, &events).await;
    let cold = case.cold();
    // The view into the table first, so nothing is left pointing at a dropped table.
    exec(&case.ch, &format!("DROP TABLE {cold}.trades_from_hot")).await;
    exec(&case.ch, &format!("DROP TABLE {cold}.trades")).await;
    let wd = case.dir.path().join("work");
    let base = ["verify", "--config", s(&case.config), "--work-dir", s(&wd)];
    let trades = units_of(&events)
        .into_iter()
        .filter(|u| u.starts_with("trades/"))
        .count() as u64;
    let out = run_job(&base);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let r = report(&out.stdout);
    assert_eq!(
        (r["failed"].as_u64(), r["discrepancies"].as_u64()),
        (Some(trades), Some(0))
    );
    let stats = run_job(&[&base[..], &["--show-stats"]].concat());
    let text = String::from_utf8_lossy(&stats.stdout);
    assert!(
        text.contains(&format!("step query: {trades} failed")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{cold}.trades")),
        "the table is named: {text}"
    );

    // Repair creates the schema as the sink does (table and view), then copies hot → cold.
    let repair = run_job(&[
        "repair",
        "--config",
        s(&case.config),
        "--work-dir",
        s(&case.dir.path().join("repair")),
    ]);
    assert!(repair.status.success(), "{}", stderr(&repair));
    let want = rows_per_table(&events);
    assert_eq!(
        report(&repair.stdout)["details"]["rows_repaired"],
        want[&DataType::Trades]
    );
    let out = run_job(&[&base[..], &["--retry-failed"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out.stdout);
    assert_eq!(
        (r["attempted"].as_u64(), r["failed"].as_u64()),
        (Some(trades), Some(0))
    );
    assert_eq!(r["details"]["checked"], units_of(&events).len());
    assert_eq!(counts_final(&case.ch, &cold).await, want);
    drop_databases(&case.ch, &case.name).await;
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let out = run_job(&[
        "verify",
        "--config",
        "/nonexistent.yaml",
        "--exchange",
        "nope",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--exchange \"nope\""),
        "{}",
        stderr(&out)
    );
    let out = run_job(&[
        "repair",
        "--config",
        "/nonexistent.yaml",
        "--from",
        "1796083200000",
        "--to",
        "1796083200000",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--to must be after --from"),
        "{}",
        stderr(&out)
    );
    // A time in seconds is refused by name, not read as 1970.
    let out = run_job(&[
        "repair",
        "--config",
        "/nonexistent.yaml",
        "--from",
        "1796083200",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("seconds"), "{}", stderr(&out));
}
