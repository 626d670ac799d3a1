//! Deribit JSON-RPC over WebSocket: subscribe/unsubscribe, book and trades notifications, DVOL,
//! heartbeats with test_request enforcement, `public/get_volatility_index_data`.

use super::book::LevelChange;
use super::conn::{ConnCtx, DataFrame, FrameClass, KeepAlive, Out, Protocol};
use super::market::{BookSnapshot, MarketEvent, Stamped, instrument_params};
use super::rng::mix;
use marketprism_config::SimulatorConfig;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Channel {
    Dvol(String),
    Trades(String),
    Book(String),
}

/// `book.BTC-PERPETUAL.100ms` → Book; `deribit_volatility_index.btc_usd` → Dvol; anything else → None (pure).
pub(crate) fn parse_channel(name: &str) -> Option<Channel> {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["deribit_volatility_index", idx] if super::DVOL_INDEXES.contains(idx) => {
            Some(Channel::Dvol((*idx).into()))
        }
        ["trades", inst, "100ms"] if !inst.is_empty() => Some(Channel::Trades((*inst).into())),
        ["book", inst, "100ms"] if !inst.is_empty() => Some(Channel::Book((*inst).into())),
        _ => None,
    }
}

fn market_key(c: &Channel) -> String {
    match c {
        Channel::Dvol(i) => format!("dvol:{i}"),
        Channel::Trades(s) | Channel::Book(s) => s.clone(),
    }
}

/// DVOL candles `[ts, open, high, low, close]` for a currency, a pure function of (seed, currency, ts).
pub(crate) fn dvol_candles(
    seed: u64,
    currency: &str,
    start: i64,
    end: i64,
    resolution_s: i64,
) -> Vec<[f64; 5]> {
    let step = resolution_s.max(1) * 1_000;
    let first = start.div_euclid(step) * step + if start.rem_euclid(step) == 0 { 0 } else { step };
    let mut out = Vec::new();
    let mut ts = first;
    while ts <= end && out.len() < 1_000 {
        let h = mix(
            seed,
            &["dvol", &currency.to_ascii_uppercase(), &ts.to_string()],
        );
        let open = 40.0 + (h % 6_000) as f64 / 100.0;
        let close = open + ((h >> 16) % 200) as f64 / 100.0 - 1.0;
        let high = open.max(close) + ((h >> 32) % 50) as f64 / 100.0;
        let low = open.min(close) - ((h >> 40) % 50) as f64 / 100.0;
        out.push([ts as f64, open, high, low, close]);
        ts += step;
    }
    out
}

fn num(v: i64, decimals: u32) -> f64 {
    v as f64 / 10f64.powi(decimals as i32)
}

pub(crate) struct DeribitConn {
    valid_path: bool,
    seed: u64,
    second: Duration,
    subs: BTreeSet<Channel>,
    book_from: HashMap<String, u64>,
    /// Heartbeat interval and the time of the next test_request.
    heartbeat: Option<(Duration, Instant)>,
    awaiting_test: bool,
}

impl DeribitConn {
    pub(crate) fn new(rel: &str, config: &SimulatorConfig) -> DeribitConn {
        DeribitConn {
            valid_path: rel.split('?').next() == Some("/ws/api/v2"),
            seed: config.seed,
            second: Duration::from_millis(config.deribit_heartbeat_second_ms),
            subs: BTreeSet::new(),
            book_from: HashMap::new(),
            heartbeat: None,
            awaiting_test: false,
        }
    }

    fn reply(id: &Value, result: Value) -> Out {
        let us = super::now_ms() * 1_000;
        Out::Text(json!({"jsonrpc": "2.0", "id": id, "result": result, "usIn": us, "usOut": us + 5, "usDiff": 5, "testnet": false}).to_string())
    }

    fn error(id: &Value, code: i64, message: &str) -> Out {
        Out::Text(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}, "testnet": false}).to_string())
    }

    fn channels(params: &Value) -> Vec<String> {
        params
            .get("channels")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn subscribe(&mut self, names: Vec<String>, cx: &mut ConnCtx) -> (Vec<String>, Vec<Out>) {
        let mut accepted = Vec::new();
        let mut snapshots = Vec::new();
        for name in names {
            let Some(ch) = parse_channel(&name) else {
                continue;
            };
            // Deribit leaves a channel it cannot serve out of `result` (`"result": []` for an
            // instrument it does not list, go-deribit#16) and sends nothing on it.
            if let Channel::Trades(inst) | Channel::Book(inst) = &ch
                && cx.shared.is_delisted(cx.exchange, inst)
            {
                continue;
            }
            accepted.push(name.clone());
            if self.subs.contains(&ch) {
                continue;
            }
            let key = market_key(&ch);
            let snap = cx.attach(&key, 10_000);
            if let Channel::Book(inst) = &ch {
                self.book_from.insert(inst.clone(), snap.last_id);
                snapshots.push(Out::Text(book_snapshot(&name, inst, &snap)));
            }
            self.subs.insert(ch);
        }
        (accepted, snapshots)
    }

    fn rpc(&mut self, v: &Value, cx: &mut ConnCtx) -> Vec<Out> {
        let id = v.get("id").cloned().unwrap_or(Value::Null);
        let method = v.get("method").and_then(Value::as_str).unwrap_or("");
        let params = v.get("params").cloned().unwrap_or(json!({}));
        match method {
            "public/subscribe" => {
                let (accepted, snapshots) = self.subscribe(Self::channels(&params), cx);
                let mut out = vec![Self::reply(&id, json!(accepted))];
                out.extend(snapshots);
                out
            }
            "public/unsubscribe" => {
                let mut removed = Vec::new();
                for name in Self::channels(&params) {
                    if let Some(ch) = parse_channel(&name)
                        && self.subs.remove(&ch)
                    {
                        cx.detach(&market_key(&ch));
                        removed.push(name);
                    }
                }
                vec![Self::reply(&id, json!(removed))]
            }
            "public/set_heartbeat" => match params.get("interval").and_then(Value::as_u64) {
                Some(i) if i >= 10 => {
                    let every = self.second * i as u32;
                    self.heartbeat = Some((every, Instant::now() + every));
                    self.awaiting_test = false;
                    vec![Self::reply(&id, json!("ok"))]
                }
                _ => vec![Self::error(
                    &id,
                    -32602,
                    "Invalid params: interval must be at least 10",
                )],
            },
            "public/disable_heartbeat" => {
                self.heartbeat = None;
                self.awaiting_test = false;
                vec![Self::reply(&id, json!("ok"))]
            }
            "public/test" => {
                self.awaiting_test = false;
                vec![Self::reply(&id, json!({"version": "1.2.26"}))]
            }
            "public/get_time" => vec![Self::reply(
                &id,
                json!(super::server_time_ms(&cx.shared.config)),
            )],
            "public/get_volatility_index_data" => {
                let currency = params.get("currency").and_then(Value::as_str).unwrap_or("");
                let (Some(start), Some(end)) = (
                    params.get("start_timestamp").and_then(Value::as_i64),
                    params.get("end_timestamp").and_then(Value::as_i64),
                ) else {
                    return vec![Self::error(
                        &id,
                        -32602,
                        "Invalid params: start_timestamp and end_timestamp are required",
                    )];
                };
                match resolution_s(params.get("resolution")) {
                    Some(r) if !currency.is_empty() => {
                        let data = dvol_candles(self.seed, currency, start, end, r);
                        vec![Self::reply(
                            &id,
                            json!({"data": data, "continuation": null}),
                        )]
                    }
                    _ => vec![Self::error(
                        &id,
                        -32602,
                        "Invalid params: currency or resolution",
                    )],
                }
            }
            _ => vec![Self::error(&id, -32601, "Method not found")],
        }
    }
}

/// Deribit resolutions: seconds as a number or string, or "1D".
pub(crate) fn resolution_s(v: Option<&Value>) -> Option<i64> {
    let s = match v? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    match s.as_str() {
        "1D" => Some(86_400),
        "1" | "60" | "3600" | "43200" => s.parse().ok(),
        _ => None,
    }
}

fn book_snapshot(channel: &str, inst: &str, snap: &BookSnapshot) -> String {
    let scale = instrument_params(inst).0;
    let side = |v: &[(i64, i64)]| {
        v.iter()
            .map(|(p, q)| {
                json!([
                    "new",
                    num(*p, scale.price_decimals),
                    num(*q, scale.qty_decimals)
                ])
            })
            .collect::<Vec<_>>()
    };
    json!({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": {
        "type": "snapshot", "timestamp": snap.ts_ms, "instrument_name": inst, "change_id": snap.last_id,
        "bids": side(&snap.bids), "asks": side(&snap.asks)}}})
    .to_string()
}

fn notification(channel: String, data: Value) -> String {
    json!({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}).to_string()
}

impl Protocol for DeribitConn {
    fn keepalive(&self) -> KeepAlive {
        KeepAlive::Protocol
    }

    fn open(&mut self, _cx: &mut ConnCtx) -> Vec<Out> {
        if self.valid_path {
            Vec::new()
        } else {
            vec![Out::Close(1008, "use /ws/api/v2".into())]
        }
    }

    fn on_text(&mut self, text: &str, cx: &mut ConnCtx) -> Vec<Out> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() => self.rpc(&v, cx),
            _ => vec![Self::error(&Value::Null, -32700, "Parse error")],
        }
    }

    fn on_tick(&mut self, now: Instant, _cx: &mut ConnCtx) -> Vec<Out> {
        let Some((every, next)) = self.heartbeat else {
            return Vec::new();
        };
        if now < next {
            return Vec::new();
        }
        if self.awaiting_test {
            // The previous test_request went unanswered: Deribit closes at once.
            return vec![Out::Close(
                1000,
                "heartbeat test_request not answered".into(),
            )];
        }
        self.awaiting_test = true;
        self.heartbeat = Some((every, now + every));
        vec![Out::Text(
            json!({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})
                .to_string(),
        )]
    }

    fn encode(&mut self, ev: &Stamped, _cx: &mut ConnCtx) -> Vec<DataFrame> {
        let s = &*ev.symbol;
        let scale = instrument_params(s.trim_start_matches("dvol:")).0;
        let (pd, qd) = (scale.price_decimals, scale.qty_decimals);
        let mut out = Vec::new();
        let mk = |channel: &'static str, class, text| DataFrame {
            channel,
            symbol: ev.symbol.clone(),
            class,
            text,
            binary: None,
        };
        match &ev.event {
            MarketEvent::Book(d) if self.subs.contains(&Channel::Book(s.to_owned())) => {
                if let Some(from) = self.book_from.get(s).copied() {
                    if d.prev_id < from {
                        return out;
                    }
                    self.book_from.remove(s);
                }
                let side = |v: &Vec<LevelChange>| {
                    v.iter()
                        .filter(|c| c.qty > 0 || c.existed)
                        .map(|c| {
                            let action = match (c.qty, c.existed) {
                                (0, _) => "delete",
                                (_, true) => "change",
                                (_, false) => "new",
                            };
                            json!([action, num(c.price, pd), num(c.qty, qd)])
                        })
                        .collect::<Vec<_>>()
                };
                let data = json!({"type": "change", "timestamp": ev.ts_ms, "prev_change_id": d.prev_id, "instrument_name": s,
                                  "change_id": d.last_id, "bids": side(&d.bids), "asks": side(&d.asks)});
                out.push(mk(
                    "book",
                    FrameClass::Book,
                    notification(format!("book.{s}.100ms"), data),
                ));
            }
            MarketEvent::Trades(b) if self.subs.contains(&Channel::Trades(s.to_owned())) => {
                let trades: Vec<Value> = b
                    .fills
                    .iter()
                    .map(|f| {
                        json!({"trade_seq": f.id, "trade_id": f.id.to_string(), "timestamp": ev.ts_ms, "tick_direction": 0,
                               "price": num(b.price, pd), "mark_price": num(b.price, pd), "index_price": num(b.price, pd),
                               "instrument_name": s, "direction": if b.taker_buy { "buy" } else { "sell" }, "amount": num(f.qty, qd)})
                    })
                    .collect();
                out.push(mk(
                    "trades",
                    FrameClass::Trade,
                    notification(format!("trades.{s}.100ms"), json!(trades)),
                ));
            }
            MarketEvent::Dvol { volatility_bp } => {
                let idx = s.trim_start_matches("dvol:");
                if self.subs.contains(&Channel::Dvol(idx.to_owned())) {
                    let data = json!({"volatility": *volatility_bp as f64 / 100.0, "timestamp": ev.ts_ms, "index_name": idx});
                    out.push(mk(
                        "dvol",
                        FrameClass::Other,
                        notification(format!("deribit_volatility_index.{idx}"), data),
                    ));
                }
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_candles() {
        assert_eq!(
            parse_channel("book.BTC-PERPETUAL.100ms"),
            Some(Channel::Book("BTC-PERPETUAL".into()))
        );
        assert_eq!(
            parse_channel("deribit_volatility_index.btc_usd"),
            Some(Channel::Dvol("btc_usd".into()))
        );
        assert_eq!(parse_channel("deribit_volatility_index.sol_usd"), None);
        assert_eq!(
            parse_channel("book.BTC-PERPETUAL.raw"),
            None,
            "raw book needs auth"
        );
        let a = dvol_candles(1, "BTC", 0, 600_000, 60);
        assert_eq!(a.len(), 11);
        assert_eq!(a, dvol_candles(1, "btc", 0, 600_000, 60));
        assert_ne!(a, dvol_candles(2, "BTC", 0, 600_000, 60));
        assert!(
            a.iter()
                .all(|c| c[2] >= c[1].max(c[4]) && c[3] <= c[1].min(c[4]))
        );
        assert_eq!(resolution_s(Some(&json!("1D"))), Some(86_400));
        assert_eq!(resolution_s(Some(&json!(60))), Some(60));
        assert_eq!(resolution_s(Some(&json!(7))), None);
    }
}
