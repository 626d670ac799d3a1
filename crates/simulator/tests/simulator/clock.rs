//! Server-time endpoints, in each venue's documented shape, skewed by `clock_skew_ms`.

use crate::common::*;
use marketprism_model::Exchange;
use marketprism_simulator::Simulator;
use serde_json::{Value, json};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Reads the server time out of one venue's reply.
type ReadTime = fn(&Value) -> Option<i64>;

/// `server` was read between `before` and `after` (real ms) on a clock `skew` ms ahead.
fn assert_skewed(what: &str, server: i64, before: i64, after: i64, skew: i64) {
    assert!(
        (before + skew..=after + skew).contains(&server),
        "{what}: {server} not within [{}, {}]",
        before + skew,
        after + skew
    );
}

#[tokio::test]
async fn time_endpoints_answer_in_each_venue_shape_with_the_configured_skew() {
    let skew = -7_500;
    let sim = Simulator::start(marketprism_config::SimulatorConfig {
        clock_skew_ms: skew,
        ..fast_config(5)
    })
    .await
    .unwrap();
    let rest = |e: Exchange| sim.endpoints(e).rest_url.unwrap();
    let cases: [(Exchange, &str, ReadTime); 5] = [
        (Exchange::BinanceSpot, "/api/v3/time", |v| {
            v["serverTime"].as_i64()
        }),
        (Exchange::BinanceDerivatives, "/fapi/v1/time", |v| {
            v["serverTime"].as_i64()
        }),
        (Exchange::OkxSpot, "/api/v5/public/time", |v| {
            (v["code"] == "0" && v["msg"] == "").then_some(())?;
            v["data"][0]["ts"].as_str()?.parse().ok()
        }),
        (Exchange::OkxDerivatives, "/api/v5/public/time", |v| {
            v["data"][0]["ts"].as_str()?.parse().ok()
        }),
        (
            Exchange::DeribitDerivatives,
            "/api/v2/public/get_time",
            |v| {
                (v["jsonrpc"] == "2.0").then_some(())?;
                v["result"].as_i64()
            },
        ),
    ];
    for (exchange, path, read) in cases {
        let before = now_ms();
        let (status, _, body) = http_get(&format!("{}{path}", rest(exchange))).await;
        let after = now_ms();
        assert_eq!(status, 200, "{exchange} {path}: {body}");
        let server = read(&body).unwrap_or_else(|| panic!("{exchange} {path}: shape {body}"));
        assert_skewed(path, server, before, after, skew);
    }
    // Deribit JSON-RPC over the WebSocket: `result` is the server time, ms.
    let mut c = connect(&sim.ws_endpoint(Exchange::DeribitDerivatives)).await;
    let before = now_ms();
    send(
        &mut c,
        json!({"jsonrpc": "2.0", "id": 9, "method": "public/get_time", "params": {}}),
    )
    .await;
    let reply = next_matching(&mut c, |v| v["id"] == json!(9)).await;
    let after = now_ms();
    assert_skewed(
        "ws public/get_time",
        reply["result"].as_i64().unwrap(),
        before,
        after,
        skew,
    );
}

#[tokio::test]
async fn no_skew_by_default() {
    let sim = Simulator::start(fast_config(6)).await.unwrap();
    let before = now_ms();
    let (_, _, body) = http_get(&format!(
        "{}/api/v5/public/time",
        sim.endpoints(Exchange::OkxSpot).rest_url.unwrap()
    ))
    .await;
    let after = now_ms();
    let ts: i64 = body["data"][0]["ts"].as_str().unwrap().parse().unwrap();
    assert_skewed("okx", ts, before, after, 0);
}
