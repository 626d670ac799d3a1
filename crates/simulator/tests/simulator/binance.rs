//! Binance spot and USD-M wire behaviour.

use crate::common::*;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange;
use marketprism_simulator::{Fault, Simulator, Target};
use serde_json::{Value, json};
use std::time::Duration;

fn ws(h: &marketprism_simulator::SimulatorHandle, e: Exchange) -> String {
    h.ws_endpoint(e)
}
fn rest(h: &marketprism_simulator::SimulatorHandle, e: Exchange) -> String {
    h.endpoints(e).rest_url.unwrap()
}

#[tokio::test]
async fn spot_live_subscribe_ack_list_and_errors() {
    let config = SimulatorConfig {
        binance_spot_max_inbound_per_s: 50,
        ..fast_config(1)
    };
    let sim = Simulator::start(config).await.unwrap();
    let mut c = connect(&format!("{}/ws", ws(&sim, Exchange::BinanceSpot))).await;
    send(
        &mut c,
        json!({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@depth@100ms"], "id": 1}),
    )
    .await;
    assert_eq!(
        next_matching(&mut c, |v| v.get("id").is_some()).await,
        json!({"result": null, "id": 1})
    );
    send(&mut c, json!({"method": "LIST_SUBSCRIPTIONS", "id": 3})).await;
    let list = next_matching(&mut c, |v| v.get("id") == Some(&json!(3))).await;
    assert_eq!(
        list["result"],
        json!(["btcusdt@depth@100ms", "btcusdt@trade"])
    );
    let t = next_matching(&mut c, |v| v["e"] == "trade").await;
    assert!(
        t["t"].is_u64() && t["p"].is_string() && t["m"].is_boolean(),
        "{t}"
    );
    send(
        &mut c,
        json!({"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 4}),
    )
    .await;
    next_matching(&mut c, |v| v.get("id") == Some(&json!(4))).await;
    send(&mut c, json!({"method": "LIST_SUBSCRIPTIONS", "id": 5})).await;
    let list = next_matching(&mut c, |v| v.get("id") == Some(&json!(5))).await;
    assert_eq!(list["result"], json!(["btcusdt@depth@100ms"]));
    send_text(&mut c, "{not json").await;
    let err = next_matching(&mut c, |v| v.get("code").is_some()).await;
    assert_eq!(err["code"], 3);
    send(
        &mut c,
        json!({"method": "SUBSCRIBEX", "params": [], "id": 6}),
    )
    .await;
    let err = next_matching(&mut c, |v| v.get("code").is_some()).await;
    assert_eq!(
        (err["code"].clone(), err["id"].clone()),
        (json!(2), json!(6))
    );
    sim.stop().await;
}

/// Spot diffs (100 ms windows): U/u, no `pu`, each U = previous u + 1; a gap fault breaks the chain exactly once per injection.
#[tokio::test]
async fn spot_depth_chain_is_continuous_and_breaks_only_at_injected_gaps() {
    let sim = Simulator::start(fast_config(2)).await.unwrap();
    let mut c = connect(&format!(
        "{}/ws/btcusdt@depth@100ms",
        ws(&sim, Exchange::BinanceSpot)
    ))
    .await;
    let mut prev_u: Option<u64> = None;
    let mut breaks = 0;
    for i in 0..60 {
        if i == 20 || i == 40 {
            let n = sim.inject(Fault::SequenceGap {
                target: Target::symbol(Exchange::BinanceSpot, "BTCUSDT"),
                messages: 3,
            });
            assert_eq!(n, 1);
        }
        let d = next_matching(&mut c, |v| v["e"] == "depthUpdate").await;
        assert!(d.get("pu").is_none(), "spot has no pu: {d}");
        let (u_first, u_last) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap());
        assert!(u_last >= u_first);
        if let Some(p) = prev_u
            && u_first != p + 1
        {
            assert!(u_first > p + 1, "ids never go back");
            breaks += 1;
        }
        prev_u = Some(u_last);
    }
    let stats = sim.stats().channel_total(Exchange::BinanceSpot, "book");
    assert_eq!((breaks, stats.gaps_injected, stats.skipped), (2, 2, 6));
    sim.stop().await;
}

/// The documented spot sync algorithm rebuilds exactly the simulator's book.
#[tokio::test]
async fn spot_rest_snapshot_plus_diffs_rebuild_the_true_book() {
    let sim = Simulator::start(fast_config(3)).await.unwrap();
    let mut c = connect(&format!(
        "{}/stream?streams=ethusdt@depth@100ms",
        ws(&sim, Exchange::BinanceSpot)
    ))
    .await;
    let mut buffered =
        vec![next_matching(&mut c, |v| v["stream"] == "ethusdt@depth@100ms").await["data"].clone()];
    let (status, headers, snap) = http_get(&format!(
        "{}/api/v3/depth?symbol=ETHUSDT&limit=1000",
        rest(&sim, Exchange::BinanceSpot)
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-mbx-used-weight-1m"], "50");
    assert!(snap.get("E").is_none(), "spot snapshot has no E/T");
    let last_update_id = snap["lastUpdateId"].as_u64().unwrap();
    assert!(last_update_id >= buffered[0]["U"].as_u64().unwrap());
    let mut book = TextBook::default();
    for (side, bid) in [("bids", true), ("asks", false)] {
        for l in snap[side].as_array().unwrap() {
            book.set(bid, l[0].as_str().unwrap(), l[1].as_str().unwrap());
        }
    }
    let apply = |book: &mut TextBook, d: &Value| {
        for (side, bid) in [("b", true), ("a", false)] {
            for l in d[side].as_array().unwrap() {
                book.set(bid, l[0].as_str().unwrap(), l[1].as_str().unwrap());
            }
        }
    };
    let mut local = last_update_id;
    for _ in 0..10 {
        buffered.push(
            next_matching(&mut c, |v| v["stream"] == "ethusdt@depth@100ms").await["data"].clone(),
        );
    }
    sim.set_paused(true);
    let top = sim.book_top(Exchange::BinanceSpot, "ETHUSDT", 20);
    let (sim_last, sim_bids, sim_asks) = (top.last_id, top.bids, top.asks);
    let mut first = true;
    loop {
        let d = if buffered.is_empty() {
            next_matching(&mut c, |v| v["stream"] == "ethusdt@depth@100ms").await["data"].clone()
        } else {
            buffered.remove(0)
        };
        let (u0, u1) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap());
        if u1 <= local {
            continue;
        }
        if first {
            assert!(
                u0 <= local + 1 && local < u1 + 1,
                "first event brackets lastUpdateId"
            );
            first = false;
        } else {
            assert_eq!(u0, local + 1);
        }
        apply(&mut book, &d);
        local = u1;
        if local == sim_last {
            break;
        }
    }
    let (b, a) = book.normalized(20);
    assert_eq!((b, a), (sim_bids, sim_asks));
    sim.stop().await;
}

/// USD-M: `/public` depth carries pu == previous u; `/market` carries aggTrade/markPrice; a `/market`
/// stream on the legacy URL is acked and silent.
#[tokio::test]
async fn usdm_routing_pu_chain_and_legacy_silence() {
    let sim = Simulator::start(fast_config(4)).await.unwrap();
    let base = ws(&sim, Exchange::BinanceDerivatives);
    let mut public = connect(&format!(
        "{base}/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker"
    ))
    .await;
    let mut prev: Option<u64> = None;
    for _ in 0..50 {
        let v = next_matching(&mut public, |v| v["data"]["e"] == "depthUpdate").await;
        assert_eq!(v["stream"], "btcusdt@depth@0ms");
        let d = &v["data"];
        assert!(d["T"].is_i64() && d["E"].is_i64());
        if let Some(p) = prev {
            assert_eq!(d["pu"].as_u64(), Some(p));
        }
        prev = d["u"].as_u64();
    }
    let bt = next_matching(&mut public, |v| v["data"]["e"] == "bookTicker").await;
    assert!(bt["data"]["u"].is_u64() && bt["data"]["b"].is_string());

    let mut market = connect(&format!(
        "{base}/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s"
    ))
    .await;
    let agg = next_matching(&mut market, |v| v["data"]["e"] == "aggTrade").await["data"].clone();
    assert!(
        agg["l"].as_u64() >= agg["f"].as_u64() && agg["nq"].is_string(),
        "{agg}"
    );
    let mark =
        next_matching(&mut market, |v| v["data"]["e"] == "markPriceUpdate").await["data"].clone();
    assert!(mark["r"].is_string() && mark["T"].is_i64(), "{mark}");

    let mut legacy = connect(&format!("{base}/ws")).await;
    send(
        &mut legacy,
        json!({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "!forceOrder@arr"], "id": 1}),
    )
    .await;
    assert_eq!(
        next_json(&mut legacy).await,
        json!({"result": null, "id": 1})
    );
    match next(&mut legacy, Duration::from_millis(800)).await {
        Got::Timeout => {}
        other => panic!("legacy /market streams must be silent, got {other:?}"),
    }
    // A /public stream on the legacy URL still flows.
    send(
        &mut legacy,
        json!({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 2}),
    )
    .await;
    next_matching(&mut legacy, |v| v["e"] == "depthUpdate").await;
    sim.stop().await;
}

#[tokio::test]
async fn usdm_gap_duplicate_and_reorder_faults_are_visible_in_pu() {
    let sim = Simulator::start(fast_config(5)).await.unwrap();
    let mut c = connect(&format!(
        "{}/public/ws/btcusdt@depth@0ms",
        ws(&sim, Exchange::BinanceDerivatives)
    ))
    .await;
    let target = Target::symbol(Exchange::BinanceDerivatives, "BTCUSDT");
    let mut prev: Option<u64> = None;
    let (mut gaps, mut dups, mut backwards) = (0, 0, 0);
    for i in 0..240 {
        match i {
            40 => sim.inject(Fault::SequenceGap {
                target: target.clone(),
                messages: 2,
            }),
            100 => sim.inject(Fault::Duplicate {
                target: target.clone(),
                messages: 1,
            }),
            160 => sim.inject(Fault::OutOfOrder {
                target: target.clone(),
                messages: 1,
            }),
            _ => 0,
        };
        let d = next_matching(&mut c, |v| v["e"] == "depthUpdate").await;
        let (pu, u) = (d["pu"].as_u64().unwrap(), d["u"].as_u64().unwrap());
        if let Some(p) = prev {
            if u == p {
                dups += 1;
            } else if u < p {
                backwards += 1;
            } else if pu != p {
                gaps += 1;
            }
        }
        prev = Some(u);
    }
    let s = sim
        .stats()
        .channel_total(Exchange::BinanceDerivatives, "book");
    assert_eq!((s.gaps_injected, s.duplicated, s.reordered), (1, 1, 1));
    assert_eq!(dups, 1);
    assert_eq!(backwards, 1);
    // A swapped pair M2,M1 shows as two pu breaks (at M2 and at the message after M1) plus one step back.
    assert_eq!(
        gaps, 3,
        "one injected gap + two breaks around the reordered pair"
    );
    sim.stop().await;
}

#[tokio::test]
async fn usdm_long_short_endpoints_differ_and_open_interest_answers() {
    let sim = Simulator::start(fast_config(9)).await.unwrap();
    let base = rest(&sim, Exchange::BinanceDerivatives);
    let q = "symbol=BTCUSDT&period=5m&limit=5&endTime=1700000000000";
    let mut series = Vec::new();
    for ep in [
        "topLongShortPositionRatio",
        "topLongShortAccountRatio",
        "globalLongShortAccountRatio",
    ] {
        let (status, _, body) = http_get(&format!("{base}/futures/data/{ep}?{q}")).await;
        assert_eq!(status, 200);
        let rows = body.as_array().unwrap().clone();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[4]["timestamp"], "1699999800000",
            "ascending, aligned to the period"
        );
        let long: f64 = rows[0]["longAccount"].as_str().unwrap().parse().unwrap();
        let short: f64 = rows[0]["shortAccount"].as_str().unwrap().parse().unwrap();
        assert!((long + short - 1.0).abs() < 1e-9);
        series.push(
            rows.iter()
                .map(|r| r["longShortRatio"].clone())
                .collect::<Vec<_>>(),
        );
    }
    assert_ne!(series[0], series[1]);
    assert_ne!(series[1], series[2]);
    let (status, _, again) = http_get(&format!(
        "{base}/futures/data/topLongShortPositionRatio?{q}"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        again
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["longShortRatio"].clone())
            .collect::<Vec<_>>(),
        series[0],
        "stable for a seed"
    );
    let (status, headers, oi) =
        http_get(&format!("{base}/fapi/v1/openInterest?symbol=BTCUSDT")).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-mbx-used-weight-1m"));
    assert!(oi["openInterest"].is_string() && oi["time"].is_i64());
    sim.stop().await;
}

/// The same seed gives the same diffs and trades (times aside); another seed does not.
#[tokio::test]
async fn same_seed_same_data() {
    async fn collect(seed: u64) -> Vec<Value> {
        let sim = Simulator::start(fast_config(seed)).await.unwrap();
        let mut c = connect(&format!(
            "{}/public/ws/btcusdt@depth@0ms",
            ws(&sim, Exchange::BinanceDerivatives)
        ))
        .await;
        let mut v = Vec::new();
        for _ in 0..150 {
            v.push(strip_times(
                next_matching(&mut c, |v| v["e"] == "depthUpdate").await,
            ));
        }
        sim.stop().await;
        v
    }
    let (a, b, other) = (collect(11).await, collect(11).await, collect(12).await);
    // Clients attach at different steps: align on the update id.
    let start = b[0]["U"].clone();
    let pos = a.iter().position(|d| d["U"] == start);
    let (a, b) = match pos {
        Some(p) => (&a[p..], &b[..]),
        None => {
            let p = b
                .iter()
                .position(|d| d["U"] == a[0]["U"])
                .expect("overlapping id ranges");
            (&a[..], &b[p..])
        }
    };
    let n = a.len().min(b.len());
    assert!(n >= 50, "overlap {n}");
    assert_eq!(a[..n], b[..n]);
    assert!(!other.iter().any(|d| d == &a[0]));
}

/// Throttled USD-M depth: each 250 ms window merges many changes; pu is the previous window's u.
#[tokio::test]
async fn usdm_throttled_depth_windows_chain() {
    let sim = Simulator::start(fast_config(15)).await.unwrap();
    let mut c = connect(&format!(
        "{}/public/ws/ethusdt@depth",
        ws(&sim, Exchange::BinanceDerivatives)
    ))
    .await;
    let mut prev: Option<u64> = None;
    let mut widest = 0;
    for _ in 0..8 {
        let d = next_matching(&mut c, |v| v["e"] == "depthUpdate").await;
        let (first, last) = (d["U"].as_u64().unwrap(), d["u"].as_u64().unwrap());
        if let Some(p) = prev {
            assert_eq!(d["pu"].as_u64(), Some(p));
            assert_eq!(first, p + 1, "windows cover every id");
        }
        widest = widest.max(last - first + 1);
        prev = Some(last);
    }
    assert!(widest > 5, "a window merges several diffs ({widest} ids)");
    sim.stop().await;
}
