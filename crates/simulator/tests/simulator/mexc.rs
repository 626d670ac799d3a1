//! MEXC wire behaviour: spot JSON control + binary protobuf pushes, contracts JSON, REST, keep-alive.
//! Protobuf frames are read here with a small field reader of the test's own (no collector code).

use crate::common::*;
use futures::StreamExt;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange::{MexcDerivatives, MexcSpot};
use marketprism_simulator::{Fault, Simulator, Target};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// One protobuf field: varint or length-delimited bytes.
#[derive(Debug, Clone)]
enum Field {
    Varint(u64),
    Bytes(Vec<u8>),
}

fn read_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Every (field number, value) of a message, in order; `None` when the bytes are not a message.
fn fields(b: &[u8]) -> Option<Vec<(u64, Field)>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < b.len() {
        let key = read_varint(b, &mut at)?;
        let value = match key & 7 {
            0 => Field::Varint(read_varint(b, &mut at)?),
            2 => {
                let len = read_varint(b, &mut at)? as usize;
                let v = b.get(at..at + len)?.to_vec();
                at += len;
                Field::Bytes(v)
            }
            _ => return None,
        };
        out.push((key >> 3, value));
    }
    Some(out)
}

fn text(f: &[(u64, Field)], n: u64) -> Option<String> {
    f.iter().find_map(|(k, v)| match v {
        Field::Bytes(b) if *k == n => String::from_utf8(b.clone()).ok(),
        _ => None,
    })
}

fn all_bytes(f: &[(u64, Field)], n: u64) -> Vec<Vec<u8>> {
    f.iter()
        .filter_map(|(k, v)| match v {
            Field::Bytes(b) if *k == n => Some(b.clone()),
            _ => None,
        })
        .collect()
}

fn varint(f: &[(u64, Field)], n: u64) -> Option<u64> {
    f.iter().find_map(|(k, v)| match v {
        Field::Varint(x) if *k == n => Some(*x),
        _ => None,
    })
}

/// A depth push: (fromVersion, toVersion, bids, asks) as text levels.
type Depth = (u64, u64, Vec<(String, String)>, Vec<(String, String)>);

fn depth(push: &[u8]) -> Option<Depth> {
    let f = fields(push)?;
    let body = fields(&all_bytes(&f, 313).pop()?)?;
    let side = |n| {
        all_bytes(&body, n)
            .iter()
            .map(|l| {
                let l = fields(l).unwrap();
                (text(&l, 1).unwrap(), text(&l, 2).unwrap())
            })
            .collect()
    };
    Some((
        text(&body, 4)?.parse().ok()?,
        text(&body, 5)?.parse().ok()?,
        side(2),
        side(1),
    ))
}

/// Levels as normalized decimals.
fn norm(l: &Levels) -> Levels {
    let n = |t: &str| {
        t.parse::<rust_decimal::Decimal>()
            .unwrap()
            .normalize()
            .to_string()
    };
    l.iter().map(|(p, q)| (n(p), n(q))).collect()
}

async fn next_message(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a frame within 5 s")
        .expect("open")
        .expect("readable")
}

async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        if let Message::Binary(b) = next_message(ws).await {
            return b.to_vec();
        }
    }
}

#[tokio::test]
async fn spot_acks_pongs_and_protobuf_depth_rebuilds_the_book() {
    let sim = Simulator::start(fast_config(31)).await.unwrap();
    let mut c = connect(&sim.ws_endpoint(MexcSpot)).await;
    let ch = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT";
    send(&mut c, json!({"method": "SUBSCRIPTION", "params": [ch]})).await;
    assert_eq!(
        next_json(&mut c).await,
        json!({"id": 0, "code": 0, "msg": ch})
    );
    send(&mut c, json!({"method": "PING"})).await;
    let pong = next_matching(&mut c, |v| v["msg"] == "PONG").await;
    assert_eq!(pong["code"], 0);
    // Buffer pushes, then the REST snapshot, then the documented procedure.
    let first = next_binary(&mut c).await;
    let f = fields(&first).unwrap();
    assert_eq!(text(&f, 1).as_deref(), Some(ch));
    assert_eq!(text(&f, 3).as_deref(), Some("BTCUSDT"));
    assert!(
        varint(&f, 6).is_some_and(|t| t > 1_600_000_000_000),
        "sendTime in ms"
    );
    let mut buffered = vec![depth(&first).unwrap()];
    let base = sim.endpoints(MexcSpot).rest_url.unwrap();
    let (status, _, snap) =
        http_get(&format!("{base}/api/v3/depth?symbol=BTCUSDT&limit=5000")).await;
    assert_eq!(status, 200);
    let last_update_id = snap["lastUpdateId"].as_u64().unwrap();
    assert!(
        last_update_id >= buffered[0].0,
        "snapshot taken after the first push"
    );
    let mut book = TextBook::default();
    for (side, bid) in [("bids", true), ("asks", false)] {
        for l in snap[side].as_array().unwrap() {
            book.set(bid, l[0].as_str().unwrap(), l[1].as_str().unwrap());
        }
    }
    let mut last = last_update_id;
    let mut applied = 0;
    loop {
        let d = if buffered.is_empty() {
            depth(&next_binary(&mut c).await).unwrap()
        } else {
            buffered.remove(0)
        };
        if d.1 <= last {
            continue;
        }
        if applied == 0 {
            assert!(d.0 <= last + 1, "the first update bridges the snapshot");
        } else {
            assert_eq!(d.0, last + 1, "fromVersion == previous toVersion + 1");
        }
        for (p, q) in &d.2 {
            book.set(true, p, q);
        }
        for (p, q) in &d.3 {
            book.set(false, p, q);
        }
        last = d.1;
        applied += 1;
        if applied >= 50 {
            break;
        }
    }
    sim.set_paused(true);
    // Drain to the frozen version.
    let top = sim.book_top(MexcSpot, "BTCUSDT", 10);
    while last < top.last_id {
        let d = depth(&next_binary(&mut c).await).unwrap();
        assert_eq!(d.0, last + 1);
        for (p, q) in &d.2 {
            book.set(true, p, q);
        }
        for (p, q) in &d.3 {
            book.set(false, p, q);
        }
        last = d.1;
    }
    assert_eq!(book.normalized(10), (norm(&top.bids), norm(&top.asks)));
    sim.stop().await;
}

#[tokio::test]
async fn spot_deals_refusals_and_broken_binary() {
    let sim = Simulator::start(fast_config(32)).await.unwrap();
    let mut c = connect(&sim.ws_endpoint(MexcSpot)).await;
    let bad = "spot@public.aggre.deals.v3.api.pb@1s@BTCUSDT";
    send(&mut c, json!({"method": "SUBSCRIPTION", "params": [bad]})).await;
    let refused = next_json(&mut c).await;
    assert_eq!(
        refused["msg"],
        format!("Not Subscribed successfully! [{bad}].  Reason： Blocked! ")
    );
    let ch = "spot@public.aggre.deals.v3.api.pb@10ms@ETHUSDT";
    send(&mut c, json!({"method": "SUBSCRIPTION", "params": [ch]})).await;
    assert_eq!(next_json(&mut c).await["msg"], ch);
    let push = fields(&next_binary(&mut c).await).unwrap();
    let body = fields(&all_bytes(&push, 314).pop().expect("deals body, tag 314")).unwrap();
    let deals = all_bytes(&body, 1);
    assert!(!deals.is_empty());
    for d in deals {
        let d = fields(&d).unwrap();
        assert!(matches!(varint(&d, 3), Some(1 | 2)), "tradeType 1 or 2");
        assert!(text(&d, 1).unwrap().parse::<f64>().is_ok());
        assert!(varint(&d, 4).unwrap() > 1_600_000_000_000);
    }
    sim.inject(Fault::Malformed {
        target: Target::venue(MexcSpot),
        kind: marketprism_simulator::Malformation::WrongTypes,
        messages: 1,
    });
    let broken = loop {
        let b = next_binary(&mut c).await;
        if fields(&b).is_none() || all_bytes(&fields(&b).unwrap(), 314).is_empty() {
            break b;
        }
    };
    assert!(
        broken.starts_with(&[0x0a, ch.len() as u8]),
        "the channel stays readable"
    );
    assert_eq!(sim.stats().venue(MexcSpot).connections, 1);
    sim.stop().await;
}

#[tokio::test]
async fn spot_sequence_gap_breaks_the_version_chain() {
    let sim = Simulator::start(fast_config(33)).await.unwrap();
    let mut c = connect(&sim.ws_endpoint(MexcSpot)).await;
    let ch = "spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT";
    send(&mut c, json!({"method": "SUBSCRIPTION", "params": [ch]})).await;
    next_json(&mut c).await;
    let mut last = depth(&next_binary(&mut c).await).unwrap().1;
    sim.inject(Fault::SequenceGap {
        target: Target::symbol(MexcSpot, "BTCUSDT"),
        messages: 2,
    });
    let mut jumped = false;
    for _ in 0..50 {
        let d = depth(&next_binary(&mut c).await).unwrap();
        if d.0 != last + 1 {
            jumped = true;
            break;
        }
        last = d.1;
    }
    assert!(jumped, "withheld pushes show as a fromVersion jump");
    sim.stop().await;
}

#[tokio::test]
async fn contract_versions_step_by_one_unmerged_and_the_book_matches_rest() {
    let sim = Simulator::start(fast_config(34)).await.unwrap();
    let mut c = connect(&sim.ws_endpoint(MexcDerivatives)).await;
    send(
        &mut c,
        json!({"method": "sub.depth", "param": {"symbol": "BTC_USDT", "compress": false}}),
    )
    .await;
    let ack = next_json(&mut c).await;
    assert_eq!(
        (&ack["channel"], &ack["data"]),
        (&json!("rs.sub.depth"), &json!("success"))
    );
    assert!(ack.get("symbol").is_none(), "the ack names no symbol");
    let first = next_matching(&mut c, |v| v["channel"] == "push.depth").await;
    assert_eq!(first["symbol"], "BTC_USDT");
    let base = sim.endpoints(MexcDerivatives).rest_url.unwrap();
    let (_, _, snap) = http_get(&format!("{base}/api/v1/contract/depth/BTC_USDT")).await;
    assert_eq!(snap["success"], true);
    let data = &snap["data"];
    let mut book = TextBook::default();
    for (side, bid) in [("bids", true), ("asks", false)] {
        for l in data[side].as_array().unwrap() {
            assert!(l[0].is_number() && l[1].is_number(), "bare numbers: {l}");
            book.set(bid, &l[0].to_string(), &l[1].to_string());
        }
    }
    let mut last = data["version"].as_u64().unwrap();
    let mut prev: Option<u64> = None;
    let mut applied = 0;
    while applied < 60 {
        let v = next_matching(&mut c, |v| v["channel"] == "push.depth").await;
        let version = v["data"]["version"].as_u64().unwrap();
        if let Some(p) = prev {
            assert_eq!(version, p + 1, "unmerged: one version per push");
        }
        prev = Some(version);
        if version <= last {
            continue;
        }
        assert_eq!(version, last + 1);
        for (side, bid) in [("bids", true), ("asks", false)] {
            for l in v["data"][side].as_array().unwrap() {
                book.set(bid, &l[0].to_string(), &l[1].to_string());
            }
        }
        last = version;
        applied += 1;
    }
    sim.set_paused(true);
    let top = sim.book_top(MexcDerivatives, "BTC_USDT", 10);
    while last < top.last_id {
        let v = next_matching(&mut c, |v| v["channel"] == "push.depth").await;
        for (side, bid) in [("bids", true), ("asks", false)] {
            for l in v["data"][side].as_array().unwrap() {
                book.set(bid, &l[0].to_string(), &l[1].to_string());
            }
        }
        last = v["data"]["version"].as_u64().unwrap();
    }
    assert_eq!(last, top.last_id);
    assert_eq!(book.normalized(10), (norm(&top.bids), norm(&top.asks)));
    sim.stop().await;
}

#[tokio::test]
async fn contract_merged_depth_deals_funding_ticker_and_errors() {
    let sim = Simulator::start(fast_config(35)).await.unwrap();
    let mut c = connect(&sim.ws_endpoint(MexcDerivatives)).await;
    for m in ["sub.depth", "sub.deal", "sub.funding.rate", "sub.ticker"] {
        send(
            &mut c,
            json!({"method": m, "param": {"symbol": "ETH_USDT"}}),
        )
        .await;
    }
    let deal = next_matching(&mut c, |v| v["channel"] == "push.deal").await;
    let d = &deal["data"][0];
    assert!(d["p"].is_number() && d["v"].is_number() && d["i"].is_string());
    assert!(matches!(d["T"].as_i64(), Some(1 | 2)));
    let funding = next_matching(&mut c, |v| v["channel"] == "push.funding.rate").await;
    assert!(funding["data"]["rate"].is_number());
    assert!(funding["data"]["nextSettleTime"].as_i64().unwrap() > 1_600_000_000_000);
    let ticker = next_matching(&mut c, |v| v["channel"] == "push.ticker").await;
    assert!(ticker["data"]["holdVol"].is_number() && ticker["data"]["fairPrice"].is_number());
    // Merged (default): a push may span several versions, so versions may jump.
    let a = next_matching(&mut c, |v| v["channel"] == "push.depth").await;
    let mut jumped = false;
    let mut last = a["data"]["version"].as_u64().unwrap();
    for _ in 0..40 {
        let v = next_matching(&mut c, |v| v["channel"] == "push.depth").await;
        let version = v["data"]["version"].as_u64().unwrap();
        jumped |= version > last + 1;
        last = version;
    }
    assert!(jumped, "merged increments skip versions");
    send(
        &mut c,
        json!({"method": "sub.deal", "param": {"symbol": "NOPE"}}),
    )
    .await;
    let err = next_matching(&mut c, |v| v["channel"] == "rs.error").await;
    assert_eq!(err["data"], "Contract doesn't exist!");
    send(&mut c, json!({"method": "ping"})).await;
    let pong = next_matching(&mut c, |v| v["channel"] == "pong").await;
    assert!(pong["data"].as_i64().unwrap() > 1_600_000_000_000);
    sim.stop().await;
}

#[tokio::test]
async fn contract_clients_that_do_not_ping_are_cut_and_pinging_ones_are_kept() {
    let config = SimulatorConfig {
        mexc_idle_timeout_ms: 400,
        ..fast_config(36)
    };
    let sim = Simulator::start(config).await.unwrap();
    let mut quiet = connect(&sim.ws_endpoint(MexcDerivatives)).await;
    send(
        &mut quiet,
        json!({"method": "sub.deal", "param": {"symbol": "BTC_USDT"}}),
    )
    .await;
    let mut pinging = connect(&sim.ws_endpoint(MexcDerivatives)).await;
    send(
        &mut pinging,
        json!({"method": "sub.deal", "param": {"symbol": "BTC_USDT"}}),
    )
    .await;
    // Data flows to both; only client frames count.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let closed = loop {
        send(&mut pinging, json!({"method": "ping"})).await;
        match next(&mut quiet, Duration::from_millis(100)).await {
            Got::Closed(code) => break code,
            _ => assert!(tokio::time::Instant::now() < deadline, "never cut"),
        }
    };
    assert_eq!(closed, Some(1000));
    send(&mut pinging, json!({"method": "ping"})).await;
    let pong = next_matching(&mut pinging, |v| v["channel"] == "pong").await;
    assert!(pong["ts"].is_number());
    assert_eq!(sim.stats().venue(MexcDerivatives).keepalive_cuts, 1);
    sim.stop().await;
}

#[tokio::test]
async fn rest_lists_time_and_errors() {
    let sim = Simulator::start(fast_config(37)).await.unwrap();
    let spot = sim.endpoints(MexcSpot).rest_url.unwrap();
    let fut = sim.endpoints(MexcDerivatives).rest_url.unwrap();
    let (_, _, info) = http_get(&format!("{spot}/api/v3/exchangeInfo")).await;
    let btc = &info["symbols"][0];
    assert_eq!(
        (&btc["symbol"], &btc["status"], &btc["baseAsset"]),
        (&json!("BTCUSDT"), &json!("1"), &json!("BTC"))
    );
    let (_, _, detail) = http_get(&format!("{fut}/api/v1/contract/detail")).await;
    assert_eq!(detail["data"][0]["symbol"], "BTC_USDT");
    assert!(detail["data"][0]["contractSize"].is_number());
    let (_, _, t) = http_get(&format!("{spot}/api/v3/time")).await;
    assert!(t["serverTime"].as_i64().unwrap() > 1_600_000_000_000);
    let (_, _, p) = http_get(&format!("{fut}/api/v1/contract/ping")).await;
    assert_eq!(p["success"], true);
    assert!(p["data"].as_i64().unwrap() > 1_600_000_000_000);
    let (status, _, e) = http_get(&format!("{spot}/api/v3/depth?symbol=btcusdt")).await;
    assert_eq!((status, &e["code"]), (400, &json!(-1121)));
    let (_, _, e) = http_get(&format!("{fut}/api/v1/contract/depth/NOPE")).await;
    assert_eq!((&e["success"], &e["code"]), (&json!(false), &json!(1001)));
    sim.stop().await;
}
