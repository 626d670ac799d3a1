//! Gate API v4 public WebSocket (spot `/ws/v4/`, USDT futures `/v4/ws/usdt`), written from the
//! Gate v4 docs: `{"time","id","channel","event":"subscribe","payload":[..]}` answered with
//! `{"time","time_ms","id","channel","event","payload","result":{"status":"success"}}` or with
//! `"error":{"code":2,"message":..}` (invalid argument: unknown pair/contract, bad interval);
//! application ping `spot.ping`/`futures.ping` → `spot.pong`/`futures.pong`.
//!
//! Only the pairs and contracts of the simulated lists are served (others: error code 2).
//!
//! Data: `spot.trades` (one frame per trade, `create_time_ms` a string of ms with a fraction),
//! `spot.order_book_update` (`U`/`u`, levels `[p, s]`), `futures.trades` (array, signed integer
//! `size` in contracts), `futures.order_book_update` (levels `{p, s}`, integer contracts),
//! `futures.tickers` (`funding_rate`, `mark_price`, `index_price`, `total_size` contracts),
//! `futures.public_liquidates` (`price`, signed `size`, `time` ms; payload a contract or `!all`).
//! Contracts here are worth 0.001 base (`quanto_multiplier` of the simulated list), so a size in
//! contracts is the market's quantity in lots. Gate documents no idle cut: the simulator closes
//! after `gate_idle_timeout_ms` without a client frame or pushed data (an assumption).

use super::book::{LevelChange, fmt_trimmed};
use super::conn::{ConnCtx, DataFrame, FrameClass, KeepAlive, Out, Protocol};
use super::market::{MarketEvent, Stamped, instrument_params};
use super::server::Response;
use super::{Shared, lock, now_ms};
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The WebSocket path of a product line.
pub(crate) fn ws_path(exchange: Exchange) -> &'static str {
    if exchange == Exchange::GateSpot {
        "/ws/v4/"
    } else {
        "/v4/ws/usdt"
    }
}

pub(crate) struct GateConn {
    spot: bool,
    valid_path: bool,
    idle_timeout: Duration,
    /// (channel, pair/contract or `!all`)
    subs: BTreeSet<(String, String)>,
    /// Last open interest (contracts) and mark per contract, for whole tickers.
    oi: HashMap<String, i64>,
    mark: HashMap<String, super::market::MarkUpdate>,
}

impl GateConn {
    pub(crate) fn new(exchange: Exchange, rel: &str, config: &SimulatorConfig) -> GateConn {
        let path = rel.split('?').next().unwrap_or("");
        let want = ws_path(exchange);
        GateConn {
            spot: exchange == Exchange::GateSpot,
            valid_path: path == want || path == want.trim_end_matches('/'),
            idle_timeout: Duration::from_millis(config.gate_idle_timeout_ms),
            subs: BTreeSet::new(),
            oi: HashMap::new(),
            mark: HashMap::new(),
        }
    }

    fn prefix(&self) -> &'static str {
        if self.spot { "spot" } else { "futures" }
    }

    fn channels(&self) -> &'static [&'static str] {
        if self.spot {
            &["spot.trades", "spot.order_book_update"]
        } else {
            &[
                "futures.trades",
                "futures.order_book_update",
                "futures.tickers",
                "futures.public_liquidates",
            ]
        }
    }

    fn has(&self, channel: &str, name: &str) -> bool {
        self.subs.contains(&(channel.to_owned(), name.to_owned()))
    }
}

fn envelope(channel: &str, event: &str, ts_ms: i64) -> Value {
    json!({"time": ts_ms / 1_000, "time_ms": ts_ms, "channel": channel, "event": event})
}

fn reply(req: &Value, channel: &str, event: &str, outcome: Result<(), (i64, String)>) -> Out {
    let mut o = envelope(channel, event, super::now_ms());
    if let Some(id) = req.get("id").filter(|i| !i.is_null()) {
        o["id"] = id.clone();
    }
    if let Some(p) = req.get("payload") {
        o["payload"] = p.clone();
    }
    match outcome {
        Ok(()) => o["result"] = json!({"status": "success"}),
        Err((code, message)) => {
            o["error"] = json!({"code": code, "message": message});
            o["result"] = Value::Null;
        }
    }
    Out::Text(o.to_string())
}

impl Protocol for GateConn {
    fn keepalive(&self) -> KeepAlive {
        KeepAlive::ClientIdle {
            timeout: self.idle_timeout,
        }
    }

    fn open(&mut self, _cx: &mut ConnCtx) -> Vec<Out> {
        if self.valid_path {
            Vec::new()
        } else {
            vec![Out::Close(1008, "unknown path".into())]
        }
    }

    fn on_text(&mut self, text: &str, cx: &mut ConnCtx) -> Vec<Out> {
        let Ok(req) = serde_json::from_str::<Value>(text) else {
            return vec![reply(
                &Value::Null,
                "",
                "",
                Err((1, "invalid request body format".into())),
            )];
        };
        let channel = req.get("channel").and_then(Value::as_str).unwrap_or("");
        let event = req.get("event").and_then(Value::as_str).unwrap_or("");
        if channel == format!("{}.ping", self.prefix()) {
            let mut o = envelope(&format!("{}.pong", self.prefix()), "", super::now_ms());
            o["result"] = Value::Null;
            return vec![Out::Text(o.to_string())];
        }
        if !matches!(event, "subscribe" | "unsubscribe") {
            return vec![reply(
                &req,
                channel,
                event,
                Err((1, format!("unknown event {event}"))),
            )];
        }
        if !self.channels().contains(&channel) {
            return vec![reply(
                &req,
                channel,
                event,
                Err((2, format!("unknown channel {channel}"))),
            )];
        }
        let payload: Vec<&str> = req
            .get("payload")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let Some(&name) = payload.first() else {
            return vec![reply(
                &req,
                channel,
                event,
                Err((2, "payload is empty".into())),
            )];
        };
        if event == "subscribe" && cx.shared.is_unanswered(cx.exchange, name) {
            return Vec::new();
        }
        let all = channel == "futures.public_liquidates" && name == "!all";
        if !all
            && (!super::instruments::gate_lists(cx.exchange, name)
                || cx.shared.is_delisted(cx.exchange, name))
        {
            let what = if self.spot {
                "currency pair"
            } else {
                "contract"
            };
            return vec![reply(
                &req,
                channel,
                event,
                Err((2, format!("unknown {what} {name}"))),
            )];
        }
        if channel.ends_with(".order_book_update") {
            let interval_ok = payload
                .get(1)
                .is_some_and(|i| ["100ms", "20ms"].contains(i));
            let level_ok = self.spot
                || payload
                    .get(2)
                    .is_some_and(|l| ["100", "50", "20"].contains(l));
            if !interval_ok || !level_ok {
                return vec![reply(
                    &req,
                    channel,
                    event,
                    Err((2, format!("invalid argument: {payload:?}"))),
                )];
            }
        }
        let sub = (channel.to_owned(), name.to_owned());
        let out = vec![reply(&req, channel, event, Ok(()))];
        if event == "unsubscribe" {
            if self.subs.remove(&sub) {
                if all {
                    for m in cx.shared.markets_of(cx.exchange) {
                        let sym = super::lock(&m).symbol.to_string();
                        cx.detach(&sym);
                    }
                } else {
                    cx.detach(name);
                }
            }
            return out;
        }
        if !self.subs.insert(sub) {
            return out;
        }
        if all {
            for m in cx.shared.markets_of(cx.exchange) {
                let sym = super::lock(&m).symbol.to_string();
                cx.attach_market(&sym, &m, 0);
            }
        } else {
            cx.attach(name, 0);
        }
        out
    }

    fn encode(&mut self, ev: &Stamped, _cx: &mut ConnCtx) -> Vec<DataFrame> {
        let s = &*ev.symbol;
        let scale = instrument_params(s).0;
        let px = |p: i64| fmt_trimmed(p, scale.price_decimals);
        let ts = ev.ts_ms;
        let mut out = Vec::new();
        match &ev.event {
            MarketEvent::Book(d) if self.spot && self.has("spot.order_book_update", s) => {
                let side = |v: &Vec<LevelChange>| {
                    v.iter()
                        .map(|c| [px(c.price), fmt_trimmed(c.qty, scale.qty_decimals)])
                        .collect::<Vec<_>>()
                };
                let mut msg = envelope("spot.order_book_update", "update", ts);
                msg["result"] = json!({"t": ts, "e": "depthUpdate", "E": ts / 1_000, "s": s,
                    "U": d.first_id, "u": d.last_id, "b": side(&d.bids), "a": side(&d.asks)});
                out.push(DataFrame::json("book", ev, FrameClass::Book, msg));
            }
            MarketEvent::Book(d) if !self.spot && self.has("futures.order_book_update", s) => {
                let side = |v: &Vec<LevelChange>| {
                    v.iter()
                        .map(|c| json!({"p": px(c.price), "s": c.qty}))
                        .collect::<Vec<_>>()
                };
                let mut msg = envelope("futures.order_book_update", "update", ts);
                msg["result"] = json!({"t": ts, "s": s, "U": d.first_id, "u": d.last_id,
                    "b": side(&d.bids), "a": side(&d.asks), "l": "100"});
                out.push(DataFrame::json("book", ev, FrameClass::Book, msg));
            }
            MarketEvent::Trades(b) if self.spot && self.has("spot.trades", s) => {
                for f in &b.fills {
                    let mut msg = envelope("spot.trades", "update", ts);
                    msg["result"] = json!({"id": f.id, "create_time": ts / 1_000,
                        "create_time_ms": format!("{ts}.{:04}", f.id % 10_000),
                        "side": if b.taker_buy { "buy" } else { "sell" }, "currency_pair": s,
                        "amount": fmt_trimmed(f.qty, scale.qty_decimals), "price": px(b.price),
                        "range": format!("{}-{}", f.id, f.id)});
                    out.push(DataFrame::json("trades", ev, FrameClass::Trade, msg));
                }
            }
            MarketEvent::Trades(b) if !self.spot && self.has("futures.trades", s) => {
                let rows: Vec<Value> = b
                    .fills
                    .iter()
                    .map(|f| {
                        json!({"size": if b.taker_buy { f.qty } else { -f.qty }, "id": f.id,
                            "create_time": ts / 1_000, "create_time_ms": ts, "price": px(b.price),
                            "contract": s})
                    })
                    .collect();
                let mut msg = envelope("futures.trades", "update", ts);
                msg["result"] = Value::Array(rows);
                out.push(DataFrame::json("trades", ev, FrameClass::Trade, msg));
            }
            MarketEvent::Mark(m) if self.has("futures.tickers", s) => {
                self.mark.insert(s.to_owned(), m.clone());
                out.push(self.ticker(ev, ts));
            }
            // Gate pushes one ticker per contract at its own cadence, every field in it: a change of
            // open interest shows in the next push, never as a second push of the same instant.
            MarketEvent::OpenInterest { oi_lots } if self.has("futures.tickers", s) => {
                self.oi.insert(s.to_owned(), *oi_lots);
            }
            MarketEvent::Liquidation(l)
                if self.has("futures.public_liquidates", s)
                    || self.has("futures.public_liquidates", "!all") =>
            {
                let mut msg = envelope("futures.public_liquidates", "update", ts);
                msg["result"] = json!([{"price": px(l.price), "size": if l.sell { -l.qty } else { l.qty },
                    "time": ts, "contract": s}]);
                out.push(DataFrame::json("liquidations", ev, FrameClass::Other, msg));
            }
            _ => {}
        }
        out
    }
}

impl GateConn {
    /// A whole `futures.tickers` row from the last mark and open interest known for the contract.
    fn ticker(&self, ev: &Stamped, ts: i64) -> DataFrame {
        let s = &*ev.symbol;
        let scale = instrument_params(s).0;
        let mut row = json!({"contract": s, "last": "0", "change_percentage": "0", "volume_24h": "0",
            "quanto_base_rate": ""});
        if let Some(m) = self.mark.get(s) {
            row["funding_rate"] = json!(super::book::fmt_fixed(m.funding_rate_e8, 8));
            row["funding_rate_indicative"] = json!(super::book::fmt_fixed(m.funding_rate_e8, 8));
            row["mark_price"] = json!(fmt_trimmed(m.mark, scale.price_decimals));
            row["index_price"] = json!(fmt_trimmed(m.index, scale.price_decimals));
        }
        if let Some(oi) = self.oi.get(s) {
            row["total_size"] = json!(oi.to_string());
        }
        let mut msg = envelope("futures.tickers", "update", ts);
        msg["result"] = json!([row]);
        DataFrame::json("funding", ev, FrameClass::Other, msg)
    }
}

fn gate_err(label: &str, message: String) -> Response {
    Response::json(400, json!({"label": label, "message": message}).to_string())
}

/// Gate v4 REST: `/api/v4/spot/time` (`server_time`, ms), `/api/v4/spot/order_book` (levels
/// `[p, s]`, `current`/`update` ms) and `/api/v4/futures/usdt/order_book` (levels `{p, s}` with
/// integer contracts, `current`/`update` seconds with a fraction); `with_id=true` adds `id`, the
/// last update id the snapshot reflects. Unknown names: HTTP 400 `INVALID_CURRENCY_PAIR` /
/// `CONTRACT_NOT_FOUND`; `limit` outside 1..=100: `INVALID_PARAM_VALUE`.
pub(crate) fn rest(
    exchange: Exchange,
    path: &str,
    q: &HashMap<String, String>,
    shared: &Arc<Shared>,
) -> Response {
    let spot = exchange == Exchange::GateSpot;
    match (spot, path) {
        (_, "/api/v4/spot/time") => Response::json(
            200,
            json!({"server_time": super::server_time_ms(&shared.config)}).to_string(),
        ),
        (true, "/api/v4/spot/order_book") | (false, "/api/v4/futures/usdt/order_book") => {
            let key = if spot { "currency_pair" } else { "contract" };
            let name = q.get(key).cloned().unwrap_or_default();
            if !super::instruments::gate_lists(exchange, &name)
                || shared.is_delisted(exchange, &name)
            {
                return if spot {
                    gate_err(
                        "INVALID_CURRENCY_PAIR",
                        format!("Invalid currency pair {name}"),
                    )
                } else {
                    gate_err("CONTRACT_NOT_FOUND", format!("Contract {name} not found"))
                };
            }
            let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(10);
            if !(1..=100).contains(&limit) {
                return gate_err("INVALID_PARAM_VALUE", format!("invalid limit {limit}"));
            }
            let m = shared.market(exchange, &name);
            let (snap, scale) = {
                let mut m = lock(&m);
                (m.rest_snapshot(limit, now_ms()), m.scale)
            };
            let px = |p: i64| fmt_trimmed(p, scale.price_decimals);
            let side = |v: &[(i64, i64)]| -> Vec<Value> {
                v.iter()
                    .map(|(p, s)| {
                        if spot {
                            json!([px(*p), fmt_trimmed(*s, scale.qty_decimals)])
                        } else {
                            json!({"p": px(*p), "s": s})
                        }
                    })
                    .collect()
            };
            let now = now_ms();
            let (current, update) = if spot {
                (json!(now), json!(snap.ts_ms))
            } else {
                (
                    json!(now as f64 / 1_000.0),
                    json!(snap.ts_ms as f64 / 1_000.0),
                )
            };
            let mut body = json!({"current": current, "update": update,
                "asks": side(&snap.asks), "bids": side(&snap.bids)});
            if q.get("with_id").is_some_and(|w| w == "true") {
                body["id"] = json!(snap.last_id);
            }
            Response::json(200, body.to_string())
        }
        _ => Response::json(
            404,
            json!({"label": "NOT_FOUND", "message": format!("unknown path {path}")}).to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        use super::super::instruments::gate_lists;
        assert!(gate_lists(Exchange::GateSpot, "BTC_USDT"));
        assert!(!gate_lists(Exchange::GateSpot, "OLD_USDT"), "untradable");
        assert!(!gate_lists(Exchange::GateSpot, "BTC-USDT"));
        assert!(gate_lists(Exchange::GateDerivatives, "SOL_USDT"));
        assert_eq!(ws_path(Exchange::GateSpot), "/ws/v4/");
        assert_eq!(ws_path(Exchange::GateDerivatives), "/v4/ws/usdt");
    }
}
