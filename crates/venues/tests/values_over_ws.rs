//! Values that cannot be stored exactly, through the connection path (issue 10, section 3): a scripted
//! Binance spot server sends a microsecond trade time and a quantity with 30 fractional digits. Each is
//! rejected and counted, and leaves a `rejected` gap on its own stream only; nothing is rounded.

mod common;

use marketprism_model::{DataType, Event, GapCause, Payload, now_ms};

fn trade(symbol: &str, id: u64, t: u64, q: &str) -> String {
    format!(
        r#"{{"e":"trade","E":{e},"s":"{symbol}","t":{id},"p":"42000.10","q":"{q}","T":{t},"m":false}}"#,
        e = 1_700_000_000_000u64 + id
    )
}

#[tokio::test]
async fn rejected_values_leave_a_rejected_gap_on_their_stream_only() {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let t = 1_700_000_000_000u64;
    let url = common::scripted_binance(vec![
        trade("BTCUSDT", 1, t, "0.5"),
        trade("BTCUSDT", 2, t * 1_000 + 123, "0.5"), // microseconds
        trade("BTCUSDT", 3, t + 3, "0.000000000000000000000000000001"),
        trade("ETHUSDT", 70, t + 4, "1"),
        trade("BTCUSDT", 4, t + 5, "0.25"),
    ])
    .await;
    let yaml = format!(
        "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: [trades]\n    endpoints: {{ws_url: \"{url}\", rest_url: \"http://127.0.0.1:9\"}}\n"
    );
    let (mut rx, shutdown) = common::run_first_connection(&yaml);
    let done = |ev: &[Event]| {
        ev.iter()
            .any(|e| matches!(&e.payload, Payload::Trade(t) if t.trade_id == "4"))
            && ev
                .iter()
                .any(|e| matches!(&e.payload, Payload::Trade(t) if t.trade_id == "70"))
    };
    let events = common::events_until(&mut rx, done).await;
    shutdown.cancel();
    let trades: Vec<(&str, &str)> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Trade(t) => Some((e.symbol.as_str(), t.trade_id.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        trades,
        [("BTC-USDT", "1"), ("ETH-USDT", "70"), ("BTC-USDT", "4")],
        "the rejected facts are not stored, not even rounded"
    );
    let rejected: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Gap(g) if g.cause == GapCause::Rejected => Some((e.symbol.as_str(), g)),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected
            .iter()
            .all(|(s, g)| *s == "BTC-USDT" && g.data_type == DataType::Trades)
    );
    assert!(
        rejected[0].1.detail.contains("bad_time"),
        "{:?}",
        rejected[0]
    );
    let g = rejected[0].1;
    assert!(
        g.start_ms > 1_700_000_000_000 && g.start_ms <= now_ms(),
        "a microsecond time is no place for its gap: placed at the receive time, {g:?}"
    );
    assert!(
        rejected[1].1.detail.contains("out_of_range"),
        "{:?}",
        rejected[1]
    );
    assert_eq!(
        rejected[1].1.start_ms, 1_700_000_000_003,
        "the gap starts at the rejected fact's own time"
    );
    assert!(
        events
            .iter()
            .all(|e| e.symbol.as_str() != "ETH-USDT" || e.data_type() != DataType::Gaps),
        "the other stream is untouched"
    );
    let rendered = metrics.render();
    for reason in ["bad_time", "out_of_range"] {
        let line = rendered
            .lines()
            .find(|l| {
                l.starts_with("marketprism_exchange_bad_frames_total")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .unwrap_or_else(|| panic!("{reason} counted: {rendered}"));
        assert!(line.ends_with(" 1"), "{line}");
    }
}
