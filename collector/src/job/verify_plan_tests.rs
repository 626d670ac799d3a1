//! Unit tests of [`super`] (verify's pure pieces).

use super::*;

fn filter(from_ms: i64, to_ms: i64) -> Filter {
    Filter::range(from_ms, to_ms)
}

#[test]
fn plan_is_sorted_unique_filtered_and_ids_round_trip() {
    let day0 = 20_000 * DAY_MS;
    let found = vec![
        (
            DataType::Trades,
            Exchange::OkxSpot,
            "ETH-USDT".to_string(),
            day0 + 5,
        ),
        (
            DataType::Trades,
            Exchange::BinanceSpot,
            "BTC-USDT".into(),
            day0 + DAY_MS,
        ),
        (
            DataType::Trades,
            Exchange::BinanceSpot,
            "BTC-USDT".into(),
            day0 + 9,
        ),
        (
            DataType::Orderbooks,
            Exchange::BinanceSpot,
            "BTC-USDT".into(),
            day0,
        ),
        (
            DataType::Trades,
            Exchange::OkxSpot,
            "ETH-USDT".into(),
            day0 + 77,
        ),
        (
            DataType::Gaps,
            Exchange::OkxSpot,
            "ETH-USDT".into(),
            day0 + 1,
        ),
    ];
    let plan = verify_plan(found.clone(), &filter(i64::MIN, i64::MAX));
    let ids: Vec<String> = plan.iter().map(VerifyUnit::id).collect();
    let (d0, d1) = (day_name(day0), day_name(day0 + DAY_MS));
    assert_eq!(
        ids,
        [
            format!("gaps/{d0}/okx_spot/ETH-USDT"),
            format!("orderbooks/{d0}/binance_spot/BTC-USDT"),
            format!("trades/{d0}/binance_spot/BTC-USDT"),
            format!("trades/{d0}/okx_spot/ETH-USDT"),
            format!("trades/{d1}/binance_spot/BTC-USDT"),
        ]
    );
    for u in &plan {
        assert_eq!(parse_unit(&u.id()).as_ref(), Some(u));
    }
    assert_eq!(parse_unit("trades/2026-13-01/okx_spot/X"), None);
    assert_eq!(parse_unit("nope/2026-11-01/okx_spot/X"), None);

    let mut f = filter(day0 + DAY_MS, day0 + 2 * DAY_MS);
    assert_eq!(
        verify_plan(found.clone(), &f).len(),
        1,
        "days outside the range"
    );
    f = filter(i64::MIN, i64::MAX);
    f.symbols = vec!["ETH-USDT".into()];
    f.data_types = vec![DataType::Trades];
    assert_eq!(verify_plan(found.clone(), &f).len(), 1);
    f.exchanges = vec![Exchange::BinanceSpot];
    assert!(verify_plan(found, &f).is_empty());
}

#[test]
fn a_window_is_the_day_clipped_to_the_range() {
    let day0 = 20_000 * DAY_MS;
    let u = VerifyUnit {
        data_type: DataType::Trades,
        day_ms: day0,
        exchange: Exchange::OkxSpot,
        symbol: "BTC-USDT".into(),
    };
    assert_eq!(u.window(&filter(i64::MIN, i64::MAX)), (day0, day0 + DAY_MS));
    let f = u.filter(&filter(day0 + 10, day0 + 20));
    assert_eq!((f.from_ms, f.to_ms), (day0 + 10, day0 + 20));
    assert_eq!(f.symbols, ["BTC-USDT"]);
}

fn figures(rows: u64) -> Figures {
    Figures {
        rows_final: rows,
        distinct_keys: rows,
        duplicates: 0,
        min_ts_ms: (rows > 0).then_some(10),
        max_ts_ms: (rows > 0).then_some(10 + rows as i64),
        gaps: 1,
        checksum: None,
    }
}

#[test]
fn equal_sides_have_no_discrepancy_and_missing_rows_name_the_side() {
    let f = figures(5);
    assert!(compare(Side::Hot, &f, Side::Cold, &f, 0, 0).is_empty());
    let d = compare(Side::Hot, &f, Side::Cold, &figures(3), 2, 0);
    assert_eq!(
        d[0],
        Discrepancy::Missing {
            side: Side::Cold,
            from: Side::Hot,
            rows: 2
        }
    );
    assert!(d[0].repairable());
    let names: Vec<String> = d[1..]
        .iter()
        .map(|x| match x {
            Discrepancy::Differs { figure, .. } => figure.clone(),
            _ => panic!("{x:?}"),
        })
        .collect();
    assert_eq!(names, ["rows_final", "distinct_keys", "max_ts_ms"]);
    // Only in cold (hot's TTL) is reported, not repaired; nor is ClickHouse beyond Parquet.
    let d = compare(Side::Hot, &figures(3), Side::Cold, &f, 0, 2);
    assert!(!d[0].repairable());
    let d = compare(Side::Parquet, &f, Side::Hot, &figures(3), 2, 1);
    assert!(d[0].repairable() && !d[1].repairable());
    assert_eq!(d[0].describe(), "2 rows of parquet missing in hot");
}

#[test]
fn figures_of_events_count_copies_keys_times_and_gaps() {
    use marketprism_model::synthetic::synthetic_events;
    let events: Vec<Event> = synthetic_events(5, 200)
        .into_iter()
        .filter(|e| e.data_type() == DataType::Trades)
        .collect();
    let mut rows = events.clone();
    rows.push(events[3].clone());
    let gaps: Vec<Event> = synthetic_events(5, 200)
        .into_iter()
        .filter(|e| e.data_type() == DataType::Gaps)
        .collect();
    let f = event_figures(&rows, &[gaps.clone(), gaps.clone()].concat());
    assert_eq!(f.distinct_keys, events.len() as u64);
    assert_eq!((f.rows_final, f.duplicates), (events.len() as u64, 1));
    assert_eq!(f.min_ts_ms, Some(events[0].ts_ms));
    assert_eq!(f.max_ts_ms, events.last().map(|e| e.ts_ms));
    assert_eq!(f.gaps, gaps.len() as u64, "a gap written twice is one gap");
    assert_eq!(
        event_figures(&[], &[]),
        Figures {
            checksum: Some(0),
            ..Figures::default()
        }
    );
}

#[test]
fn duplicates_are_reported_per_side_and_tabled() {
    let mut f = figures(4);
    f.duplicates = 3;
    let d = duplicates(&[(Side::Hot, &f), (Side::Cold, &figures(4))]);
    assert_eq!(
        d,
        [Discrepancy::Duplicates {
            side: Side::Hot,
            rows: 3
        }]
    );
    let r = UnitResult {
        unit: "trades/2026-11-30/okx_spot/BTC-USDT".into(),
        hot: f,
        cold: figures(4),
        parquet: None,
        discrepancies: d,
        repaired_rows: None,
    };
    let clean = UnitResult {
        discrepancies: vec![],
        unit: "x".into(),
        ..r.clone()
    };
    let table = discrepancy_table(&[r.clone(), clean.clone()]);
    assert!(
        table.contains("trades/2026-11-30/okx_spot/BTC-USDT  3 duplicates before FINAL in hot"),
        "{table}"
    );
    assert!(
        table.ends_with("1 discrepancies in 1 of 2 units\n"),
        "{table}"
    );
    assert_eq!(discrepancy_table(&[clean]), "no discrepancy in 1 units\n");
    let line = serde_json::to_string(&r).unwrap();
    assert!(
        line.contains(r#""kind":"duplicates","side":"hot","rows":3"#),
        "{line}"
    );
    assert_eq!(serde_json::from_str::<UnitResult>(&line).unwrap(), r);
}

#[test]
fn values_that_differ_under_the_same_key_are_named() {
    use marketprism_model::synthetic::synthetic_events;
    let a = synthetic_events(7, 40);
    let mut b = a.clone();
    assert_eq!(values_differ(&a, &b), (0, vec![]));
    // A changed value under the same key (recv time is a column too), and a key only one side has.
    b[3].recv_ts_ms += 1;
    let only_a = b.remove(5);
    let (n, keys) = values_differ(&a, &b);
    assert_eq!((n, keys), (1, vec![a[3].msg_id()]));
    assert_ne!(only_a.msg_id(), a[3].msg_id());
    // Another copy of the key with the equal values passes (a Parquet dataset's duplicate).
    b.push(a[3].clone());
    assert_eq!(values_differ(&a, &b).0, 0);
    let (fa, fb) = (event_figures(&a, &[]), event_figures(&a[..39], &[]));
    assert!(fa.checksum.is_some() && fa.checksum != fb.checksum);
    let d = Discrepancy::ValuesDiffer {
        a: Side::Hot,
        b: Side::Cold,
        rows: 1,
        keys: vec!["k".into()],
    };
    assert!(!d.repairable());
    assert!(
        d.describe()
            .contains("differ in value between hot and cold (same key): k")
    );
}
