//! Engine check on a modern ClickHouse (chdb-core 26.9, in-process, no server): the Modern DDL executes,
//! the same rows inserted twice (as `INSERT … VALUES` text, and as the writer's own RowBinary bytes) collapse
//! under FINAL in hot and (via the materialized views) cold, and decimals and DateTime64 times come back
//! exactly. Not a server check: chdb has no HTTP interface, so the RowBinary bytes are replayed from a file.

use marketprism_config::ClickHouseConfig;
use marketprism_model::synthetic::synthetic_events;
use marketprism_model::{DataType, Event, Payload};
use marketprism_pipeline::store::clickhouse::insert_rowbinary;
use marketprism_pipeline::store::schema::{insert_values_sql, structure};
use marketprism_pipeline::store::{Dec18, Dialect, Rows, ddl};
use marketprism_tests::servers::chdb;
use marketprism_tests::store_capture::BodyRecorder;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `statements` in one chdb session; returns each statement's JSON rows by statement number.
fn run_chdb(python: &str, exec: &str, statements: &[String]) -> BTreeMap<usize, Vec<Value>> {
    let script = statements.join("\n;\n");
    let mut child = Command::new(python)
        .arg(exec)
        .arg("--marker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chdb_exec.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chdb_exec failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut results: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    let mut current = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if let Some(n) = v.get("__statement__").and_then(Value::as_u64) {
            current = n as usize;
            results.entry(current).or_default();
        } else {
            results.entry(current).or_default().push(v);
        }
    }
    results
}

/// An integer that JSON output may quote (64-bit integers are strings by default).
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_i64().unwrap(),
    }
}

fn events_of(events: &[Event], dt: DataType) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.data_type() == dt)
        .cloned()
        .collect()
}

/// Creates the Modern schema, runs `inserts` (every table's rows of `events`, twice), and checks that
/// hot and cold hold both copies raw and one under FINAL, with exact decimals and times.
fn assert_schema_and_dedup(
    python: &str,
    exec: &str,
    config: &ClickHouseConfig,
    events: &[Event],
    inserts: Vec<String>,
) {
    let (hot, cold) = (&config.hot_database, &config.cold_database);
    let per_type = events.len() / DataType::ALL.len();
    let mut statements = ddl(Dialect::Modern, config);
    for dt in DataType::ALL {
        for db in [hot, cold] {
            // Background merges would collapse copies early and hide them from the raw counts.
            statements.push(format!("SYSTEM STOP MERGES {db}.{dt}"));
        }
    }
    statements.extend(inserts);
    let mut count_statements = BTreeMap::new();
    for dt in DataType::ALL {
        for db in [hot, cold] {
            statements.push(format!(
                "SELECT toUInt32(count()) AS raw, toUInt32((SELECT count() FROM {db}.{dt} FINAL)) AS final FROM {db}.{dt}"
            ));
            count_statements.insert(statements.len(), format!("{db}.{dt}"));
        }
    }
    statements.push(format!(
        "SELECT trade_id, toString(price) AS price, toString(quantity) AS quantity, \
         toString(toUnixTimestamp64Milli(ts_ms)) AS ts FROM {hot}.trades FINAL ORDER BY ts_ms"
    ));
    let trades_statement = statements.len();
    statements.push(format!(
        "SELECT name, type FROM system.columns WHERE database = '{hot}' AND table = 'trades' ORDER BY position"
    ));
    let columns_statement = statements.len();
    statements.push(format!(
        "SELECT name, engine_full FROM system.tables WHERE database IN ('{hot}', '{cold}') ORDER BY database, name"
    ));
    let tables_statement = statements.len();

    let results = run_chdb(python, exec, &statements);

    for (n, table) in &count_statements {
        let row = &results[n][0];
        assert_eq!(
            int(&row["raw"]),
            2 * per_type as i64,
            "{table}: both copies stored"
        );
        assert_eq!(
            int(&row["final"]),
            per_type as i64,
            "{table}: FINAL keeps one per natural key"
        );
    }

    let trades = events_of(events, DataType::Trades);
    let stored = &results[&trades_statement];
    assert_eq!(stored.len(), trades.len());
    for (row, event) in stored.iter().zip(&trades) {
        let Payload::Trade(t) = &event.payload else {
            unreachable!()
        };
        assert_eq!(row["trade_id"], t.trade_id.as_str());
        let dec = |v: &Value| v.as_str().unwrap().parse::<Dec18>().unwrap();
        assert_eq!(dec(&row["price"]), Dec18::from_decimal(t.price).unwrap());
        assert_eq!(
            dec(&row["quantity"]),
            Dec18::from_decimal(t.quantity).unwrap()
        );
        assert_eq!(int(&row["ts"]), event.ts_ms);
    }

    let types: BTreeMap<String, String> = results[&columns_statement]
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(types["ts_ms"], "DateTime64(3, 'UTC')");
    assert_eq!(types["symbol"], "LowCardinality(String)");
    assert_eq!(types["price"], "Decimal(38, 18)");

    let tables = &results[&tables_statement];
    assert_eq!(tables.len(), 3 * DataType::ALL.len(), "{tables:?}");
    for t in tables {
        let engine = t["engine_full"].as_str().unwrap();
        let name = t["name"].as_str().unwrap();
        if name.ends_with("_from_hot") {
            continue;
        }
        assert!(
            engine.starts_with("ReplacingMergeTree(recv_ts_ms)"),
            "{name}: {engine}"
        );
        assert!(
            engine.contains("TTL toDateTime(ts_ms) + toIntervalDay("),
            "{name}: {engine}"
        );
    }
}

#[test]
fn modern_ddl_runs_and_values_inserts_collapse_on_chdb() {
    let Some((python, exec)) = chdb("modern_ddl_runs_and_values_inserts_collapse_on_chdb") else {
        return;
    };
    let config = ClickHouseConfig::default();
    let events = synthetic_events(33, DataType::ALL.len() * 40);
    let mut inserts = Vec::new();
    for _copy in 0..2 {
        for dt in DataType::ALL {
            let rows = Rows::from_events(dt, &events_of(&events, dt)).unwrap();
            inserts.push(insert_values_sql(Dialect::Modern, &config.hot_database, &rows).unwrap());
        }
    }
    assert_schema_and_dedup(&python, &exec, &config, &events, inserts);
}

/// The bytes `ClickHouseWriter` sends (recorded from its HTTP request) load into the modern column types:
/// one set of row types serves `Int64` on 18.16 and `DateTime64(3)`/`LowCardinality` on 23.8+.
#[tokio::test]
async fn the_writers_rowbinary_bytes_load_into_modern_columns_on_chdb() {
    let Some((python, exec)) = chdb("the_writers_rowbinary_bytes_load_into_modern_columns_on_chdb")
    else {
        return;
    };
    let config = ClickHouseConfig::default();
    let events = synthetic_events(34, DataType::ALL.len() * 40);
    let recorder = BodyRecorder::start().await.unwrap();
    let client = clickhouse::Client::default()
        .with_url(&recorder.url)
        .with_validation(false)
        .with_compression(clickhouse::Compression::None)
        .with_database(&config.hot_database);
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for dt in DataType::ALL {
        let rows = Rows::from_events(dt, &events_of(&events, dt)).unwrap();
        insert_rowbinary(&client, &rows).await.unwrap();
        let bodies = recorder.bodies();
        assert_eq!(bodies.len(), files.len() + 1, "one INSERT request per call");
        let path = tmp.path().join(format!("{dt}.rowbinary"));
        std::fs::write(&path, bodies.last().unwrap()).unwrap();
        files.push((dt, path));
    }
    let mut inserts = Vec::new();
    for _copy in 0..2 {
        for (dt, path) in &files {
            let structure = structure(Dialect::Modern, *dt).replace('\'', "\\'");
            inserts.push(format!(
                "INSERT INTO {}.{dt} SELECT * FROM file('{}', 'RowBinary', '{structure}')",
                config.hot_database,
                path.display()
            ));
        }
    }
    assert_schema_and_dedup(&python, &exec, &config, &events, inserts);
}
