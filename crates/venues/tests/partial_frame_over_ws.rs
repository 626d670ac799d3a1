//! A frame of several facts with one bad value, through the connection path: a scripted Binance
//! USDⓈ-M server sends a `!markPrice@arr` array whose BTCUSDT element carries a funding rate with 30
//! fractional digits. Only that fact is lost: it is counted and leaves a `rejected` gap on BTC's
//! funding stream, while ETH's element of the same frame lands.

mod common;

use marketprism_model::{DataType, Event, GapCause, Payload};

/// A `markPriceUpdate` element as Binance documents it (`r`: funding rate, `T`: next funding time).
fn mark(symbol: &str, e_ms: u64, rate: &str) -> String {
    format!(
        r#"{{"e":"markPriceUpdate","E":{e_ms},"s":"{symbol}","p":"42000.1","i":"41999.9","P":"42001.0","r":"{rate}","T":{next}}}"#,
        next = e_ms + 3_600_000
    )
}

#[tokio::test]
async fn one_bad_element_of_an_array_frame_costs_only_its_own_fact() {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let t = marketprism_model::now_ms() as u64;
    let url = common::scripted_binance(vec![
        format!(
            "[{},{}]",
            mark("BTCUSDT", t, "0.000000000000000000000000000001"),
            mark("ETHUSDT", t, "0.0001")
        ),
        // A later good BTC mark: the connection and BTC's stream go on.
        mark("BTCUSDT", t + 1_000, "0.0002"),
    ])
    .await;
    let yaml = format!(
        "exchanges:\n  - exchange: binance_derivatives\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: [funding_rates]\n    endpoints: {{ws_url: \"{url}\", rest_url: \"http://127.0.0.1:9\"}}\n"
    );
    let (mut rx, shutdown) = common::run_first_connection(&yaml);
    let funding = |e: &Event| match &e.payload {
        Payload::FundingRate(f) => Some((e.symbol.as_str().to_owned(), f.funding_rate)),
        _ => None,
    };
    let events =
        common::events_until(&mut rx, |ev| ev.iter().filter_map(funding).count() >= 2).await;
    shutdown.cancel();
    let rates: Vec<_> = events
        .iter()
        .filter_map(funding)
        .map(|(s, r)| (s, r.map(|r| r.to_string())))
        .collect();
    assert_eq!(
        rates,
        [
            ("ETH-USDT".to_owned(), Some("0.0001".to_owned())),
            ("BTC-USDT".to_owned(), Some("0.0002".to_owned()))
        ],
        "the good element of the bad frame lands; the bad one is not stored, not even rounded"
    );
    let gaps: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Gap(g) => Some((e.symbol.as_str(), g)),
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let (symbol, gap) = gaps[0];
    assert_eq!(
        (symbol, gap.data_type, gap.cause),
        ("BTC-USDT", DataType::FundingRates, GapCause::Rejected)
    );
    assert_eq!(gap.start_ms, t as i64, "from the rejected fact's own time");
    let rendered = metrics.render();
    let line = rendered
        .lines()
        .find(|l| {
            l.starts_with("marketprism_exchange_bad_frames_total")
                && l.contains("reason=\"out_of_range\"")
        })
        .unwrap_or_else(|| panic!("the rejection is counted: {rendered}"));
    assert!(line.ends_with(" 1"), "{line}");
}
