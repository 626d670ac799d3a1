use super::*;
use crate::store::parquet::compact_io::{
    CompactOptions, compact_dataset, compacted_from, merge_steps, part_file,
};
use crate::store::parquet::{read_file, write_file};
use crate::store::rows::Rows;
use marketprism_model::{
    DataType, Decimal, Event, Exchange, MarketType, Payload, QuantityUnit, Side, Symbol, Trade,
};
use std::path::Path;

/// 2026-01-10 00:00:00 UTC.
const T0: i64 = 1_768_003_200_000;
const MIN: i64 = 60_000;

fn part(name: &str, min: i64, max: i64) -> PartFile {
    PartFile {
        name: name.into(),
        min_ts_ms: min,
        max_ts_ms: max,
        rows: 10,
    }
}

#[test]
fn an_hour_is_closed_once_it_ended_grace_ago() {
    let f = part("part-a-1.parquet", T0 + 5 * MIN, T0 + 59 * MIN);
    let grace = 2 * MIN;
    assert!(!is_closed(&f, T0 + HOUR_MS, grace), "hour just ended");
    assert!(!is_closed(&f, T0 + HOUR_MS + grace - 1, grace));
    assert!(is_closed(&f, T0 + HOUR_MS + grace, grace));
    // A part reaching into the next hour closes with that hour.
    let spanning = part("part-a-2.parquet", T0 + 59 * MIN, T0 + 61 * MIN);
    assert!(!is_closed(&spanning, T0 + HOUR_MS + grace, grace));
    assert!(is_closed(&spanning, T0 + 2 * HOUR_MS + grace, grace));
}

#[test]
fn plan_groups_closed_files_by_hour_and_skips_single_files_and_open_hours() {
    let now = T0 + 3 * HOUR_MS + 30 * MIN; // hour 3 open
    let files = vec![
        part("part-r-0000000002.parquet", T0 + 10 * MIN, T0 + 11 * MIN),
        part("part-r-0000000001.parquet", T0 + MIN, T0 + 2 * MIN),
        part("part-r-0000000003.parquet", T0 + 59 * MIN, T0 + 61 * MIN), // hour 0 by its first row
        part(
            "part-r-0000000004.parquet",
            T0 + HOUR_MS + MIN,
            T0 + HOUR_MS + MIN,
        ), // alone in hour 1
        part(
            "compacted-20260110T02-00.parquet",
            T0 + 2 * HOUR_MS,
            T0 + 2 * HOUR_MS + MIN,
        ),
        part(
            "part-s-0000000009.parquet",
            T0 + 2 * HOUR_MS + 5,
            T0 + 2 * HOUR_MS + 9,
        ), // late part
        part(
            "part-r-0000000005.parquet",
            T0 + 3 * HOUR_MS,
            T0 + 3 * HOUR_MS + MIN,
        ), // open
        part(
            "part-r-0000000006.parquet",
            T0 + 3 * HOUR_MS + 2,
            T0 + 3 * HOUR_MS + MIN,
        ),
        part("notes.parquet", T0, T0), // not ours
    ];
    let plan = plan_partition(&files, now, 2 * MIN);
    assert_eq!(plan.len(), 2, "{plan:?}");
    assert_eq!(plan[0].hour_ms, T0);
    assert_eq!(
        plan[0].inputs,
        [
            "part-r-0000000001.parquet",
            "part-r-0000000002.parquet",
            "part-r-0000000003.parquet"
        ],
        "ordered by first row"
    );
    assert_eq!(plan[0].rows, 30);
    assert!(
        plan[0].output.starts_with("compacted-20260110T00-"),
        "{}",
        plan[0].output
    );
    assert_eq!(plan[1].hour_ms, T0 + 2 * HOUR_MS);
    assert_eq!(
        plan[1].inputs[0], "compacted-20260110T02-00.parquet",
        "earlier merge first"
    );
    // Same inputs, same name (a rolled-back merge redone lands on the same file); others differ.
    assert_eq!(plan[0].output, compacted_name(T0, &plan[0].inputs));
    assert_ne!(plan[0].output, compacted_name(T0, &plan[0].inputs[..2]));
    assert_eq!(
        intent_name(&plan[0].output),
        format!(
            ".compaction-{}.intent",
            &plan[0].output[10..plan[0].output.len() - 8]
        )
    );
}

#[test]
fn retention_deletes_whole_days_before_today_minus_n() {
    let dates: Vec<String> = [
        "2026-01-07",
        "2026-01-08",
        "2026-01-09",
        "2026-01-10",
        "invalid-date",
        "2026-1-1",
    ]
    .map(String::from)
    .into();
    let now = T0 + 23 * HOUR_MS; // late on 2026-01-10
    assert_eq!(
        expired_dates(&dates, now, 0),
        Vec::<String>::new(),
        "0 keeps all"
    );
    assert_eq!(expired_dates(&dates, now, 1), ["2026-01-07", "2026-01-08"]);
    assert_eq!(expired_dates(&dates, now, 2), ["2026-01-07"]);
    assert_eq!(
        expired_dates(&dates, T0, 2),
        ["2026-01-07"],
        "midnight: the same cut"
    );
    assert_eq!(expired_dates(&dates, now, 30), Vec::<String>::new());
}

#[test]
fn recovery_decides_every_crash_point_of_the_protocol() {
    let s = |temp, output, inputs_left| IntentState {
        temp,
        output,
        inputs_left,
        inputs_total: 3,
    };
    // After the intent, before any delete: undo (the inputs are all there).
    assert_eq!(recovery(s(true, false, 3)), Recovery::RollBack);
    // Some or all inputs deleted, temporary not yet renamed: finish the move.
    assert_eq!(recovery(s(true, false, 2)), Recovery::RollForward);
    assert_eq!(recovery(s(true, false, 0)), Recovery::RollForward);
    // Renamed, intent not yet deleted.
    assert_eq!(recovery(s(false, true, 0)), Recovery::Finish);
    assert_eq!(recovery(s(false, true, 1)), Recovery::Finish);
    // Outside the protocol.
    assert_eq!(recovery(s(false, false, 3)), Recovery::RollBack);
    assert_eq!(recovery(s(false, false, 1)), Recovery::Broken);
}

#[test]
fn leftovers_are_told_apart() {
    assert_eq!(
        leftover_kind(".part-r-1.parquet.tmp"),
        Some(Leftover::FlushTemp)
    );
    assert_eq!(
        leftover_kind(".compacted-x.parquet.tmp"),
        Some(Leftover::CompactionTemp)
    );
    assert_eq!(
        leftover_kind(".compaction-x.intent"),
        Some(Leftover::Intent)
    );
    assert_eq!(
        leftover_kind(".compaction-x.intent.tmp"),
        Some(Leftover::IntentTemp)
    );
    assert_eq!(
        leftover_kind(".deleting-date=2026-01-01"),
        Some(Leftover::Deleting)
    );
    assert_eq!(leftover_kind("part-r-1.parquet"), None);
    assert_eq!(leftover_kind(".quarantine"), None);
}

fn trade(i: i64, ts_ms: i64) -> Event {
    Event {
        exchange: Exchange::BinanceDerivatives,
        market_type: MarketType::Perpetual,
        symbol: Symbol::new("BTC-USDT").unwrap(),
        ts_ms,
        recv_ts_ms: ts_ms + 3,
        payload: Payload::Trade(Trade {
            trade_id: i.to_string(),
            price: Decimal::new(9_500_000 + i, 2),
            quantity: Decimal::new(15, 3),
            raw_quantity: Decimal::new(15, 3),
            quantity_unit: QuantityUnit::Base,
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
        }),
    }
}

/// Writes `parts` files of `per` trades each, in hour 0 of `T0`; returns the partition directory.
fn write_parts(root: &Path, parts: i64, per: i64) -> std::path::PathBuf {
    let dir = root.join("date=2026-01-10/exchange=binance_derivatives/data_type=trades");
    for p in 0..parts {
        let events: Vec<Event> = (0..per)
            .map(|k| trade(p * per + k, T0 + (p * per + k) * 1000))
            .collect();
        let rows = Rows::from_events(DataType::Trades, &events).unwrap();
        write_file(&dir, &format!("part-r-{p:010}.parquet"), &rows).unwrap();
    }
    dir
}

/// Every row of every visible data file, as sorted debug strings (a multiset).
fn visible_rows(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name.ends_with(".parquet") {
            let rows = read_file(&e.path(), DataType::Trades).unwrap();
            out.extend(rows.to_events().unwrap().iter().map(|e| format!("{e:?}")));
        }
    }
    out.sort();
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn opts(merge: bool) -> CompactOptions {
    CompactOptions {
        now_ms: T0 + 2 * HOUR_MS,
        grace_ms: 2 * MIN,
        retention_days: 0,
        merge,
    }
}

#[test]
fn a_crash_after_any_step_of_a_merge_loses_and_duplicates_nothing() {
    // 3 inputs: temp, intent, 3 deletes, rename, intent delete = 7 steps; 0..=7 crash points.
    for crash_after in 0..=7 {
        let root = tempfile::tempdir().unwrap();
        let dir = write_parts(root.path(), 3, 20);
        let before = visible_rows(&dir);
        assert_eq!(before.len(), 60);
        let files: Vec<PartFile> = names(&dir)
            .iter()
            .map(|n| part_file(&dir, n).unwrap())
            .collect();
        let plan = plan_partition(&files, opts(true).now_ms, opts(true).grace_ms);
        assert_eq!(plan.len(), 1);
        assert_eq!(
            merge_steps(&dir, &plan[0], crash_after).unwrap(),
            crash_after
        );
        let during = visible_rows(&dir);
        // Never a duplicate, whatever a reader sees mid-merge.
        let mut dedup = during.clone();
        dedup.dedup();
        assert_eq!(
            dedup.len(),
            during.len(),
            "crash after {crash_after}: a row twice"
        );
        // Recovery only: every row exactly once, nothing hidden left.
        let r = compact_dataset(root.path(), &opts(false), &|| false).unwrap();
        assert!(r.problems.is_empty(), "{r:?}");
        assert_eq!(
            visible_rows(&dir),
            before,
            "crash after {crash_after}: {r:?}"
        );
        let left = names(&dir);
        assert!(
            left.iter().all(|n| !n.starts_with('.')),
            "crash after {crash_after}: {left:?}"
        );
        let merged = left.len() == 1;
        match crash_after {
            0..=2 => assert_eq!(left.len(), 3, "rolled back: {left:?}"),
            _ => assert!(
                merged && left[0] == plan[0].output,
                "rolled forward: {left:?}"
            ),
        }
        // The next pass compacts what was rolled back.
        compact_dataset(root.path(), &opts(true), &|| false).unwrap();
        assert_eq!(names(&dir), [plan[0].output.clone()]);
        assert_eq!(visible_rows(&dir), before);
    }
}

#[test]
fn a_pass_merges_closed_hours_keeps_row_order_and_applies_retention() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_parts(root.path(), 5, 10);
    let old = root
        .path()
        .join("date=2026-01-01/exchange=x/data_type=trades");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("part-a.parquet"), b"old").unwrap();
    let before = visible_rows(&dir);
    let parts = names(&dir);
    let mut o = opts(true);
    o.retention_days = 3;
    let r = compact_dataset(root.path(), &o, &|| false).unwrap();
    assert_eq!(
        (r.merges, r.files_merged, r.rows_merged),
        (1, 5, 50),
        "{r:?}"
    );
    assert_eq!(r.dates_deleted, ["2026-01-01"]);
    assert!(!root.path().join("date=2026-01-01").exists());
    let left = names(&dir);
    assert_eq!(left.len(), 1);
    let events = read_file(&dir.join(&left[0]), DataType::Trades)
        .unwrap()
        .to_events()
        .unwrap();
    assert!(
        events.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms),
        "order kept"
    );
    assert_eq!(visible_rows(&dir), before);
    assert_eq!(
        compacted_from(&dir.join(&left[0])).unwrap(),
        Some(parts),
        "the footer names the files it replaced"
    );
    // A second pass has nothing to do; a late part joins the hour's merged file.
    let r = compact_dataset(root.path(), &o, &|| false).unwrap();
    assert_eq!(r.merges, 0);
    let late = Rows::from_events(DataType::Trades, &[trade(999, T0 + 7)]).unwrap();
    write_file(&dir, "part-z-0000000000.parquet", &late).unwrap();
    let r = compact_dataset(root.path(), &o, &|| false).unwrap();
    assert_eq!((r.merges, r.files_merged), (1, 2));
    assert_eq!(names(&dir).len(), 1);
    assert_eq!(visible_rows(&dir).len(), 51);
    let sources = compacted_from(&dir.join(&names(&dir)[0])).unwrap().unwrap();
    assert!(
        sources.contains(&left[0]) && sources.contains(&"part-z-0000000000.parquet".to_owned()),
        "a merge of a merged file keeps its sources: {sources:?}"
    );
    assert_eq!(sources.len(), 5 + 2);
}

#[test]
fn an_unreadable_file_is_left_alone_and_reported() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_parts(root.path(), 2, 5);
    std::fs::write(dir.join("part-r-9999999999.parquet"), b"PAR1 cut short").unwrap();
    let r = compact_dataset(root.path(), &opts(true), &|| false).unwrap();
    assert_eq!(r.merges, 1);
    assert_eq!(r.problems.len(), 1, "{r:?}");
    assert!(r.problems[0].contains("part-r-9999999999.parquet"), "{r:?}");
    assert!(dir.join("part-r-9999999999.parquet").exists());
}

#[test]
fn a_second_compaction_of_the_same_dataset_is_refused_while_one_runs() {
    let root = tempfile::tempdir().unwrap();
    write_parts(root.path(), 2, 5);
    let held = std::fs::File::open(root.path()).unwrap();
    held.try_lock().unwrap();
    let err = compact_dataset(root.path(), &opts(true), &|| false).unwrap_err();
    assert!(err.to_string().contains("another compaction"), "{err}");
    drop(held);
    assert_eq!(
        compact_dataset(root.path(), &opts(true), &|| false)
            .unwrap()
            .merges,
        1
    );
}
