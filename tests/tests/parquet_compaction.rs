//! `parquet compact` on a dataset written by the collector's real Parquet output: the real binary is
//! SIGKILLed at increasing moments, then rerun to its end; the multiset of rows is unchanged, no row is
//! ever visible twice, and one file per partition and hour remains. Then the dataset is read as one
//! hive-partitioned table with pyarrow.

use marketprism_model::{
    DataType, Decimal, Event, Exchange, MarketType, Payload, QuantityUnit, Side, Symbol, Trade,
};
use marketprism_pipeline::store::parquet::read_file;
use marketprism_tests::jobs::{data_files, write_dataset};
use marketprism_tests::process::collector_bin;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// 2026-01-09 22:30:00 UTC: the dataset spans 22:30 → 02:30, two dates and five hours.
const START: i64 = 1_767_997_800_000;
const SPAN_MS: i64 = 4 * 3_600_000;
const STEP_MS: i64 = 6_000;
const EXCHANGES: [Exchange; 2] = [Exchange::BinanceDerivatives, Exchange::OkxDerivatives];
/// Partition × hour slots: 2 exchanges × (22, 23 on the 9th; 00, 01, 02 on the 10th).
const PARTITION_HOURS: usize = 10;

fn events() -> Vec<Event> {
    let mut out = Vec::new();
    for (x, exchange) in EXCHANGES.into_iter().enumerate() {
        for i in 0..SPAN_MS / STEP_MS {
            let ts_ms = START + i * STEP_MS + x as i64;
            out.push(Event {
                exchange,
                market_type: MarketType::Perpetual,
                symbol: Symbol::new("BTC-USDT").unwrap(),
                ts_ms,
                recv_ts_ms: ts_ms + 4,
                payload: Payload::Trade(Trade {
                    trade_id: format!("{x}-{i}"),
                    price: Decimal::new(9_500_000 + i, 2),
                    quantity: Decimal::new(15 + i % 7, 3),
                    raw_quantity: Decimal::new(15 + i % 7, 3),
                    quantity_unit: QuantityUnit::Base,
                    side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
                }),
            });
        }
    }
    out
}

fn is_visible(path: &Path) -> bool {
    let name = path.file_name().unwrap().to_string_lossy();
    !name.starts_with('.') && name.ends_with(".parquet")
}

/// Every row of every visible data file as a sorted list of debug strings: a multiset of rows.
fn visible_rows(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for path in data_files(root).into_iter().filter(|p| is_visible(p)) {
        let rows = read_file(&path, DataType::Trades).unwrap();
        out.extend(rows.to_events().unwrap().iter().map(|e| format!("{e:?}")));
    }
    out.sort();
    out
}

fn compact(root: &Path) -> Command {
    let mut cmd = Command::new(collector_bin());
    cmd.args(["parquet", "compact", "--grace-s", "0", "--json", "--dir"])
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `Some(python)` with pyarrow importable: `$MARKETPRISM_TEST_PYTHON`, the test venv, `python3`.
fn python_with_pyarrow() -> Option<String> {
    let venv = std::env::var("HOME")
        .map(|h| format!("{h}/.cache/marketprism/venv/bin/python"))
        .unwrap_or_default();
    let candidates = [
        std::env::var("MARKETPRISM_TEST_PYTHON").unwrap_or_default(),
        venv,
        "python3".to_owned(),
    ];
    candidates.into_iter().filter(|c| !c.is_empty()).find(|py| {
        Command::new(py)
            .args(["-c", "import pyarrow.dataset"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

const HIVE_READ: &str = r#"
import json, sys
import pyarrow.dataset as ds
import pyarrow.compute as pc
d = ds.dataset(sys.argv[1], format="parquet", partitioning="hive")
t = d.to_table()
counts = {str(x["values"]): x["counts"] for x in pc.value_counts(t["date"]).to_pylist()}
print(json.dumps({
    "rows": t.num_rows,
    "files": len(d.files),
    "columns": t.schema.names,
    "per_date": counts,
    "data_types": sorted(set(str(v) for v in t["data_type"].to_pylist())),
}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn compaction_killed_at_any_moment_keeps_every_row_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let events = events();
    let n = events.len();
    let files_written = write_dataset(root, events, 20).await;
    let before = visible_rows(root);
    assert_eq!(before.len(), n);
    let files_before = data_files(root).len();
    assert_eq!(files_before as u64, files_written);
    assert!(files_before > 200, "many small parts: {files_before}");

    let mut interrupted = 0;
    for delay_ms in [5u64, 15, 30, 50, 80, 120, 170, 250, 400] {
        let mut child = compact(root).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.code().is_none() {
            interrupted += 1;
        }
        // Whatever the moment: no row visible twice, no row that was not there before.
        let during = visible_rows(root);
        let distinct: BTreeSet<&String> = during.iter().collect();
        assert_eq!(
            distinct.len(),
            during.len(),
            "a row visible twice after a kill at {delay_ms} ms"
        );
        let all: BTreeSet<&String> = before.iter().collect();
        assert!(
            distinct.is_subset(&all),
            "a row that was not written, after a kill at {delay_ms} ms"
        );
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} runs were killed mid-way"
    );

    let started = Instant::now();
    let out = compact(root).output().unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(visible_rows(root), before, "the row multiset changed");
    let after = data_files(root);
    let names: Vec<String> = after
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        after.len(),
        PARTITION_HOURS,
        "one file per partition and hour: {names:?}"
    );
    assert!(
        names.iter().all(|n| n.starts_with("compacted-")),
        "{names:?}"
    );
    let hours: BTreeSet<&str> = names.iter().map(|n| &n[10..21]).collect();
    assert_eq!(
        hours.into_iter().collect::<Vec<_>>(),
        [
            "20260109T22",
            "20260109T23",
            "20260110T00",
            "20260110T01",
            "20260110T02"
        ]
    );
    let hidden: Vec<_> = walk_all(root)
        .into_iter()
        .filter(|p| !is_visible(p))
        .collect();
    assert!(
        hidden.is_empty(),
        "leftovers after the last run: {hidden:?}"
    );
    eprintln!(
        "figures: {n} rows; {files_before} files before, {} after; {interrupted} of 9 runs killed mid-way; \
         last run {} ms (reported {} ms)",
        after.len(),
        elapsed.as_millis(),
        report["elapsed_ms"]
    );

    // Rerunning is a no-op.
    let again = compact(root).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["merges"], 0, "{again}");

    // One hive-partitioned table for a query engine.
    let Some(python) = python_with_pyarrow() else {
        // tests/run.sh (and CI) installs pyarrow in its venv: there, a missing reader is a failure.
        assert!(
            std::env::var_os("MARKETPRISM_TEST_PYTHON").is_none(),
            "MARKETPRISM_TEST_PYTHON has no pyarrow: run tests/scripts/install-deps.sh venv"
        );
        eprintln!(
            "SKIPPED the pyarrow read: no python with pyarrow (set MARKETPRISM_TEST_PYTHON or run tests/scripts/install-deps.sh)"
        );
        return;
    };
    let out = Command::new(python)
        .args(["-c", HIVE_READ])
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(table["rows"], n, "{table}");
    assert_eq!(table["files"], PARTITION_HOURS, "{table}");
    assert_eq!(
        table["data_types"],
        serde_json::json!(["trades"]),
        "{table}"
    );
    // 22:30 → 24:00 on the 9th (1.5 h), 00:00 → 02:30 on the 10th (2.5 h), per exchange.
    let per_hour = (3_600_000 / STEP_MS) as u64 * EXCHANGES.len() as u64;
    assert_eq!(table["per_date"]["2026-01-09"], per_hour * 3 / 2, "{table}");
    assert_eq!(table["per_date"]["2026-01-10"], per_hour * 5 / 2, "{table}");
    for col in ["date", "exchange", "data_type", "ts_ms", "price"] {
        assert!(
            table["columns"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == col),
            "{col} missing: {table}"
        );
    }
}

fn walk_all(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
