//! OKX v5 public wire behaviour.

use crate::common::*;
use marketprism_config::{OkxBookMode, SimulatorConfig};
use marketprism_model::Exchange;
use marketprism_simulator::{Fault, Simulator, SimulatorHandle, Target, okx_checksum};
use serde_json::{Value, json};
use std::time::Duration;

fn ws(h: &SimulatorHandle, e: Exchange) -> String {
    h.ws_endpoint(e)
}

fn apply(book: &mut TextBook, data: &Value) {
    for (side, bid) in [("bids", true), ("asks", false)] {
        for l in data[side].as_array().unwrap() {
            book.set(bid, l[0].as_str().unwrap(), l[1].as_str().unwrap());
        }
    }
}

fn checksum_of(book: &TextBook) -> i32 {
    let (b, a) = book.top(25);
    okx_checksum(&b, &a)
}

/// The checksum function reproduces every real checksum of a recorded OKX session (snapshot + 97 updates).
#[test]
fn checksum_matches_recorded_real_messages() {
    let text = std::fs::read_to_string(
        "/work/shared/fixtures/recorded/okx/books/bmoscon-cryptofeed__BTC-USDT_books.jsonl",
    )
    .unwrap();
    let mut book = TextBook::default();
    let mut checked = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let data = &v["data"][0];
        if v["action"] == "snapshot" {
            book = TextBook::default();
        }
        apply(&mut book, data);
        assert_eq!(
            checksum_of(&book),
            data["checksum"].as_i64().unwrap() as i32,
            "message {checked}"
        );
        checked += 1;
    }
    assert_eq!(checked, 98);
    let doc = okx_checksum(
        &[("3366.1".into(), "7".into()), ("3366".into(), "6".into())],
        &[("3366.8".into(), "9".into()), ("3368".into(), "8".into())],
    );
    assert_eq!(
        doc,
        crc32fast::hash(b"3366.1:7:3366.8:9:3366:6:3368:8") as i32
    );
}

async fn subscribe(c: &mut Ws, args: Value) {
    send(c, json!({"id": "42", "op": "subscribe", "args": args})).await;
}

/// Legacy mode: ack, WS snapshot with real crc32, updates chained by seqId with checksums a client can verify;
/// the rebuilt book equals the simulator's.
#[tokio::test]
async fn legacy_books_snapshot_checksums_and_seq_chain() {
    let sim = Simulator::start(fast_config(21)).await.unwrap();
    let mut c = connect(&ws(&sim, Exchange::OkxDerivatives)).await;
    subscribe(
        &mut c,
        json!([{"channel": "books", "instId": "BTC-USDT-SWAP"}]),
    )
    .await;
    let ack = next_json(&mut c).await;
    assert_eq!(ack["event"], "subscribe");
    assert_eq!(ack["id"], "42");
    assert_eq!(
        ack["arg"],
        json!({"channel": "books", "instId": "BTC-USDT-SWAP"})
    );
    assert!(ack["connId"].is_string());
    let snap = next_json(&mut c).await;
    assert_eq!(snap["action"], "snapshot");
    let d = &snap["data"][0];
    assert_eq!(d["prevSeqId"], -1);
    let mut book = TextBook::default();
    apply(&mut book, d);
    assert_eq!(checksum_of(&book), d["checksum"].as_i64().unwrap() as i32);
    assert!(d["checksum"].as_i64().unwrap() != 0);
    let mut seq = d["seqId"].as_u64().unwrap();
    for _ in 0..100 {
        let u = next_matching(&mut c, |v| v["arg"]["channel"] == "books").await;
        let d = &u["data"][0];
        assert_eq!(u["action"], "update");
        assert_eq!(d["prevSeqId"].as_u64(), Some(seq));
        apply(&mut book, d);
        assert_eq!(checksum_of(&book), d["checksum"].as_i64().unwrap() as i32);
        assert!(
            d["asks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l.as_array().unwrap().len() == 4)
        );
        seq = d["seqId"].as_u64().unwrap();
    }
    sim.set_paused(true);
    let top = sim.book_top(Exchange::OkxDerivatives, "BTC-USDT-SWAP", 25);
    let (last, bids, asks) = (top.last_id, top.bids, top.asks);
    while seq < last {
        let d = next_matching(&mut c, |v| v["arg"]["channel"] == "books").await["data"][0].clone();
        assert_eq!(d["prevSeqId"].as_u64(), Some(seq));
        apply(&mut book, &d);
        seq = d["seqId"].as_u64().unwrap();
    }
    assert_eq!(
        book.top(25),
        (bids, asks),
        "text levels equal exactly (no reformatting)"
    );
    sim.stop().await;
}

/// Keep-alive (seqId == prevSeqId, empty) and sequence reset (seqId < prevSeqId) on demand.
#[tokio::test]
async fn keepalive_and_sequence_reset_messages() {
    let sim = Simulator::start(fast_config(22)).await.unwrap();
    let mut c = connect(&ws(&sim, Exchange::OkxSpot)).await;
    subscribe(&mut c, json!([{"channel": "books", "instId": "BTC-USDT"}])).await;
    next_json(&mut c).await;
    let snap = next_json(&mut c).await;
    let mut seq = snap["data"][0]["seqId"].as_u64().unwrap();
    let mut book = TextBook::default();
    apply(&mut book, &snap["data"][0]);
    sim.inject(Fault::OkxKeepAlive(Target::symbol(
        Exchange::OkxSpot,
        "BTC-USDT",
    )));
    let (mut saw_keepalive, mut saw_reset) = (false, false);
    for i in 0..200 {
        if i == 50 {
            assert_eq!(
                sim.inject(Fault::OkxSequenceReset(Target::symbol(
                    Exchange::OkxSpot,
                    "BTC-USDT"
                ))),
                1
            );
        }
        let d = next_matching(&mut c, |v| v["arg"]["channel"] == "books").await["data"][0].clone();
        let (prev, id) = (
            d["prevSeqId"].as_u64().unwrap(),
            d["seqId"].as_u64().unwrap(),
        );
        assert_eq!(prev, seq, "prevSeqId always equals the previous seqId");
        if id == prev {
            assert!(
                d["asks"].as_array().unwrap().is_empty()
                    && d["bids"].as_array().unwrap().is_empty()
            );
            saw_keepalive = true;
        } else if id < prev {
            saw_reset = true;
        }
        apply(&mut book, &d);
        assert_eq!(checksum_of(&book), d["checksum"].as_i64().unwrap() as i32);
        seq = id;
    }
    assert!(saw_keepalive && saw_reset);
    sim.stop().await;
}

/// New mode: no WS snapshot, checksum 0, REST snapshot with seqId; the documented procedure rebuilds the book.
#[tokio::test]
async fn rest_snapshot_mode_rebuilds_the_book() {
    let config = SimulatorConfig {
        okx_book_mode: OkxBookMode::RestSnapshot,
        ..fast_config(23)
    };
    let sim = Simulator::start(config).await.unwrap();
    let mut c = connect(&ws(&sim, Exchange::OkxSpot)).await;
    subscribe(&mut c, json!([{"channel": "books", "instId": "ETH-USDT"}])).await;
    assert_eq!(next_json(&mut c).await["event"], "subscribe");
    let mut buffered = Vec::new();
    for _ in 0..5 {
        let v = next_json(&mut c).await;
        assert_eq!(v["action"], "update", "no WS snapshot in this mode");
        assert_eq!(v["data"][0]["checksum"], 0);
        buffered.push(v["data"][0].clone());
    }
    let rest = sim.endpoints(Exchange::OkxSpot).rest_url.unwrap();
    let (status, _, body) = http_get(&format!(
        "{rest}/api/v5/market/books?instId=ETH-USDT&sz=400"
    ))
    .await;
    assert_eq!((status, body["code"].clone()), (200, json!("0")));
    let snap = body["data"][0].clone();
    let snap_seq = snap["seqId"].as_u64().unwrap();
    assert!(snap_seq >= buffered[0]["prevSeqId"].as_u64().unwrap());
    let mut book = TextBook::default();
    apply(&mut book, &snap);
    let mut seq = snap_seq;
    let mut first = true;
    sim.set_paused(true);
    let top = sim.book_top(Exchange::OkxSpot, "ETH-USDT", 50);
    let (last, bids, asks) = (top.last_id, top.bids, top.asks);
    while seq < last {
        let d = if buffered.is_empty() {
            next_matching(&mut c, |v| v["arg"]["channel"] == "books").await["data"][0].clone()
        } else {
            buffered.remove(0)
        };
        let (prev, id) = (
            d["prevSeqId"].as_u64().unwrap(),
            d["seqId"].as_u64().unwrap(),
        );
        if id <= snap_seq && first {
            continue;
        }
        if first {
            assert!(prev <= snap_seq && snap_seq < id);
            first = false;
        } else {
            assert_eq!(prev, seq);
        }
        apply(&mut book, &d);
        seq = id;
    }
    assert_eq!(book.top(50), (bids, asks));
    sim.stop().await;
}

#[tokio::test]
async fn ping_pong_idle_close_4004_and_errors() {
    let config = SimulatorConfig {
        okx_idle_timeout_ms: 1_000,
        ..fast_config(24)
    };
    let sim = Simulator::start(config).await.unwrap();
    let url = ws(&sim, Exchange::OkxDerivatives);
    let mut pinger = connect(&url).await;
    let mut silent = connect(&url).await;
    subscribe(
        &mut pinger,
        json!([{"channel": "nope", "instId": "BTC-USDT-SWAP"}]),
    )
    .await;
    let err = next_json(&mut pinger).await;
    assert_eq!(
        (err["event"].clone(), err["code"].clone(), err["id"].clone()),
        (json!("error"), json!("60018"), json!("42"))
    );
    send_text(&mut pinger, "{bad").await;
    assert_eq!(next_json(&mut pinger).await["code"], "60012");
    for _ in 0..8 {
        send_text(&mut pinger, "ping").await;
        match next(&mut pinger, Duration::from_secs(2)).await {
            Got::Text(t) => assert_eq!(t, "pong"),
            other => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    match next(&mut silent, Duration::from_secs(5)).await {
        Got::Closed(code) => assert_eq!(code, Some(4004)),
        other => panic!("silent client must get 4004, got {other:?}"),
    }
    assert_eq!(
        sim.stats().venue(Exchange::OkxDerivatives).keepalive_cuts,
        1
    );
    sim.stop().await;
}

#[tokio::test]
async fn trades_funding_oi_and_liquidations_by_inst_type() {
    let sim = Simulator::start(fast_config(25)).await.unwrap();
    let mut c = connect(&ws(&sim, Exchange::OkxDerivatives)).await;
    subscribe(
        &mut c,
        json!([{"channel": "trades", "instId": "BTC-USDT-SWAP"}, {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"},
               {"channel": "open-interest", "instId": "BTC-USDT-SWAP"}, {"channel": "liquidation-orders", "instType": "SWAP"}]),
    )
    .await;
    for _ in 0..4 {
        assert_eq!(
            next_matching(&mut c, |v| v.get("event").is_some()).await["event"],
            "subscribe"
        );
    }
    let mut last_trade: Option<u64> = None;
    for _ in 0..30 {
        let t = next_matching(&mut c, |v| v["arg"]["channel"] == "trades").await["data"][0].clone();
        let id: u64 = t["tradeId"].as_str().unwrap().parse().unwrap();
        let count: u64 = t["count"].as_str().unwrap().parse().unwrap();
        if let Some(prev) = last_trade {
            assert_eq!(
                id - count,
                prev,
                "tradeId is the last fill; ids are contiguous"
            );
        }
        last_trade = Some(id);
    }
    let f =
        next_matching(&mut c, |v| v["arg"]["channel"] == "funding-rate").await["data"][0].clone();
    assert!(f["fundingRate"].is_string() && f["nextFundingTime"].is_string());
    let oi =
        next_matching(&mut c, |v| v["arg"]["channel"] == "open-interest").await["data"][0].clone();
    assert!(oi["oi"].is_string() && oi["oiCcy"].is_string());
    let l = next_matching(&mut c, |v| v["arg"]["channel"] == "liquidation-orders").await;
    assert_eq!(l["arg"]["instType"], "SWAP");
    assert!(l["data"][0]["details"][0]["bkPx"].is_string());
    sim.stop().await;
}

#[tokio::test]
async fn rubik_endpoints_return_distinct_series() {
    let sim = Simulator::start(fast_config(26)).await.unwrap();
    let rest = sim.endpoints(Exchange::OkxDerivatives).rest_url.unwrap();
    let base = format!("{rest}/api/v5/rubik/stat/contracts");
    let q = "instId=BTC-USDT-SWAP&period=5m&end=1700000000000&limit=4";
    let mut all = Vec::new();
    for ep in [
        format!("long-short-position-ratio-contract-top-trader?{q}"),
        format!("long-short-account-ratio-contract-top-trader?{q}"),
        format!("long-short-account-ratio-contract?{q}"),
        "long-short-account-ratio?ccy=BTC&period=5m&end=1700000000000".to_owned(),
    ] {
        let (status, _, body) = http_get(&format!("{base}/{ep}")).await;
        assert_eq!((status, body["code"].clone()), (200, json!("0")), "{ep}");
        let rows = body["data"].as_array().unwrap().clone();
        assert_eq!(rows[0][0], "1699999800000", "newest first");
        all.push(rows[0][1].clone());
    }
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            assert_ne!(all[i], all[j], "series {i} and {j} must differ");
        }
    }
    let (_, _, body) = http_get(&format!(
        "{base}/long-short-account-ratio-contract?period=5m"
    ))
    .await;
    assert_eq!(body["code"], "50014");
    sim.stop().await;
}

/// 2026-06-23 state: the WS snapshot still comes (to be ignored), every checksum is 0, REST carries seqId.
#[tokio::test]
async fn zero_checksum_mode() {
    let config = SimulatorConfig {
        okx_book_mode: OkxBookMode::ZeroChecksum,
        ..fast_config(27)
    };
    let sim = Simulator::start(config).await.unwrap();
    let mut c = connect(&ws(&sim, Exchange::OkxSpot)).await;
    subscribe(&mut c, json!([{"channel": "books", "instId": "BTC-USDT"}])).await;
    assert_eq!(next_json(&mut c).await["event"], "subscribe");
    let snap = next_json(&mut c).await;
    assert_eq!(snap["action"], "snapshot");
    assert_eq!(snap["data"][0]["checksum"], 0);
    let mut seq = snap["data"][0]["seqId"].as_u64().unwrap();
    for _ in 0..20 {
        let d = next_matching(&mut c, |v| v["arg"]["channel"] == "books").await["data"][0].clone();
        assert_eq!(d["checksum"], 0);
        assert_eq!(d["prevSeqId"].as_u64(), Some(seq));
        seq = d["seqId"].as_u64().unwrap();
    }
    let rest = sim.endpoints(Exchange::OkxSpot).rest_url.unwrap();
    let (_, _, body) = http_get(&format!("{rest}/api/v5/market/books?instId=BTC-USDT&sz=3")).await;
    assert!(body["data"][0]["seqId"].as_u64().unwrap() >= seq);
    assert!(body["data"][0].get("checksum").is_none());
    sim.stop().await;
}
