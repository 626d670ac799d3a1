use super::*;
use crate::stats::Gap;
use marketprism_model::DataType;

fn id(data_type: DataType, symbol: &str) -> StreamId {
    StreamId {
        exchange: "binance_derivatives".into(),
        market_type: "perpetual".into(),
        data_type,
        symbol: symbol.into(),
    }
}

/// 10 whole minutes, 100 trades each at 10 ms latency, except minute 3 (empty) and 2 trades at 500 ms.
fn trades_with_one_empty_minute() -> StreamStats {
    let mut s = StreamStats::default();
    for minute in 0..10 {
        if minute == 3 {
            continue;
        }
        s.add_rows(minute * 60_000 + 1_000, 10, 100);
    }
    s.add_rows(5 * 60_000, 500, 2);
    s
}

const TEN_MINUTES: Range = Range {
    from_ms: 0,
    to_ms: 600_000,
};

#[test]
fn figures_of_a_stream_are_exact() {
    let mut s = trades_with_one_empty_minute();
    s.duplicates = 3;
    s.add_gap(Gap {
        start_ms: 180_000,
        end_ms: 240_000,
        cause: "disconnect".into(),
    });
    let r = judge_stream(
        &id(DataType::Trades, "BTCUSDT"),
        &s,
        TEN_MINUTES,
        &Thresholds::default(),
    );
    assert_eq!(r.rows, 902);
    assert_eq!(r.whole_minutes, 10);
    assert_eq!(r.empty_minutes, 1);
    assert_eq!(r.rows_per_minute[3], 0);
    assert_eq!(r.rows_per_minute[5], 102);
    assert_eq!(r.duplicates, 3);
    let lat = r.latency.unwrap();
    assert_eq!((lat.p50_ms, lat.p99_ms, lat.max_ms), (10, 10, 500));
    assert_eq!(r.gaps.count, 1);
    assert_eq!(r.gaps.duration_ms, 60_000);
    assert_eq!(r.gaps.causes["disconnect"], 1);
    assert!((r.events_per_hour - 902.0 * 6.0).abs() < 1e-9);
    // No thresholds: nothing judged, so the stream passes.
    assert!(r.checks.is_empty());
    assert_eq!(r.verdict, Verdict::Pass);
}

#[test]
fn one_empty_minute_in_ten_fails_the_harvesters_criterion() {
    let criteria = Criteria::default();
    let r = judge_stream(
        &id(DataType::Trades, "BTCUSDT"),
        &trades_with_one_empty_minute(),
        TEN_MINUTES,
        &criteria.for_type(DataType::Trades),
    );
    let empty = r
        .checks
        .iter()
        .find(|c| c.criterion == "max_empty_minute_ratio")
        .unwrap();
    assert_eq!(empty.value, Some(0.1));
    assert!(!empty.pass);
    let p99 = r
        .checks
        .iter()
        .find(|c| c.criterion == "max_latency_p99_ms")
        .unwrap();
    assert!(p99.pass, "{p99:?}");
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn the_verdict_is_the_worst_streams_and_expected_silent_streams_fail() {
    let mut observed = Observed::new();
    let mut good = StreamStats::default();
    for minute in 0..10 {
        good.add_rows(minute * 60_000, 5, 10);
    }
    observed.insert(id(DataType::Trades, "BTCUSDT"), good.clone());
    let criteria = Criteria::default();
    let all_good = evaluate(&observed, &[], TEN_MINUTES, &criteria, "t".into());
    assert_eq!(all_good.verdict, Verdict::Pass, "{:?}", all_good.failures);

    let silent = id(DataType::Trades, "ETHUSDT");
    let report = evaluate(
        &observed,
        std::slice::from_ref(&silent),
        TEN_MINUTES,
        &criteria,
        "t".into(),
    );
    assert_eq!(report.verdict, Verdict::Fail);
    assert_eq!(report.streams.len(), 2);
    assert!(
        report.failures[0].starts_with(&format!("{silent}: min_rows 0")),
        "{:?}",
        report.failures
    );
    let summary: serde_json::Value = serde_json::from_str(&report.summary_json()).unwrap();
    assert_eq!(summary["verdict"], "fail");
    assert_eq!(summary["failing_streams"], 1);
}

#[test]
fn no_stream_at_all_fails() {
    let r = evaluate(
        &Observed::new(),
        &[],
        TEN_MINUTES,
        &Criteria::default(),
        "t".into(),
    );
    assert_eq!(r.verdict, Verdict::Fail);
}

#[test]
fn signal_events_are_judged_by_rate() {
    let criteria = Criteria::default();
    let limits = criteria.for_type(DataType::SignalEvents);
    let mut s = StreamStats::default();
    // 10 minutes = 1/6 h: 1000/72 per hour needs ≥ 2.31 rows; 2 fail, 3 pass.
    s.add_rows(1_000, 0, 2);
    let r = judge_stream(
        &id(DataType::SignalEvents, "BTCUSDT"),
        &s,
        TEN_MINUTES,
        &limits,
    );
    assert_eq!(r.verdict, Verdict::Fail);
    s.add_rows(2_000, 0, 1);
    let r = judge_stream(
        &id(DataType::SignalEvents, "BTCUSDT"),
        &s,
        TEN_MINUTES,
        &limits,
    );
    assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.checks);
}

#[test]
fn summary_fits_a_termination_message() {
    let mut observed = Observed::new();
    for n in 0..300 {
        observed.insert(
            id(DataType::Trades, &format!("SYM{n}USDT")),
            StreamStats::default(),
        );
    }
    let r = evaluate(
        &observed,
        &[],
        TEN_MINUTES,
        &Criteria::default(),
        "t".into(),
    );
    assert!(r.failures.len() > 300);
    assert!(r.summary_json().len() <= 4_096);
}

#[test]
fn figures_for_people() {
    assert_eq!(number(300.0), "300");
    assert_eq!(number(0.1), "0.1000");
    assert_eq!(number(0.016393), "0.01639");
    assert_eq!(number(1098.04), "1098");
}
