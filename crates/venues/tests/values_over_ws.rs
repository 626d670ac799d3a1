//! Values that cannot be stored exactly, through the connection path (issue 10, section 3): a scripted
//! Binance spot server sends a microsecond trade time and a quantity with 30 fractional digits. Each is
//! rejected and counted, and leaves a `rejected` gap on its own stream only; nothing is rounded.

use futures::{SinkExt, StreamExt};
use marketprism_config::Config;
use marketprism_model::{DataType, Event, GapCause, Payload, now_ms};
use marketprism_telemetry::Health;
use marketprism_venues::connection::run_connection;
use marketprism_venues::connection::session::SessionCtx;
use marketprism_venues::plan::ws_plans;
use marketprism_venues::rate_limit::RateLimiter;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

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
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let _subscribe = ws.next().await;
        ws.send(Message::text(r#"{"result":null,"id":1}"#))
            .await
            .unwrap();
        let t = 1_700_000_000_000u64;
        for frame in [
            trade("BTCUSDT", 1, t, "0.5"),
            trade("BTCUSDT", 2, t * 1_000 + 123, "0.5"), // microseconds
            trade("BTCUSDT", 3, t + 3, "0.000000000000000000000000000001"),
            trade("ETHUSDT", 70, t + 4, "1"),
            trade("BTCUSDT", 4, t + 5, "0.25"),
        ] {
            ws.send(Message::text(frame)).await.unwrap();
        }
        futures::future::pending::<()>().await;
    });
    let yaml = format!(
        "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: [trades]\n    endpoints: {{ws_url: \"{url}\", rest_url: \"http://127.0.0.1:9\"}}\n"
    );
    let config = Config::from_yaml(&yaml).unwrap();
    let ex = &config.exchanges[0];
    let plan = ws_plans(
        ex,
        &marketprism_venues::test_support::simulator_instruments(ex.exchange),
    )
    .remove(0);
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let ctx = Arc::new(SessionCtx {
        plan,
        // The production REST client and trust store (public roots), as `spawn_connectors` builds them.
        http: marketprism_venues::rest_client(&Default::default()),
        tls: Default::default(),
        limiter: RateLimiter::new(10, 10.0),
        signals: None,
    });
    tokio::spawn(run_connection(ctx, tx, Health::new(), shutdown.clone()));
    let mut events: Vec<Event> = Vec::new();
    let done = |ev: &[Event]| {
        ev.iter()
            .any(|e| matches!(&e.payload, Payload::Trade(t) if t.trade_id == "4"))
            && ev
                .iter()
                .any(|e| matches!(&e.payload, Payload::Trade(t) if t.trade_id == "70"))
    };
    while !done(&events) {
        let e = tokio::time::timeout(Duration::from_secs(15), rx.recv())
            .await
            .expect("events in time")
            .unwrap();
        events.push(e);
    }
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
