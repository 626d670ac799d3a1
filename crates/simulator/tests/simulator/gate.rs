//! Gate v4 public wire behaviour (spot `/ws/v4/`, USDT futures `/v4/ws/usdt`), read with a plain client.

use crate::common::*;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange;
use marketprism_simulator::{Fault, Simulator, SimulatorHandle, Target};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::time::Duration;

const SPOT: Exchange = Exchange::GateSpot;
const FUT: Exchange = Exchange::GateDerivatives;

fn rest(h: &SimulatorHandle, e: Exchange) -> String {
    h.endpoints(e).rest_url.unwrap()
}

async fn sub(c: &mut Ws, id: i64, channel: &str, payload: Value) -> Value {
    send(
        c,
        json!({"time": 1, "id": id, "channel": channel, "event": "subscribe", "payload": payload}),
    )
    .await;
    next_matching(c, |v| v["event"] == "subscribe" && v["id"] == id).await
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// Futures sizes are integer contracts of 0.001 base: as base-unit text, for comparing with the true book.
fn base(contracts: &Value) -> String {
    (Decimal::from(contracts.as_i64().unwrap()) / Decimal::from(1_000))
        .normalize()
        .to_string()
}

/// Apply one `order_book_update` result (levels `[p, s]` or `{p, s}`).
fn apply(book: &mut TextBook, r: &Value, futures: bool) {
    for (side, bid) in [("b", true), ("a", false)] {
        for l in r[side].as_array().unwrap() {
            if futures {
                book.set(bid, l["p"].as_str().unwrap(), &base(&l["s"]));
            } else {
                book.set(bid, l[0].as_str().unwrap(), l[1].as_str().unwrap());
            }
        }
    }
}

/// One update under the documented rule: drop `u < id+1`, first `U <= id+1 <= u`, then `U == u+1`.
fn step(book: &mut TextBook, last: &mut Option<u64>, id: u64, v: &Value, futures: bool) {
    let r = &v["result"];
    let (first_u, u) = (r["U"].as_u64().unwrap(), r["u"].as_u64().unwrap());
    match *last {
        None if u < id + 1 => return,
        None => assert!(
            first_u <= id + 1 && id < u,
            "first update bridges {id}: {first_u}..{u}"
        ),
        Some(p) => assert_eq!(first_u, p + 1, "U continues the previous u"),
    }
    apply(book, r, futures);
    *last = Some(u);
}

/// Subscribe, buffer, fetch the REST snapshot with `id`, sync by the documented rule (drop `u < id+1`,
/// first `U <= id+1 <= u`, then `U == u+1`) and compare with the simulator's true book.
async fn book_syncs(exchange: Exchange, seed: u64) {
    let futures = exchange == FUT;
    let sim = Simulator::start(fast_config(seed)).await.unwrap();
    let mut c = connect(&sim.ws_endpoint(exchange)).await;
    let (channel, payload) = if futures {
        (
            "futures.order_book_update",
            json!(["BTC_USDT", "100ms", "100"]),
        )
    } else {
        ("spot.order_book_update", json!(["BTC_USDT", "100ms"]))
    };
    let ack = sub(&mut c, 7, channel, payload.clone()).await;
    assert_eq!(ack["result"]["status"], "success", "{ack}");
    assert_eq!(
        (&ack["channel"], &ack["payload"]),
        (&json!(channel), &payload)
    );
    let mut buffered = Vec::new();
    for _ in 0..5 {
        buffered.push(next_matching(&mut c, |v| v["channel"] == channel).await);
    }
    let path = if futures {
        "/api/v4/futures/usdt/order_book?contract=BTC_USDT&limit=100&with_id=true"
    } else {
        "/api/v4/spot/order_book?currency_pair=BTC_USDT&limit=100&with_id=true"
    };
    let (status, _, snap) = http_get(&format!("{}{path}", rest(&sim, exchange))).await;
    assert_eq!(status, 200, "{snap}");
    let id = snap["id"].as_u64().unwrap();
    if futures {
        assert!(
            snap["current"].as_f64().unwrap() < 1e11,
            "futures `current` is seconds"
        );
    } else {
        assert!(
            snap["current"].as_i64().unwrap() > 1_000_000_000_000,
            "spot `current` is ms"
        );
    }
    let mut book = TextBook::default();
    for (side, bid) in [("bids", true), ("asks", false)] {
        for l in snap[side].as_array().unwrap() {
            if futures {
                book.set(bid, l["p"].as_str().unwrap(), &base(&l["s"]));
            } else {
                book.set(bid, l[0].as_str().unwrap(), l[1].as_str().unwrap());
            }
        }
    }
    let mut last: Option<u64> = None;
    for v in &buffered {
        step(&mut book, &mut last, id, v, futures);
    }
    for _ in 0..50 {
        let v = next_matching(&mut c, |v| v["channel"] == channel).await;
        step(&mut book, &mut last, id, &v, futures);
    }
    sim.set_paused(true);
    let top = sim.book_top(exchange, "BTC_USDT", 100);
    while last.unwrap() < top.last_id {
        let v = next_matching(&mut c, |v| v["channel"] == channel).await;
        step(&mut book, &mut last, id, &v, futures);
    }
    assert_eq!(book.normalized(20), {
        let norm = |l: &Levels| -> Levels {
            l.iter()
                .take(20)
                .map(|(p, q)| {
                    (
                        p.parse::<Decimal>().unwrap().normalize().to_string(),
                        q.parse::<Decimal>().unwrap().normalize().to_string(),
                    )
                })
                .collect()
        };
        (norm(&top.bids), norm(&top.asks))
    });
    sim.stop().await;
}

#[tokio::test]
async fn spot_book_syncs_from_rest_snapshot_with_id() {
    book_syncs(SPOT, 31).await;
}

#[tokio::test]
async fn futures_book_syncs_from_rest_snapshot_with_id() {
    book_syncs(FUT, 32).await;
}

#[tokio::test]
async fn trades_tickers_and_liquidations() {
    let sim = Simulator::start(fast_config(33)).await.unwrap();
    let mut s = connect(&sim.ws_endpoint(SPOT)).await;
    sub(&mut s, 1, "spot.trades", json!(["ETH_USDT"])).await;
    let mut prev: Option<u64> = None;
    for _ in 0..30 {
        let t = next_matching(&mut s, |v| v["channel"] == "spot.trades").await["result"].clone();
        let id = t["id"].as_u64().unwrap();
        if let Some(p) = prev {
            assert_eq!(id, p + 1, "one frame per trade, ids contiguous");
        }
        prev = Some(id);
        let ms = t["create_time_ms"].as_str().unwrap();
        let (whole, frac) = ms.split_once('.').unwrap();
        assert_eq!((whole.len(), frac.len()), (13, 4), "{ms}");
        assert_eq!(
            whole.parse::<i64>().unwrap() / 1_000,
            t["create_time"].as_i64().unwrap()
        );
        assert!(["buy", "sell"].contains(&t["side"].as_str().unwrap()));
        assert_eq!(t["currency_pair"], "ETH_USDT");
    }
    let mut f = connect(&sim.ws_endpoint(FUT)).await;
    sub(&mut f, 1, "futures.trades", json!(["BTC_USDT"])).await;
    sub(&mut f, 2, "futures.tickers", json!(["BTC_USDT"])).await;
    sub(&mut f, 3, "futures.public_liquidates", json!(["!all"])).await;
    let (mut buys, mut sells, mut funding, mut oi, mut liqs) = (0, 0, 0, 0, 0);
    let mut ticker_times = std::collections::HashSet::new();
    for _ in 0..20_000 {
        let v = next_json(&mut f).await;
        match v["channel"].as_str().unwrap() {
            "futures.trades" => {
                for t in v["result"].as_array().unwrap() {
                    let size = t["size"].as_i64().expect("integer contracts");
                    if size > 0 {
                        buys += 1
                    } else {
                        sells += 1
                    }
                    assert!(t["create_time_ms"].as_i64().unwrap() > 1_000_000_000_000);
                }
            }
            "futures.tickers" => {
                let r = &v["result"][0];
                assert_eq!(r["contract"], "BTC_USDT");
                // One push per instant: a second would repeat every row of the first.
                let at = v["time_ms"].as_i64().unwrap();
                assert!(ticker_times.insert(at), "two tickers at {at} ms");
                funding +=
                    usize::from(r["funding_rate"].is_string() && r["mark_price"].is_string());
                oi += usize::from(r["total_size"].is_string());
            }
            "futures.public_liquidates" => {
                let r = &v["result"][0];
                assert!(
                    r["size"].as_i64().unwrap() != 0
                        && r["time"].as_i64().unwrap() > 1_000_000_000_000
                );
                liqs += 1;
            }
            other => panic!("unexpected channel {other}: {v}"),
        }
        if buys > 0 && sells > 0 && funding > 0 && oi > 0 && liqs > 0 {
            break;
        }
    }
    assert!(
        buys > 0 && sells > 0 && funding > 0 && oi > 0 && liqs > 0,
        "{buys} {sells} {funding} {oi} {liqs}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn refusals_ping_paths_and_rest_errors() {
    let sim = Simulator::start(fast_config(34)).await.unwrap();
    sim.inject(Fault::Delist(Target::symbol(SPOT, "ETH_USDT")));
    let mut c = connect(&sim.ws_endpoint(SPOT)).await;
    for (id, channel, payload, why) in [
        (
            1,
            "spot.trades",
            json!(["NOPE_USDT"]),
            "unknown currency pair NOPE_USDT",
        ),
        (
            2,
            "spot.trades",
            json!(["ETH_USDT"]),
            "unknown currency pair ETH_USDT",
        ),
        (
            3,
            "spot.order_book_update",
            json!(["BTC_USDT", "7ms"]),
            "invalid argument",
        ),
        (4, "futures.trades", json!(["BTC_USDT"]), "unknown channel"),
    ] {
        let r = sub(&mut c, id, channel, payload).await;
        assert_eq!(r["error"]["code"], 2, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains(why), "{r}");
        assert!(r["result"].is_null());
    }
    send(&mut c, json!({"time": 1, "channel": "spot.ping"})).await;
    let pong = next_matching(&mut c, |v| v["channel"] == "spot.pong").await;
    assert!(pong["result"].is_null() && pong["time_ms"].as_i64().unwrap() > 0);
    let base = rest(&sim, SPOT);
    let (status, _, body) = http_get(&format!(
        "{base}/api/v4/spot/order_book?currency_pair=ETH_USDT&with_id=true"
    ))
    .await;
    assert_eq!(
        (status, text(&body["label"])),
        (400, "INVALID_CURRENCY_PAIR".into())
    );
    let (status, _, body) = http_get(&format!(
        "{base}/api/v4/spot/order_book?currency_pair=BTC_USDT"
    ))
    .await;
    assert_eq!(status, 200);
    assert!(body.get("id").is_none(), "id only with with_id=true");
    let (status, _, body) = http_get(&format!(
        "{base}/api/v4/spot/order_book?currency_pair=BTC_USDT&limit=500"
    ))
    .await;
    assert_eq!(
        (status, text(&body["label"])),
        (400, "INVALID_PARAM_VALUE".into())
    );
    let (status, _, body) = http_get(&format!(
        "{}/api/v4/futures/usdt/order_book?contract=XRP-USDT",
        rest(&sim, FUT)
    ))
    .await;
    assert_eq!(
        (status, text(&body["label"])),
        (400, "CONTRACT_NOT_FOUND".into())
    );
    let (status, _, body) = http_get(&format!("{base}/api/v4/spot/time")).await;
    assert_eq!(status, 200);
    assert!(body["server_time"].as_i64().unwrap() > 1_000_000_000_000);
    let (_, _, pairs) = http_get(&format!("{base}/api/v4/spot/currency_pairs")).await;
    assert!(
        pairs
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == "BTC_USDT" && p["trade_status"] == "tradable")
    );
    let (_, _, contracts) = http_get(&format!(
        "{}/api/v4/futures/usdt/contracts",
        rest(&sim, FUT)
    ))
    .await;
    assert!(
        contracts
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["quanto_multiplier"] == "0.001" && c["type"] == "direct")
    );
    let bad_path = sim.ws_endpoint(FUT).replace("/v4/ws/usdt", "/v4/ws/btc");
    let mut bad = connect(&bad_path).await;
    assert!(matches!(
        next(&mut bad, Duration::from_secs(5)).await,
        Got::Closed(_)
    ));
    sim.stop().await;
}

#[tokio::test]
async fn gaps_duplicates_and_idle_cut() {
    let config = SimulatorConfig {
        gate_idle_timeout_ms: 600,
        ..fast_config(35)
    };
    let sim = Simulator::start(config).await.unwrap();
    let mut c = connect(&sim.ws_endpoint(FUT)).await;
    sub(
        &mut c,
        1,
        "futures.order_book_update",
        json!(["ETH_USDT", "100ms", "100"]),
    )
    .await;
    let ch = |v: &Value| v["channel"] == "futures.order_book_update";
    let mut last = next_matching(&mut c, ch).await["result"]["u"]
        .as_u64()
        .unwrap();
    sim.inject(Fault::SequenceGap {
        target: Target::symbol(FUT, "ETH_USDT"),
        messages: 2,
    });
    let mut broken = false;
    for _ in 0..40 {
        let r = next_matching(&mut c, ch).await["result"].clone();
        broken |= r["U"].as_u64().unwrap() != last + 1;
        last = r["u"].as_u64().unwrap();
    }
    assert!(broken, "a withheld update breaks U == u + 1");
    sim.inject(Fault::Duplicate {
        target: Target::symbol(FUT, "ETH_USDT"),
        messages: 1,
    });
    let mut repeated = false;
    for _ in 0..40 {
        let r = next_matching(&mut c, ch).await["result"].clone();
        repeated |= r["u"].as_u64().unwrap() == last;
        last = r["u"].as_u64().unwrap();
    }
    assert!(repeated, "the duplicate repeats the same U/u");
    // A client with no subscription and no ping is cut; one that pings is not.
    let mut silent = connect(&sim.ws_endpoint(SPOT)).await;
    let mut pinging = connect(&sim.ws_endpoint(SPOT)).await;
    let until = tokio::time::Instant::now() + Duration::from_millis(1_500);
    while tokio::time::Instant::now() < until {
        send(&mut pinging, json!({"time": 1, "channel": "spot.ping"})).await;
        if let Got::Closed(code) = next(&mut pinging, Duration::from_millis(200)).await {
            panic!("a pinging client was cut: {code:?}");
        }
    }
    assert!(matches!(
        next(&mut silent, Duration::from_secs(3)).await,
        Got::Closed(_)
    ));
    assert!(sim.stats().venue(SPOT).keepalive_cuts >= 1);
    sim.stop().await;
}
