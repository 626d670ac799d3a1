//! Deribit JSON-RPC wire behaviour.

use crate::common::*;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange;
use marketprism_simulator::{Fault, Simulator, SimulatorHandle, Target};
use serde_json::{Value, json};
use std::time::Duration;

fn url(h: &SimulatorHandle) -> String {
    h.ws_endpoint(Exchange::DeribitDerivatives)
}

async fn rpc(c: &mut Ws, id: u64, method: &str, params: Value) -> Value {
    send(
        c,
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
    )
    .await;
    next_matching(c, |v| v["id"] == json!(id)).await
}

#[tokio::test]
async fn subscribe_book_chain_trades_and_dvol() {
    let sim = Simulator::start(fast_config(31)).await.unwrap();
    let mut c = connect(&url(&sim)).await;
    let channels = [
        "book.BTC-PERPETUAL.100ms",
        "trades.BTC-PERPETUAL.100ms",
        "deribit_volatility_index.btc_usd",
        "bogus.channel",
    ];
    let r = rpc(&mut c, 7, "public/subscribe", json!({"channels": channels})).await;
    assert_eq!(
        r["result"],
        json!(&channels[..3]),
        "only valid channels are confirmed"
    );
    let snap = next_matching(&mut c, |v| {
        v["params"]["channel"] == "book.BTC-PERPETUAL.100ms"
    })
    .await["params"]["data"]
        .clone();
    assert_eq!(snap["type"], "snapshot");
    assert!(snap.get("prev_change_id").is_none());
    assert_eq!(snap["bids"][0][0], "new");
    let mut change_id = snap["change_id"].as_u64().unwrap();
    for _ in 0..40 {
        let d = next_matching(&mut c, |v| {
            v["params"]["channel"] == "book.BTC-PERPETUAL.100ms"
        })
        .await["params"]["data"]
            .clone();
        assert_eq!(d["type"], "change");
        assert_eq!(d["prev_change_id"].as_u64(), Some(change_id));
        for l in d["bids"]
            .as_array()
            .unwrap()
            .iter()
            .chain(d["asks"].as_array().unwrap())
        {
            assert!(["new", "change", "delete"].contains(&l[0].as_str().unwrap()) && l[1].is_f64());
        }
        change_id = d["change_id"].as_u64().unwrap();
    }
    sim.inject(Fault::SequenceGap {
        target: Target::symbol(Exchange::DeribitDerivatives, "BTC-PERPETUAL"),
        messages: 1,
    });
    // Frames already queued may still arrive intact: count breaks over the next messages.
    let mut breaks = 0;
    for _ in 0..40 {
        let d = next_matching(&mut c, |v| {
            v["params"]["channel"] == "book.BTC-PERPETUAL.100ms"
        })
        .await["params"]["data"]
            .clone();
        breaks += usize::from(d["prev_change_id"].as_u64() != Some(change_id));
        change_id = d["change_id"].as_u64().unwrap();
    }
    assert_eq!(
        breaks, 1,
        "a skipped message shows as exactly one prev_change_id break"
    );
    let t = next_matching(&mut c, |v| {
        v["params"]["channel"] == "trades.BTC-PERPETUAL.100ms"
    })
    .await["params"]["data"]
        .clone();
    assert!(t[0]["trade_seq"].is_u64() && t[0]["trade_id"].is_string() && t[0]["price"].is_f64());
    let dv = next_matching(&mut c, |v| {
        v["params"]["channel"] == "deribit_volatility_index.btc_usd"
    })
    .await["params"]["data"]
        .clone();
    assert_eq!(dv["index_name"], "btc_usd");
    assert!(dv["volatility"].is_f64() && dv["timestamp"].is_i64());
    sim.stop().await;
}

#[tokio::test]
async fn heartbeat_test_request_answered_keeps_unanswered_closes() {
    let config = SimulatorConfig {
        deribit_heartbeat_second_ms: 20,
        ..fast_config(32)
    };
    let sim = Simulator::start(config).await.unwrap();
    let mut good = connect(&url(&sim)).await;
    let mut bad = connect(&url(&sim)).await;
    let r = rpc(&mut good, 1, "public/set_heartbeat", json!({"interval": 5})).await;
    assert_eq!(r["error"]["code"], -32602, "interval below 10 is refused");
    assert_eq!(
        rpc(
            &mut good,
            2,
            "public/set_heartbeat",
            json!({"interval": 10})
        )
        .await["result"],
        "ok"
    );
    assert_eq!(
        rpc(&mut bad, 2, "public/set_heartbeat", json!({"interval": 10})).await["result"],
        "ok"
    );
    // 10 "seconds" = 200 ms here; answer five test_requests on the good connection.
    for i in 0..5 {
        let hb = next_matching(&mut good, |v| v["method"] == "heartbeat").await;
        assert_eq!(hb["params"]["type"], "test_request");
        let r = rpc(&mut good, 100 + i, "public/test", json!({})).await;
        assert_eq!(r["result"]["version"], "1.2.26");
    }
    let mut closed = false;
    for _ in 0..100 {
        match next(&mut bad, Duration::from_secs(2)).await {
            Got::Text(t) => assert!(t.contains("test_request"), "{t}"),
            Got::Closed(_) => {
                closed = true;
                break;
            }
            Got::Timeout => break,
        }
    }
    assert!(closed, "an unanswered test_request closes the connection");
    assert_eq!(
        sim.stats()
            .venue(Exchange::DeribitDerivatives)
            .keepalive_cuts,
        1
    );
    assert_eq!(
        rpc(&mut good, 200, "public/test", json!({})).await["result"]["version"],
        "1.2.26"
    );
    sim.stop().await;
}

#[tokio::test]
async fn volatility_index_history_over_ws_and_rest_agree() {
    let sim = Simulator::start(fast_config(33)).await.unwrap();
    let mut c = connect(&url(&sim)).await;
    let params = json!({"currency": "BTC", "start_timestamp": 1_699_999_980_000i64, "end_timestamp": 1_700_000_600_000i64, "resolution": "60"});
    let r = rpc(&mut c, 5, "public/get_volatility_index_data", params).await;
    let rows = r["result"]["data"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 11);
    assert!(r["result"]["continuation"].is_null());
    let rest = sim
        .endpoints(Exchange::DeribitDerivatives)
        .rest_url
        .unwrap();
    let (status, _, body) = http_get(&format!(
        "{rest}/api/v2/public/get_volatility_index_data?currency=BTC&start_timestamp=1699999980000&end_timestamp=1700000600000&resolution=60"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["data"].as_array().unwrap(), &rows);
    let r = rpc(&mut c, 6, "public/nope", json!({})).await;
    assert_eq!(r["error"]["code"], -32601);
    sim.stop().await;
}
