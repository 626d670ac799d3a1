//! `job verify` compares values, not only keys and counts; `job repair` leaves no copy in cold when
//! it copies Parquet rows into hot for keys cold still holds (the hot → cold view inserts them
//! again), and marks a unit done only when a verify right after finds nothing.

use marketprism_model::DataType;
use marketprism_model::synthetic::synthetic_events;
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use marketprism_tests::jobs::{
    clickhouse_config, count_all, counts_final, drop_databases, exec, insert_events, report,
    rows_per_table, run_job, sink_config, wait_mutations, write_dataset,
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

/// `job <kind> --config … --work-dir <dir>/<tag> --json <dir>/<tag>.json extra…`.
fn run(dir: &Path, config: &Path, tag: &str, kind: &str, extra: &[&str]) -> (Output, Value) {
    let (wd, json) = (dir.join(tag), dir.join(format!("{tag}.json")));
    let mut args = vec![
        kind,
        "--config",
        s(config),
        "--work-dir",
        s(&wd),
        "--json",
        s(&json),
    ];
    args.extend_from_slice(extra);
    let out = run_job(&args);
    let doc = std::fs::read_to_string(&json)
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or_else(|e| panic!("no report {e}: {}", stderr(&out)));
    (out, doc)
}

/// Every discrepancy of a `--json` report as (unit, discrepancy).
fn all_discrepancies(doc: &Value) -> Vec<(String, Value)> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let unit = r["unit"].as_str().unwrap().to_owned();
            r["discrepancies"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |d| (unit.clone(), d.clone()))
        })
        .collect()
}

#[tokio::test]
async fn a_value_changed_under_the_same_key_is_a_discrepancy_naming_the_key() {
    let test = "a_value_changed_under_the_same_key_is_a_discrepancy_naming_the_key";
    let Some(url) = clickhouse_url(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("jobs_values");
    let config = clickhouse_config(dir.path(), &url, &name);
    let ch = clickhouse_client(&sink_config(&url, ""));
    let events = synthetic_events(61, 650);
    let data = dir.path().join("data");
    write_dataset(&data, events.clone(), 1_000).await;
    insert_events(&url, &name, &events).await;
    let (out, _) = run(
        dir.path(),
        &config,
        "clean",
        "verify",
        &["--parquet", s(&data)],
    );
    assert!(out.status.success(), "equal values pass: {}", stderr(&out));

    let victim = events
        .iter()
        .find(|e| e.data_type() == DataType::Trades)
        .unwrap();
    let marketprism_model::Payload::Trade(trade) = &victim.payload else {
        unreachable!()
    };
    let trade_id = trade.trade_id.clone();
    let row = format!(
        "exchange = '{}' AND symbol = '{}' AND trade_id = '{trade_id}'",
        victim.exchange,
        victim.symbol.as_str()
    );
    let cold = format!("{name}_cold");
    exec(
        &ch,
        &format!("ALTER TABLE {cold}.trades UPDATE price = price * 2 WHERE {row}"),
    )
    .await;
    wait_mutations(&ch, &cold).await;
    let (out, doc) = run(dir.path(), &config, "changed", "verify", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = all_discrepancies(&doc);
    assert_eq!(found.len(), 1, "only the value differs: {found:?}");
    let (_, d) = &found[0];
    assert_eq!(
        (d["kind"].as_str(), d["a"].as_str(), d["b"].as_str()),
        (Some("values_differ"), Some("hot"), Some("cold"))
    );
    assert_eq!(d["rows"], 1);
    let key = d["keys"][0].as_str().unwrap();
    assert!(
        key.ends_with(&format!("/{}/{trade_id}", victim.symbol.as_str())),
        "{key}"
    );
    assert!(
        stderr(&out).contains("differ in value between hot and cold"),
        "{}",
        stderr(&out)
    );

    // Against Parquet: the change in hot is named by the event's key.
    let hot = format!("{name}_hot");
    exec(
        &ch,
        &format!("ALTER TABLE {hot}.trades UPDATE price = price * 3 WHERE {row}"),
    )
    .await;
    wait_mutations(&ch, &hot).await;
    let (out, doc) = run(
        dir.path(),
        &config,
        "parquet",
        "verify",
        &["--parquet", s(&data)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let found = all_discrepancies(&doc);
    let vs_parquet: Vec<&Value> = found
        .iter()
        .filter(|(_, d)| d["b"] == "parquet")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(vs_parquet.len(), 1, "{doc}");
    assert_eq!(vs_parquet[0]["kind"], "values_differ");
    assert_eq!(
        vs_parquet[0]["keys"][0].as_str(),
        Some(victim.msg_id().as_str())
    );
    drop_databases(&ch, &name).await;
}

#[tokio::test]
async fn repair_into_hot_of_keys_cold_holds_leaves_no_copy_in_cold() {
    let test = "repair_into_hot_of_keys_cold_holds_leaves_no_copy_in_cold";
    let Some(url) = clickhouse_url(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("jobs_repair_cold");
    let config = clickhouse_config(dir.path(), &url, &name);
    let ch = clickhouse_client(&sink_config(&url, ""));
    let events = synthetic_events(62, 650);
    let data = dir.path().join("data");
    write_dataset(&data, events.clone(), 1_000).await;
    insert_events(&url, &name, &events).await;
    let victim = events
        .iter()
        .find(|e| e.data_type() == DataType::Trades)
        .unwrap()
        .clone();
    // Hot lost a symbol's trades (cold still holds them).
    let hot = format!("{name}_hot");
    exec(
        &ch,
        &format!(
            "ALTER TABLE {hot}.trades DELETE WHERE exchange = '{}' AND symbol = '{}'",
            victim.exchange,
            victim.symbol.as_str()
        ),
    )
    .await;
    wait_mutations(&ch, &hot).await;
    let (out, doc) = run(
        dir.path(),
        &config,
        "before",
        "verify",
        &["--parquet", s(&data)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        all_discrepancies(&doc)
            .iter()
            .any(|(_, d)| d["kind"] == "missing" && d["side"] == "hot" && d["from"] == "parquet"),
        "{doc}"
    );

    let (out, doc) = run(
        dir.path(),
        &config,
        "repair",
        "repair",
        &["--parquet", s(&data)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(all_discrepancies(&doc).is_empty(), "verified again: {doc}");
    assert!(
        report(&out.stdout)["details"]["rows_repaired"]
            .as_u64()
            .unwrap()
            > 0
    );
    // A verify right after finds nothing: no copy in cold before FINAL either.
    let (out, doc) = run(
        dir.path(),
        &config,
        "after",
        "verify",
        &["--parquet", s(&data)],
    );
    assert!(out.status.success(), "{doc}");
    let want = rows_per_table(&events);
    let cold = format!("{name}_cold");
    assert_eq!(
        count_all(&ch, &cold, DataType::Trades).await,
        want[&DataType::Trades]
    );
    assert_eq!(
        count_all(&ch, &hot, DataType::Trades).await,
        want[&DataType::Trades]
    );
    assert_eq!(counts_final(&ch, &cold).await, want);
    drop_databases(&ch, &name).await;
}
