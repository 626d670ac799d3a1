//! REST endpoints of the simulated venues: order-book snapshots, open interest, long/short ratios, DVOL history,
//! trade history ([`super::history`]),
//! server time (skewed by `simulator.clock_skew_ms`), with Binance weights, 429/418 + Retry-After and slow
//! answers on demand.

use super::RestFaults;
use super::Shared;
use super::book::fmt_fixed;
use super::deribit::{dvol_candles, resolution_s};
use super::faults::RestRejection;
use super::history;
use super::market::instrument_params;
use super::okx;
use super::rng::mix;
use super::server::Response;
use super::{lock, now_ms};
use crate::internal_events::InternalEvent;
use crate::internal_events::simulator::SimulatorRestServed;
use marketprism_model::Exchange;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/").replace("%3A", ":")))
        .collect()
}

/// Binance spot `/api/v3/depth` weight by limit.
pub(crate) fn spot_depth_weight(limit: u32) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// Binance USD-M `/fapi/v1/depth` weight by limit.
pub(crate) fn usdm_depth_weight(limit: u32) -> u32 {
    match limit {
        0..=50 => 2,
        51..=100 => 5,
        101..=500 => 10,
        _ => 20,
    }
}

/// Which long/short series an endpoint serves; each has its own values so calling the wrong one shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LsrSeries {
    BinanceTopPosition,
    BinanceTopAccount,
    BinanceGlobalAccount,
    OkxTopPosition,
    OkxTopAccount,
    OkxAllAccountContract,
    OkxAllAccountCcy,
}

fn period_ms(p: &str) -> Option<i64> {
    let (n, unit) = p.split_at(p.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit.trim_end_matches("utc") {
        "m" => 60_000,
        "h" | "H" => 3_600_000,
        "d" | "D" => 86_400_000,
        "W" => 7 * 86_400_000,
        _ => return None,
    };
    Some(n * unit_ms)
}

/// Long share of accounts/positions in 1e-4 for one series, symbol and period start (pure).
pub(crate) fn lsr_long_e4(seed: u64, series: LsrSeries, symbol: &str, ts: i64) -> i64 {
    3_000 + (mix(seed, &[&format!("{series:?}"), symbol, &ts.to_string()]) % 4_000) as i64
}

fn lsr_rows(
    q: &HashMap<String, String>,
    default_limit: i64,
    max_limit: i64,
) -> Result<(i64, Vec<i64>), String> {
    let period = q.get("period").map_or("5m", String::as_str);
    let step = period_ms(period).ok_or_else(|| format!("invalid period {period}"))?;
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(default_limit)
        .clamp(1, max_limit);
    let end = q
        .get("endTime")
        .or(q.get("end"))
        .and_then(|e| e.parse::<i64>().ok())
        .unwrap_or_else(now_ms);
    let start = q
        .get("startTime")
        .or(q.get("begin"))
        .and_then(|s| s.parse::<i64>().ok());
    let last = end.div_euclid(step) * step;
    let mut ts: Vec<i64> = (0..limit)
        .map(|i| last - i * step)
        .filter(|t| start.is_none_or(|s| *t >= s))
        .collect();
    ts.reverse();
    Ok((step, ts))
}

fn binance_err(code: i64, msg: &str) -> Response {
    Response::json(400, json!({"code": code, "msg": msg}).to_string())
}

fn okx_ok(data: Value) -> Response {
    Response::json(
        200,
        json!({"code": "0", "msg": "", "data": data}).to_string(),
    )
}

fn okx_err(code: &str, msg: &str) -> Response {
    Response::json(
        200,
        json!({"code": code, "msg": msg, "data": []}).to_string(),
    )
}

/// Consume one pending REST fault of the venue: a rejection, or a delay to apply before answering.
fn take_fault(faults: &mut RestFaults) -> (Option<(RestRejection, u64)>, Option<u64>) {
    if let Some(r) = faults.reject.first_mut() {
        r.2 -= 1;
        let out = (r.0, r.1);
        faults.reject.retain(|r| r.2 > 0);
        return (Some(out), None);
    }
    if let Some(s) = faults.slow.first_mut() {
        s.1 -= 1;
        let delay = s.0;
        faults.slow.retain(|s| s.1 > 0);
        return (None, Some(delay));
    }
    (None, None)
}

pub(crate) async fn handle(exchange: Exchange, rel: &str, shared: &Arc<Shared>) -> Response {
    let (path, query) = rel.split_once('?').unwrap_or((rel, ""));
    let q = parse_query(query);
    shared.stats.venue(exchange, |v| v.rest_requests += 1);
    let (reject, delay) = take_fault(lock(&shared.rest_faults).entry(exchange).or_default());
    let response = if let Some((rejection, retry_after)) = reject {
        shared.stats.venue(exchange, |v| v.rest_rejected += 1);
        let mut r = Response::json(
            rejection.status(),
            json!({"code": -1003, "msg": "Way too many requests; IP banned or rate limited (simulated)."}).to_string(),
        );
        r.headers
            .push(("Retry-After".into(), retry_after.to_string()));
        r
    } else {
        if let Some(ms) = delay {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let inst_type = q.get("instType").map(String::as_str);
        if let Some(mut list) = super::instruments::listing(exchange, path, inst_type) {
            super::instruments::leave_out(&mut list, |name| {
                shared.is_left_out_of_list(exchange, name)
            });
            Response::json(200, list.to_string())
        } else {
            match exchange {
                Exchange::BinanceSpot | Exchange::BinanceDerivatives => {
                    binance(exchange, path, &q, shared)
                }
                Exchange::OkxSpot | Exchange::OkxDerivatives => {
                    okx_rest(exchange, path, &q, shared)
                }
                Exchange::DeribitDerivatives => deribit(path, &q, shared),
                Exchange::GateSpot | Exchange::GateDerivatives => {
                    super::gate::rest(exchange, path, &q, shared)
                }
                Exchange::MexcSpot | Exchange::MexcDerivatives => {
                    super::mexc_rest::handle(exchange, path, &q, shared)
                }
            }
        }
    };
    SimulatorRestServed {
        exchange,
        path: path.to_owned(),
        status: response.status,
    }
    .emit();
    response
}

fn binance(
    exchange: Exchange,
    path: &str,
    q: &HashMap<String, String>,
    shared: &Arc<Shared>,
) -> Response {
    let spot = exchange == Exchange::BinanceSpot;
    let symbol = q.get("symbol").cloned().unwrap_or_default();
    let limit: Option<u32> = q.get("limit").and_then(|l| l.parse().ok());
    let weight = match (spot, path) {
        (true, "/api/v3/depth") => spot_depth_weight(limit.unwrap_or(100)),
        (false, "/fapi/v1/depth") => usdm_depth_weight(limit.unwrap_or(500)),
        (false, "/fapi/v1/openInterest") => 1,
        (true, "/api/v3/aggTrades") => 4,
        (true, "/api/v3/historicalTrades") => 25,
        (false, "/fapi/v1/aggTrades") => 20,
        _ => 0,
    };
    // Weight budget per minute: exceeding it gives 429 with Retry-After until the minute ends.
    let budget = if spot {
        shared.config.binance_spot_weight_per_min
    } else {
        shared.config.binance_usdm_weight_per_min
    };
    let now = now_ms();
    let used = {
        let mut w = lock(&shared.weights);
        let e = w.entry(exchange).or_insert((now / 60_000, 0));
        if e.0 != now / 60_000 {
            *e = (now / 60_000, 0);
        }
        e.1 += weight;
        e.1
    };
    let mut r = if used > budget {
        shared.stats.venue(exchange, |v| v.rest_rejected += 1);
        let mut r = Response::json(429, json!({"code": -1003, "msg": format!("Too many requests; current limit is {budget} request weight per 1 MINUTE.")}).to_string());
        r.headers
            .push(("Retry-After".into(), (60 - (now / 1_000) % 60).to_string()));
        r
    } else {
        binance_route(spot, path, &symbol, limit, q, shared)
    };
    r.headers
        .push(("X-MBX-USED-WEIGHT-1m".into(), used.to_string()));
    r
}

fn binance_route(
    spot: bool,
    path: &str,
    symbol: &str,
    limit: Option<u32>,
    q: &HashMap<String, String>,
    shared: &Arc<Shared>,
) -> Response {
    let exchange = if spot {
        Exchange::BinanceSpot
    } else {
        Exchange::BinanceDerivatives
    };
    let valid_symbol = !symbol.is_empty()
        && symbol
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && !shared.is_delisted(exchange, symbol);
    let px = |v: i64, d: u32| fmt_fixed(v * 10i64.pow(8 - d.min(8)), 8);
    match (spot, path) {
        (true, "/api/v3/depth") | (false, "/fapi/v1/depth") => {
            if !valid_symbol {
                return binance_err(-1121, "Invalid symbol.");
            }
            let allowed = [5, 10, 20, 50, 100, 500, 1000];
            let limit = limit.unwrap_or(if spot { 100 } else { 500 });
            if spot && !(1..=5000).contains(&limit) || !spot && !allowed.contains(&limit) {
                return binance_err(-1100, "Illegal characters found in parameter 'limit'.");
            }
            let m = shared.market(exchange, symbol);
            let (snap, scale) = {
                let mut m = lock(&m);
                (m.rest_snapshot(limit as usize, now_ms()), m.scale)
            };
            let side = |v: &[(i64, i64)]| -> Vec<[String; 2]> {
                v.iter()
                    .map(|(p, q)| [px(*p, scale.price_decimals), px(*q, scale.qty_decimals)])
                    .collect()
            };
            let mut body = json!({"lastUpdateId": snap.last_id, "bids": side(&snap.bids), "asks": side(&snap.asks)});
            if !spot {
                body["E"] = json!(snap.ts_ms);
                body["T"] = json!(snap.ts_ms);
            }
            Response::json(200, body.to_string())
        }
        (false, "/fapi/v1/openInterest") => {
            if !valid_symbol {
                return binance_err(-1121, "Invalid symbol.");
            }
            let m = shared.market(exchange, symbol);
            let (oi, d) = {
                let mut m = lock(&m);
                (m.step_open_interest(), m.scale.qty_decimals)
            };
            Response::json(
                200,
                json!({"openInterest": fmt_fixed(oi, d), "symbol": symbol, "time": now_ms()})
                    .to_string(),
            )
        }
        (
            false,
            "/futures/data/topLongShortPositionRatio"
            | "/futures/data/topLongShortAccountRatio"
            | "/futures/data/globalLongShortAccountRatio",
        ) => {
            if !valid_symbol {
                return binance_err(-1121, "Invalid symbol.");
            }
            let series = match path {
                "/futures/data/topLongShortPositionRatio" => LsrSeries::BinanceTopPosition,
                "/futures/data/topLongShortAccountRatio" => LsrSeries::BinanceTopAccount,
                _ => LsrSeries::BinanceGlobalAccount,
            };
            let (_, ts) = match lsr_rows(q, 30, 500) {
                Ok(r) => r,
                Err(e) => return binance_err(-1102, &e),
            };
            let rows: Vec<Value> = ts
                .into_iter()
                .map(|t| {
                    let long = lsr_long_e4(shared.config.seed, series, symbol, t);
                    let ratio = long as f64 / (10_000 - long) as f64;
                    json!({"symbol": symbol, "longShortRatio": format!("{ratio:.4}"), "longAccount": fmt_fixed(long, 4),
                           "shortAccount": fmt_fixed(10_000 - long, 4), "timestamp": t.to_string()})
                })
                .collect();
            Response::json(200, Value::Array(rows).to_string())
        }
        (true, "/api/v3/aggTrades" | "/api/v3/historicalTrades")
        | (false, "/fapi/v1/aggTrades") => {
            if !valid_symbol {
                return binance_err(-1121, "Invalid symbol.");
            }
            let m = shared.market(exchange, symbol);
            let m = lock(&m);
            if path == "/api/v3/historicalTrades" {
                history::binance_historical_trades(&m, q)
            } else {
                history::binance_agg_trades(spot, &m, q)
            }
        }
        (_, "/api/v3/time" | "/fapi/v1/time") => {
            // Binance spot "Check server time" / USD-M "Check Server Time": `{"serverTime": ms}`, weight 1.
            Response::json(
                200,
                json!({"serverTime": super::server_time_ms(&shared.config)}).to_string(),
            )
        }
        _ => Response::json(
            404,
            json!({"code": -1, "msg": format!("unknown path {path}")}).to_string(),
        ),
    }
}

fn okx_rest(
    exchange: Exchange,
    path: &str,
    q: &HashMap<String, String>,
    shared: &Arc<Shared>,
) -> Response {
    let inst_id = q.get("instId").cloned().unwrap_or_default();
    const RUBIK: &str = "/api/v5/rubik/stat/contracts/";
    match path {
        // Public data "Get system time": `data[0].ts` is the server time, ms as a string.
        "/api/v5/public/time" => {
            okx_ok(json!([{"ts": super::server_time_ms(&shared.config).to_string()}]))
        }
        "/api/v5/market/books" => {
            if inst_id.is_empty() {
                return okx_err("50014", "Parameter instId can not be empty");
            }
            if shared.is_delisted(exchange, &inst_id) {
                return okx_err("51001", "Instrument ID does not exist");
            }
            let sz: usize = q.get("sz").and_then(|s| s.parse().ok()).unwrap_or(1);
            if !(1..=400).contains(&sz) {
                return okx_err("51000", "Parameter sz error");
            }
            let m = shared.market(exchange, &inst_id);
            let (snap, scale) = {
                let mut m = lock(&m);
                (m.rest_snapshot(sz, now_ms()), m.scale)
            };
            let mut data = okx::snapshot_data(&snap, scale, None);
            let no_seq = {
                let mut f = lock(&shared.rest_faults);
                let f = f.entry(exchange).or_default();
                let hit = f.no_seq_id > 0;
                f.no_seq_id = f.no_seq_id.saturating_sub(1);
                hit
            };
            if no_seq && let Some(d) = data.as_object_mut() {
                d.remove("seqId");
            }
            okx_ok(json!([data]))
        }
        "/api/v5/market/history-trades" => {
            if inst_id.is_empty() {
                return okx_err("50014", "Parameter instId can not be empty");
            }
            if shared.is_delisted(exchange, &inst_id) {
                return okx_err("51001", "Instrument ID does not exist");
            }
            let m = shared.market(exchange, &inst_id);
            let m = lock(&m);
            history::okx_history_trades(&m, q)
        }
        "/api/v5/public/open-interest" => {
            if okx::inst_type(&inst_id) == "SPOT" {
                return okx_err("51001", "Instrument ID does not exist");
            }
            let m = shared.market(exchange, &inst_id);
            let oi = lock(&m).step_open_interest();
            let d = instrument_params(&inst_id).0.qty_decimals;
            okx_ok(
                json!([{"instId": inst_id, "instType": "SWAP", "oi": super::fmt_trimmed(oi, d), "oiCcy": super::fmt_trimmed(oi, d + 2), "ts": now_ms().to_string()}]),
            )
        }
        _ if path.starts_with(RUBIK) => {
            let (series, key, needs) = match &path[RUBIK.len()..] {
                "long-short-position-ratio-contract-top-trader" => {
                    (LsrSeries::OkxTopPosition, inst_id.clone(), "instId")
                }
                "long-short-account-ratio-contract-top-trader" => {
                    (LsrSeries::OkxTopAccount, inst_id.clone(), "instId")
                }
                "long-short-account-ratio-contract" => {
                    (LsrSeries::OkxAllAccountContract, inst_id.clone(), "instId")
                }
                "long-short-account-ratio" => (
                    LsrSeries::OkxAllAccountCcy,
                    q.get("ccy").cloned().unwrap_or_default(),
                    "ccy",
                ),
                _ => {
                    return Response::json(
                        404,
                        json!({"code": "404", "msg": "Not Found"}).to_string(),
                    );
                }
            };
            if key.is_empty() {
                return okx_err("50014", &format!("Parameter {needs} can not be empty"));
            }
            let (_, ts) = match lsr_rows(q, 100, 100) {
                Ok(r) => r,
                Err(_) => return okx_err("51000", "Parameter period error"),
            };
            // OKX lists the newest row first.
            let rows: Vec<Value> = ts
                .into_iter()
                .rev()
                .map(|t| {
                    let long = lsr_long_e4(shared.config.seed, series, &key, t);
                    json!([
                        t.to_string(),
                        format!("{:.4}", long as f64 / (10_000 - long) as f64)
                    ])
                })
                .collect();
            okx_ok(Value::Array(rows))
        }
        _ => Response::json(404, json!({"code": "404", "msg": "Not Found"}).to_string()),
    }
}

fn deribit(path: &str, q: &HashMap<String, String>, shared: &Arc<Shared>) -> Response {
    let rpc_err = |msg: &str| {
        Response::json(
            400,
            json!({"jsonrpc": "2.0", "error": {"code": -32602, "message": msg}, "testnet": false})
                .to_string(),
        )
    };
    match path {
        "/api/v2/public/get_volatility_index_data" => {
            let currency = q.get("currency").cloned().unwrap_or_default();
            let start = q.get("start_timestamp").and_then(|s| s.parse().ok());
            let end = q.get("end_timestamp").and_then(|s| s.parse().ok());
            let res = resolution_s(
                q.get("resolution")
                    .map(|r| Value::String(r.clone()))
                    .as_ref(),
            );
            match (start, end, res) {
                (Some(s), Some(e), Some(r)) if !currency.is_empty() => {
                    let data = dvol_candles(shared.config.seed, &currency, s, e, r);
                    Response::json(200, json!({"jsonrpc": "2.0", "result": {"data": data, "continuation": null}, "testnet": false}).to_string())
                }
                _ => rpc_err("Invalid params"),
            }
        }
        "/api/v2/public/get_last_trades_by_instrument_and_time"
        | "/api/v2/public/get_last_trades_by_instrument" => {
            let Some(inst) = q.get("instrument_name").filter(|i| !i.is_empty()) else {
                return rpc_err("Invalid params");
            };
            let select = if path.ends_with("_and_time") {
                history::DeribitSelect::ByTime
            } else {
                history::DeribitSelect::BySeq
            };
            let m = shared.market(Exchange::DeribitDerivatives, inst);
            let m = lock(&m);
            history::deribit_trades(&m, q, select)
        }
        // `public/get_time` over REST: `result` is the server time, ms.
        "/api/v2/public/get_time" => Response::json(
            200,
            json!({"jsonrpc": "2.0", "result": super::server_time_ms(&shared.config)}).to_string(),
        ),
        _ => Response::json(
            404,
            json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}})
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_periods_and_series_differ() {
        assert_eq!((spot_depth_weight(100), spot_depth_weight(5000)), (5, 250));
        assert_eq!(
            (
                usdm_depth_weight(5),
                usdm_depth_weight(100),
                usdm_depth_weight(1000)
            ),
            (2, 5, 20)
        );
        assert_eq!(period_ms("5m"), Some(300_000));
        assert_eq!(period_ms("1H"), Some(3_600_000));
        assert_eq!(period_ms("1Dutc"), Some(86_400_000));
        assert_eq!(period_ms("x"), None);
        let a = lsr_long_e4(1, LsrSeries::BinanceTopPosition, "BTCUSDT", 300_000);
        let b = lsr_long_e4(1, LsrSeries::BinanceTopAccount, "BTCUSDT", 300_000);
        let c = lsr_long_e4(1, LsrSeries::BinanceGlobalAccount, "BTCUSDT", 300_000);
        assert!(a != b && b != c && a != c, "{a} {b} {c}");
        let q = parse_query("period=5m&limit=3&endTime=1000000");
        let (_, ts) = lsr_rows(&q, 30, 500).unwrap();
        assert_eq!(ts, vec![300_000, 600_000, 900_000]);
    }
}
