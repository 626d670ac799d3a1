//! Trade-history endpoints of the simulated venues, answered from each market's tape of pushed
//! trades ([`Market::tape`]), so a trade missed on a stream can be fetched with the id and time the
//! stream would have given it. Written from the venues' documentation (not from the collector):
//!
//! | venue | endpoint | paging | per fill or aggregate |
//! |---|---|---|---|
//! | Binance spot | `GET /api/v3/historicalTrades?symbol&fromId&limit` (weight 25) | `fromId` inclusive, ascending; none: the most recent | fill (`id`, `price`, `qty`, `quoteQty`, `time`, `isBuyerMaker`, `isBestMatch`) |
//! | Binance spot | `GET /api/v3/aggTrades?symbol&fromId&startTime&endTime&limit` (weight 4) | as USD-M | aggregate (`a`, `p`, `q`, `f`, `l`, `T`, `m`, `M`) |
//! | Binance USD-M | `GET /fapi/v1/aggTrades?symbol&fromId&startTime&endTime&limit` (weight 20) | `fromId` or `[startTime, endTime]` (inclusive, < 1 h apart, else -1127), ascending; limit ≤ 1000, default 500 | aggregate |
//! | OKX | `GET /api/v5/market/history-trades?instId&type&after&before&limit` | `type=1` by `tradeId`, `2` by `ts`; `after`: older than, `before`: newer than; newest first; limit ≤ 100 | fill |
//! | Deribit | `GET /api/v2/public/get_last_trades_by_instrument_and_time?instrument_name&start_timestamp&end_timestamp&count&sorting` | inclusive times, `count` ≤ 1000 (default 10), `has_more` | fill |
//! | Deribit | `GET /api/v2/public/get_last_trades_by_instrument?instrument_name&start_seq&end_seq&count&sorting` | inclusive `trade_seq`, as above | fill |
//!
//! Sources: Binance Spot API "Old trade lookup" and "Compressed/Aggregate trades list"; Binance USD-M
//! Futures "Compressed/Aggregate Trades List"; OKX API v5 "Get trades history"; Deribit API v2
//! `public/get_last_trades_by_instrument_and_time`, `public/get_last_trades_by_instrument`.

use super::book::{fmt_fixed, fmt_trimmed};
use super::market::{Market, TradeBatch};
use super::server::Response;
use serde_json::{Value, json};
use std::collections::HashMap;

/// One fill of the tape with its batch's time, price and taker side.
struct TapeFill<'a> {
    ts_ms: i64,
    batch: &'a TradeBatch,
    id: u64,
    qty: i64,
}

fn fills(m: &Market) -> impl DoubleEndedIterator<Item = TapeFill<'_>> {
    m.tape.iter().flat_map(|(ts_ms, batch)| {
        batch.fills.iter().map(move |f| TapeFill {
            ts_ms: *ts_ms,
            batch,
            id: f.id,
            qty: f.qty,
        })
    })
}

fn num<T: std::str::FromStr>(q: &HashMap<String, String>, key: &str) -> Result<Option<T>, String> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            format!(
                "Illegal characters found in parameter '{key}'; legal range is '^[0-9]{{1,20}}$'."
            )
        }),
    }
}

fn binance_err(code: i64, msg: &str) -> Response {
    Response::json(400, json!({"code": code, "msg": msg}).to_string())
}

/// Binance prices and sizes: 8 fraction digits.
fn px(v: i64, decimals: u32) -> String {
    fmt_fixed(v * 10i64.pow(8 - decimals.min(8)), 8)
}

/// `limit`: default 500, 1..=1000.
fn binance_limit(q: &HashMap<String, String>) -> Result<usize, Response> {
    match num::<usize>(q, "limit") {
        Ok(None) => Ok(500),
        Ok(Some(l)) if (1..=1000).contains(&l) => Ok(l),
        Ok(Some(_)) => Err(binance_err(
            -1100,
            "Illegal characters found in parameter 'limit'.",
        )),
        Err(e) => Err(binance_err(-1100, &e)),
    }
}

/// `GET /api/v3/aggTrades` (spot) and `/fapi/v1/aggTrades` (USD-M).
pub(crate) fn binance_agg_trades(spot: bool, m: &Market, q: &HashMap<String, String>) -> Response {
    let limit = match binance_limit(q) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let (from_id, start, end) = match (
        num::<u64>(q, "fromId"),
        num::<i64>(q, "startTime"),
        num::<i64>(q, "endTime"),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return binance_err(-1100, &e),
    };
    if let (Some(s), Some(e)) = (start, end)
        && (e < s || e - s >= 3_600_000)
    {
        return binance_err(-1127, "More than 1 hours between startTime and endTime.");
    }
    let pd = m.scale.price_decimals;
    let qd = m.scale.qty_decimals;
    let row = |ts: i64, b: &TradeBatch| {
        let qty: i64 = b.fills.iter().map(|f| f.qty).sum();
        let mut o = json!({"a": b.agg_id, "p": px(b.price, pd), "q": px(qty, qd), "f": b.fills[0].id,
                           "l": b.fills[b.fills.len() - 1].id, "T": ts, "m": !b.taker_buy});
        if spot {
            o["M"] = json!(true);
        }
        o
    };
    let wanted = |ts: i64, b: &TradeBatch| {
        from_id.is_none_or(|id| b.agg_id >= id)
            && start.is_none_or(|s| ts >= s)
            && end.is_none_or(|e| ts <= e)
    };
    let rows: Vec<Value> = if from_id.is_none() && start.is_none() && end.is_none() {
        // Neither: the most recent, still in ascending order.
        let mut recent: Vec<Value> = m
            .tape
            .iter()
            .rev()
            .take(limit)
            .map(|(t, b)| row(*t, b))
            .collect();
        recent.reverse();
        recent
    } else {
        m.tape
            .iter()
            .filter(|(t, b)| wanted(*t, b))
            .take(limit)
            .map(|(t, b)| row(*t, b))
            .collect()
    };
    Response::json(200, Value::Array(rows).to_string())
}

/// `GET /api/v3/historicalTrades` (spot): fills from `fromId`, or the most recent.
pub(crate) fn binance_historical_trades(m: &Market, q: &HashMap<String, String>) -> Response {
    let limit = match binance_limit(q) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let from_id = match num::<u64>(q, "fromId") {
        Ok(v) => v,
        Err(e) => return binance_err(-1100, &e),
    };
    let (pd, qd) = (m.scale.price_decimals, m.scale.qty_decimals);
    let row = |f: &TapeFill<'_>| {
        let quote = fmt_trimmed(f.batch.price * f.qty, pd + qd);
        json!({"id": f.id, "price": px(f.batch.price, pd), "qty": px(f.qty, qd), "quoteQty": quote,
               "time": f.ts_ms, "isBuyerMaker": !f.batch.taker_buy, "isBestMatch": true})
    };
    let rows: Vec<Value> = match from_id {
        Some(id) => fills(m)
            .filter(|f| f.id >= id)
            .take(limit)
            .map(|f| row(&f))
            .collect(),
        None => {
            let mut recent: Vec<Value> = fills(m).rev().take(limit).map(|f| row(&f)).collect();
            recent.reverse();
            recent
        }
    };
    Response::json(200, Value::Array(rows).to_string())
}

fn okx_err(code: &str, msg: &str) -> Response {
    Response::json(
        200,
        json!({"code": code, "msg": msg, "data": []}).to_string(),
    )
}

/// `GET /api/v5/market/history-trades`: fills, newest first.
pub(crate) fn okx_history_trades(m: &Market, q: &HashMap<String, String>) -> Response {
    let by_ts = match q.get("type").map(String::as_str) {
        None | Some("1") => false,
        Some("2") => true,
        Some(_) => return okx_err("51000", "Parameter type error"),
    };
    let limit = match num::<usize>(q, "limit") {
        Ok(None) => 100,
        Ok(Some(l)) if (1..=100).contains(&l) => l,
        _ => return okx_err("51000", "Parameter limit error"),
    };
    let (after, before) = match (num::<i64>(q, "after"), num::<i64>(q, "before")) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return okx_err("51000", "Parameter after error"),
    };
    let (pd, qd) = (m.scale.price_decimals, m.scale.qty_decimals);
    let inst = m.symbol.to_string();
    let key = |f: &TapeFill<'_>| if by_ts { f.ts_ms } else { f.id as i64 };
    let rows: Vec<Value> = fills(m)
        .rev()
        .filter(|f| after.is_none_or(|a| key(f) < a) && before.is_none_or(|b| key(f) > b))
        .take(limit)
        .map(|f| {
            json!({"instId": inst, "side": if f.batch.taker_buy { "buy" } else { "sell" },
                   "sz": fmt_trimmed(f.qty, qd), "px": fmt_trimmed(f.batch.price, pd),
                   "tradeId": f.id.to_string(), "ts": f.ts_ms.to_string(), "source": "0"})
        })
        .collect();
    Response::json(
        200,
        json!({"code": "0", "msg": "", "data": rows}).to_string(),
    )
}

/// Which fills a Deribit trade-history call selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeribitSelect {
    /// `get_last_trades_by_instrument_and_time`: `start_timestamp..=end_timestamp` (both required).
    ByTime,
    /// `get_last_trades_by_instrument`: `start_seq..=end_seq` (each optional; `trade_seq` is the fill id).
    BySeq,
}

/// `GET /api/v2/public/get_last_trades_by_instrument_and_time` or `…/get_last_trades_by_instrument`:
/// the selected fills, `count` (≤ 1000, default 10) of them in `sorting` order, `has_more` if more matched.
pub(crate) fn deribit_trades(
    m: &Market,
    q: &HashMap<String, String>,
    select: DeribitSelect,
) -> Response {
    let invalid = |what: &str| {
        Response::json(
            400,
            json!({"jsonrpc": "2.0", "error": {"code": -32602, "message": "Invalid params", "data": {"param": what, "reason": "must be an integer"}}})
                .to_string(),
        )
    };
    let range = match select {
        DeribitSelect::ByTime => match (
            num::<i64>(q, "start_timestamp"),
            num::<i64>(q, "end_timestamp"),
        ) {
            (Ok(Some(start)), Ok(Some(end))) => (start, end),
            _ => return invalid("start_timestamp"),
        },
        DeribitSelect::BySeq => match (num::<i64>(q, "start_seq"), num::<i64>(q, "end_seq")) {
            (Ok(start), Ok(end)) => (start.unwrap_or(0), end.unwrap_or(i64::MAX)),
            _ => return invalid("start_seq"),
        },
    };
    let count = match num::<usize>(q, "count") {
        Ok(None) => 10,
        Ok(Some(c)) if (1..=1000).contains(&c) => c,
        _ => return invalid("count"),
    };
    let ascending = q.get("sorting").is_some_and(|s| s == "asc");
    let (pd, qd) = (m.scale.price_decimals, m.scale.qty_decimals);
    let value = |v: i64, d: u32| v as f64 / 10f64.powi(d as i32);
    let inst = m.symbol.to_string();
    let in_range: Vec<TapeFill<'_>> = fills(m)
        .filter(|f| {
            let key = match select {
                DeribitSelect::ByTime => f.ts_ms,
                DeribitSelect::BySeq => i64::try_from(f.id).unwrap_or(i64::MAX),
            };
            key >= range.0 && key <= range.1
        })
        .collect();
    let total = in_range.len();
    let picked: Vec<&TapeFill<'_>> = if ascending {
        in_range.iter().take(count).collect()
    } else {
        in_range.iter().rev().take(count).collect()
    };
    let trades: Vec<Value> = picked
        .iter()
        .map(|f| {
            json!({"trade_seq": f.id, "trade_id": f.id.to_string(), "timestamp": f.ts_ms, "tick_direction": 0,
                   "price": value(f.batch.price, pd), "mark_price": value(f.batch.price, pd),
                   "index_price": value(f.batch.price, pd), "instrument_name": inst,
                   "direction": if f.batch.taker_buy { "buy" } else { "sell" }, "amount": value(f.qty, qd)})
        })
        .collect();
    Response::json(
        200,
        json!({"jsonrpc": "2.0", "result": {"trades": trades, "has_more": total > count}, "testnet": false})
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::MarketKind;

    fn market_with_tape(batches: usize) -> Market {
        let mut m = Market::new(7, "binance_spot", "BTCUSDT", MarketKind::Instrument, 20);
        for i in 0..batches {
            let b = m.step_trades();
            m.record_trades(1_000 + i as i64 * 10, &b);
        }
        m
    }

    fn body(r: &Response) -> Value {
        serde_json::from_str(&r.body).unwrap()
    }

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn historical_trades_page_from_an_id_in_order_without_holes() {
        let m = market_with_tape(50);
        let first = m.tape[0].1.fills[0].id;
        let from = (first + 3).to_string();
        let page = body(&binance_historical_trades(
            &m,
            &query(&[("fromId", &from), ("limit", "10")]),
        ));
        let ids: Vec<u64> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, (first + 3..first + 13).collect::<Vec<_>>());
    }

    #[test]
    fn agg_trades_refuse_a_window_of_an_hour_and_page_by_time() {
        let m = market_with_tape(50);
        let r = binance_agg_trades(
            false,
            &m,
            &query(&[("startTime", "0"), ("endTime", "3600000")]),
        );
        assert_eq!(r.status, 400);
        assert_eq!(body(&r)["code"], -1127);
        let page = body(&binance_agg_trades(
            false,
            &m,
            &query(&[("startTime", "1100"), ("endTime", "1150")]),
        ));
        let times: Vec<i64> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["T"].as_i64().unwrap())
            .collect();
        assert_eq!(times, vec![1100, 1110, 1120, 1130, 1140, 1150]);
    }

    #[test]
    fn okx_history_is_newest_first_and_pages_backwards_by_trade_id() {
        let m = market_with_tape(30);
        let last = m.tape.back().unwrap().1.fills.last().unwrap().id;
        let page = body(&okx_history_trades(
            &m,
            &query(&[("after", &last.to_string()), ("limit", "5")]),
        ));
        let ids: Vec<u64> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["tradeId"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, (last - 5..last).rev().collect::<Vec<_>>());
    }

    #[test]
    fn deribit_counts_and_says_when_there_is_more() {
        let m = market_with_tape(30);
        let page = body(&deribit_trades(
            &m,
            &query(&[
                ("start_timestamp", "1000"),
                ("end_timestamp", "1050"),
                ("count", "3"),
                ("sorting", "asc"),
            ]),
            DeribitSelect::ByTime,
        ));
        let trades = page["result"]["trades"].as_array().unwrap();
        assert_eq!(trades.len(), 3);
        assert_eq!(page["result"]["has_more"], true);
        assert_eq!(trades[0]["timestamp"], 1000);
        let r = deribit_trades(
            &m,
            &query(&[("start_timestamp", "x"), ("end_timestamp", "1")]),
            DeribitSelect::ByTime,
        );
        assert_eq!(r.status, 400);
        // By sequence: from the third trade's `trade_seq` on, consecutive.
        let seq = trades[2]["trade_seq"].as_u64().unwrap();
        let page = body(&deribit_trades(
            &m,
            &query(&[
                ("start_seq", &seq.to_string()),
                ("count", "5"),
                ("sorting", "asc"),
            ]),
            DeribitSelect::BySeq,
        ));
        let by_seq: Vec<u64> = page["result"]["trades"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["trade_seq"].as_u64().unwrap())
            .collect();
        assert_eq!(by_seq, (seq..seq + 5).collect::<Vec<_>>());
        assert_eq!(page["result"]["has_more"], true);
    }
}
