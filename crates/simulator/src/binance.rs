//! Binance spot and USD-M market streams: URL and live subscriptions, routed paths, wire encoding.

use super::book::fmt_fixed;
use super::conn::{ConnCtx, DataFrame, FrameClass, KeepAlive, Out, Protocol};
use super::market::{MarketEvent, Stamped};
use crate::internal_events::InternalEvent;
use crate::internal_events::simulator::SimulatorBadClientFrame;
use marketprism_config::SimulatorConfig;
use marketprism_model::Exchange;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// USD-M routed path of a connection (2026 split); spot has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Public,
    Market,
    /// No routed path: serves only `/public` streams; `/market` streams are acked but silent.
    Legacy,
    Spot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Depth,
    Trade,
    AggTrade,
    BookTicker,
    MarkPrice,
    ForceOrder,
}

/// A parsed stream name: `btcusdt@depth@100ms` → (Some("BTCUSDT"), Depth); `!forceOrder@arr` → (None, ForceOrder).
pub(crate) fn parse_stream(name: &str) -> Option<(Option<String>, Kind)> {
    if name == "!forceOrder@arr" {
        return Some((None, Kind::ForceOrder));
    }
    let (symbol, rest) = name.split_once('@')?;
    if symbol.is_empty()
        || symbol
            .chars()
            .any(|c| !c.is_ascii_lowercase() && !c.is_ascii_digit())
    {
        return None;
    }
    let kind = match rest {
        "depth" | "depth@0ms" | "depth@100ms" | "depth@250ms" | "depth@500ms" | "depth@1000ms" => {
            Kind::Depth
        }
        "trade" => Kind::Trade,
        "aggTrade" => Kind::AggTrade,
        "bookTicker" => Kind::BookTicker,
        "markPrice" | "markPrice@1s" => Kind::MarkPrice,
        "forceOrder" => Kind::ForceOrder,
        _ => return None,
    };
    Some((Some(symbol.to_ascii_uppercase()), kind))
}

/// Push cadence of a depth stream in ms (0 = every change), or None if the venue has no such stream (pure).
/// Plain `@depth` is 1000 ms on spot and 250 ms on USD-M.
pub(crate) fn depth_cadence_ms(spot: bool, name: &str) -> Option<u64> {
    let suffix = name.split_once("@depth")?.1;
    match (spot, suffix) {
        (true, "") | (true, "@1000ms") => Some(1_000),
        (true, "@100ms") => Some(100),
        (false, "") | (false, "@250ms") => Some(250),
        (false, "@0ms") => Some(0),
        (false, "@100ms") => Some(100),
        (false, "@500ms") => Some(500),
        _ => None,
    }
}

/// Diffs merged over one cadence window: ids `first..=last`, `prev` = the `u` before `first`, latest quantity wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct DepthWindow {
    pub first: u64,
    pub last: u64,
    pub prev: u64,
    pub bids: BTreeMap<i64, i64>,
    pub asks: BTreeMap<i64, i64>,
}

impl DepthWindow {
    pub(crate) fn merge(window: &mut Option<DepthWindow>, d: &super::market::BookDiff) {
        let w = window.get_or_insert_with(|| DepthWindow {
            first: d.first_id,
            prev: d.prev_id,
            ..DepthWindow::default()
        });
        w.last = d.last_id;
        for c in &d.bids {
            w.bids.insert(c.price, c.qty);
        }
        for c in &d.asks {
            w.asks.insert(c.price, c.qty);
        }
    }
}

struct DepthAgg {
    cadence: Duration,
    next_flush: std::time::Instant,
    symbol: std::sync::Arc<str>,
    window: Option<DepthWindow>,
}

/// Whether a stream of `kind` delivers data on a connection with `route` (pure; the URL-split rule).
pub(crate) fn delivers(route: Route, kind: Kind) -> bool {
    let public = matches!(kind, Kind::Depth | Kind::Trade | Kind::BookTicker);
    match route {
        Route::Spot => matches!(
            kind,
            Kind::Depth | Kind::Trade | Kind::AggTrade | Kind::BookTicker
        ),
        Route::Public | Route::Legacy => public,
        Route::Market => !public,
    }
}

/// Route, initial streams and combined mode from the venue-relative URL.
pub(crate) fn parse_url(exchange: Exchange, rel: &str) -> (Route, Vec<String>, bool) {
    let (mut path, query) = rel.split_once('?').unwrap_or((rel, ""));
    let mut route = if exchange == Exchange::BinanceSpot {
        Route::Spot
    } else {
        Route::Legacy
    };
    if exchange == Exchange::BinanceDerivatives {
        if let Some(p) = path.strip_prefix("/public") {
            (route, path) = (Route::Public, p);
        } else if let Some(p) = path.strip_prefix("/market") {
            (route, path) = (Route::Market, p);
        }
    }
    if path.starts_with("/stream") {
        let streams = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("streams="))
            .map(|s| {
                s.split('/')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        return (route, streams, true);
    }
    let raw = path.strip_prefix("/ws").unwrap_or("");
    let streams = raw
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    (route, streams, false)
}

pub(crate) struct BinanceConn {
    exchange: Exchange,
    route: Route,
    combined: bool,
    initial: Vec<String>,
    /// Subscribed stream names → (symbol, kind), in name order for LIST_SUBSCRIPTIONS.
    subs: BTreeMap<String, (Option<String>, Kind)>,
    /// Throttled depth streams (cadence > 0) by stream name.
    aggs: BTreeMap<String, DepthAgg>,
    ping_interval: Duration,
    pong_timeout: Duration,
    max_inbound: u32,
}

impl BinanceConn {
    pub(crate) fn new(exchange: Exchange, rel: &str, config: &SimulatorConfig) -> BinanceConn {
        let (route, initial, combined) = parse_url(exchange, rel);
        let spot = exchange == Exchange::BinanceSpot;
        let ms = Duration::from_millis;
        BinanceConn {
            exchange,
            route,
            combined,
            initial,
            subs: BTreeMap::new(),
            aggs: BTreeMap::new(),
            ping_interval: ms(if spot {
                config.binance_spot_ping_interval_ms
            } else {
                config.binance_usdm_ping_interval_ms
            }),
            pong_timeout: ms(if spot {
                config.binance_spot_pong_timeout_ms
            } else {
                config.binance_usdm_pong_timeout_ms
            }),
            max_inbound: if spot {
                config.binance_spot_max_inbound_per_s
            } else {
                config.binance_usdm_max_inbound_per_s
            },
        }
    }

    fn subscribe(&mut self, name: &str, cx: &mut ConnCtx) -> bool {
        let Some((symbol, kind)) = parse_stream(name) else {
            return false;
        };
        if self.subs.contains_key(name) {
            return true;
        }
        if kind == Kind::Depth {
            let Some(cadence) = depth_cadence_ms(self.exchange == Exchange::BinanceSpot, name)
            else {
                return false;
            };
            if cadence > 0
                && let Some(s) = &symbol
            {
                let cadence = Duration::from_millis(cadence);
                self.aggs.insert(
                    name.to_owned(),
                    DepthAgg {
                        cadence,
                        next_flush: std::time::Instant::now() + cadence,
                        symbol: s.as_str().into(),
                        window: None,
                    },
                );
            }
        }
        match &symbol {
            // Acked like any stream name, but an unlisted instrument never sends anything.
            Some(s) if cx.shared.is_delisted(self.exchange, s) => {}
            Some(s) => {
                cx.attach(s, 0);
            }
            None => {
                for m in cx.shared.markets_of(self.exchange) {
                    let key = super::lock(&m).symbol.to_string();
                    cx.attach_market(&key, &m, 0);
                }
            }
        }
        self.subs.insert(name.to_owned(), (symbol, kind));
        true
    }

    fn unsubscribe(&mut self, name: &str, cx: &mut ConnCtx) {
        self.aggs.remove(name);
        match self.subs.remove(name) {
            Some((Some(s), _)) => cx.detach(&s),
            Some((None, _)) => {
                for m in cx.shared.markets_of(self.exchange) {
                    let key = super::lock(&m).symbol.to_string();
                    cx.detach(&key);
                }
            }
            None => {}
        }
    }

    fn control(&mut self, v: &Value, cx: &mut ConnCtx) -> Value {
        let id = v.get("id").cloned().unwrap_or(Value::Null);
        let method = v.get("method").and_then(Value::as_str).unwrap_or("");
        let params: Option<Vec<String>> = v.get("params").and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        });
        let bad = |msg: String| json!({"code": 2, "msg": msg, "id": id});
        match method {
            "SUBSCRIBE" | "UNSUBSCRIBE" => {
                let Some(params) = params else {
                    return bad("Invalid request: params must be a list of stream names".into());
                };
                for p in &params {
                    if method == "SUBSCRIBE" {
                        if !self.subscribe(p, cx) {
                            return bad(format!("Invalid request: invalid stream name '{p}'"));
                        }
                    } else {
                        self.unsubscribe(p, cx);
                    }
                }
                json!({"result": null, "id": id})
            }
            "LIST_SUBSCRIPTIONS" => {
                json!({"result": self.subs.keys().collect::<Vec<_>>(), "id": id})
            }
            "SET_PROPERTY" => match v.get("params").and_then(Value::as_array).map(Vec::as_slice) {
                Some([k, Value::Bool(b)]) if k == "combined" => {
                    self.combined = *b;
                    json!({"result": null, "id": id})
                }
                _ => bad("Invalid request: unknown property".into()),
            },
            "GET_PROPERTY" => json!({"result": self.combined, "id": id}),
            other => bad(format!(
                "Invalid request: unknown variant `{other}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
            )),
        }
    }

    fn wrap(&self, name: &str, data: Value) -> String {
        if self.combined {
            json!({"stream": name, "data": data}).to_string()
        } else {
            data.to_string()
        }
    }
}

fn px(v: i64, decimals: u32) -> String {
    fmt_fixed(v * 10i64.pow(8 - decimals.min(8)), 8)
}

/// The raw payload of one stream for one event, if that stream carries it (pure).
pub(crate) fn payload(
    spot: bool,
    kind: Kind,
    ev: &Stamped,
    scale: super::book::Scale,
) -> Vec<(FrameClass, Value)> {
    let (pd, qd) = (scale.price_decimals, scale.qty_decimals);
    let s = &*ev.symbol;
    let t = ev.ts_ms;
    match (&ev.event, kind) {
        (MarketEvent::Book(d), Kind::Depth) => {
            let side = |v: &Vec<super::book::LevelChange>| -> Vec<[String; 2]> {
                v.iter().map(|c| [px(c.price, pd), px(c.qty, qd)]).collect()
            };
            let mut o = json!({"e": "depthUpdate", "E": t, "s": s, "U": d.first_id, "u": d.last_id, "b": side(&d.bids), "a": side(&d.asks)});
            if !spot {
                o["T"] = json!(t);
                o["pu"] = json!(d.prev_id);
            }
            vec![(FrameClass::Book, o)]
        }
        (MarketEvent::Book(d), Kind::BookTicker) => {
            let mut o = json!({"u": d.last_id, "s": s, "b": px(d.best_bid.0, pd), "B": px(d.best_bid.1, qd), "a": px(d.best_ask.0, pd), "A": px(d.best_ask.1, qd)});
            if !spot {
                o["e"] = json!("bookTicker");
                o["E"] = json!(t);
                o["T"] = json!(t);
            }
            vec![(FrameClass::Other, o)]
        }
        (MarketEvent::Trades(b), Kind::Trade) => b
            .fills
            .iter()
            .map(|f| {
                let mut o = json!({"e": "trade", "E": t, "s": s, "t": f.id, "p": px(b.price, pd), "q": px(f.qty, qd), "T": t, "m": !b.taker_buy});
                if spot {
                    o["M"] = json!(true);
                } else {
                    o["X"] = json!("MARKET");
                }
                (FrameClass::Trade, o)
            })
            .collect(),
        (MarketEvent::Trades(b), Kind::AggTrade) => {
            let qty: i64 = b.fills.iter().map(|f| f.qty).sum();
            let (first, last) = (b.fills[0].id, b.fills[b.fills.len() - 1].id);
            let mut o = json!({"e": "aggTrade", "E": t, "s": s, "a": b.agg_id, "p": px(b.price, pd), "q": px(qty, qd), "f": first, "l": last, "T": t, "m": !b.taker_buy});
            if spot {
                o["M"] = json!(true);
            } else {
                o["nq"] = json!(px(qty, qd));
            }
            vec![(FrameClass::Trade, o)]
        }
        (MarketEvent::Mark(m), Kind::MarkPrice) if !spot => vec![(
            FrameClass::Other,
            json!({"e": "markPriceUpdate", "E": t, "s": s, "p": px(m.mark, pd), "i": px(m.index, pd), "P": px(m.mark, pd),
                   "r": fmt_fixed(m.funding_rate_e8, 8), "T": m.next_funding_ms}),
        )],
        (MarketEvent::Liquidation(l), Kind::ForceOrder) if !spot => vec![(
            FrameClass::Other,
            json!({"e": "forceOrder", "E": t, "o": {"s": s, "S": if l.sell { "SELL" } else { "BUY" }, "o": "LIMIT", "f": "IOC",
                   "q": px(l.qty, qd), "p": px(l.price, pd), "ap": px(l.price, pd), "X": "FILLED", "l": px(l.qty, qd), "z": px(l.qty, qd), "T": t}}),
        )],
        _ => Vec::new(),
    }
}

/// A depthUpdate for a merged window (pure): bids best first, asks best first.
pub(crate) fn window_payload(spot: bool, symbol: &str, w: &DepthWindow, ts: i64) -> Value {
    let scale = super::market::instrument_params(symbol).0;
    let (pd, qd) = (scale.price_decimals, scale.qty_decimals);
    let bids: Vec<[String; 2]> = w
        .bids
        .iter()
        .rev()
        .map(|(p, q)| [px(*p, pd), px(*q, qd)])
        .collect();
    let asks: Vec<[String; 2]> = w
        .asks
        .iter()
        .map(|(p, q)| [px(*p, pd), px(*q, qd)])
        .collect();
    let mut o = json!({"e": "depthUpdate", "E": ts, "s": symbol, "U": w.first, "u": w.last, "b": bids, "a": asks});
    if !spot {
        o["T"] = json!(ts);
        o["pu"] = json!(w.prev);
    }
    o
}

fn channel_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Depth => "book",
        Kind::Trade => "trades",
        Kind::AggTrade => "agg_trades",
        Kind::BookTicker => "book_ticker",
        Kind::MarkPrice => "mark",
        Kind::ForceOrder => "liquidations",
    }
}

impl Protocol for BinanceConn {
    fn keepalive(&self) -> KeepAlive {
        KeepAlive::ServerPing {
            interval: self.ping_interval,
            deadline: self.pong_timeout,
        }
    }

    fn max_inbound_per_s(&self) -> u32 {
        self.max_inbound
    }

    fn flush(&mut self, now: std::time::Instant, _cx: &mut ConnCtx) -> Vec<DataFrame> {
        let spot = self.exchange == Exchange::BinanceSpot;
        let mut out = Vec::new();
        let names: Vec<String> = self.aggs.keys().cloned().collect();
        for name in names {
            let Some(agg) = self.aggs.get_mut(&name) else {
                continue;
            };
            if now < agg.next_flush {
                continue;
            }
            agg.next_flush = now + agg.cadence;
            let Some(w) = agg.window.take() else { continue };
            let symbol = agg.symbol.clone();
            let data = window_payload(spot, &symbol, &w, super::now_ms());
            out.push(DataFrame {
                channel: "book",
                symbol,
                class: FrameClass::Book,
                text: self.wrap(&name, data),
                binary: None,
            });
        }
        out
    }

    fn open(&mut self, cx: &mut ConnCtx) -> Vec<Out> {
        for name in std::mem::take(&mut self.initial) {
            if !self.subscribe(&name, cx) {
                return vec![Out::Close(1008, format!("Invalid stream name {name}"))];
            }
        }
        Vec::new()
    }

    fn on_text(&mut self, text: &str, cx: &mut ConnCtx) -> Vec<Out> {
        let reply = match serde_json::from_str::<Value>(text) {
            Ok(v) if v.is_object() => self.control(&v, cx),
            Ok(_) | Err(_) => {
                SimulatorBadClientFrame {
                    exchange: self.exchange,
                    connection: cx.id,
                    error: "invalid JSON".into(),
                }
                .emit();
                json!({"code": 3, "msg": "Invalid JSON: expected value at line 1 column 1"})
            }
        };
        vec![Out::Text(reply.to_string())]
    }

    fn encode(&mut self, ev: &Stamped, cx: &mut ConnCtx) -> Vec<DataFrame> {
        let spot = self.exchange == Exchange::BinanceSpot;
        let scale = super::market::instrument_params(&ev.symbol).0;
        let mut out = Vec::new();
        for (name, (symbol, kind)) in &self.subs {
            let for_this = symbol.as_deref().is_none_or(|s| s == &*ev.symbol);
            if !for_this || !delivers(self.route, *kind) {
                continue;
            }
            if let (Some(agg), MarketEvent::Book(d)) = (self.aggs.get_mut(name), &ev.event) {
                DepthWindow::merge(&mut agg.window, d);
                continue;
            }
            for (class, data) in payload(spot, *kind, ev, scale) {
                out.push(DataFrame {
                    channel: channel_of(*kind),
                    symbol: ev.symbol.clone(),
                    class,
                    text: self.wrap(name, data),
                    binary: None,
                });
            }
        }
        let _ = cx;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing_and_routing() {
        let (r, s, c) = parse_url(
            Exchange::BinanceDerivatives,
            "/public/stream?streams=btcusdt@depth@0ms/btcusdt@bookTicker",
        );
        assert_eq!((r, c), (Route::Public, true));
        assert_eq!(s, vec!["btcusdt@depth@0ms", "btcusdt@bookTicker"]);
        let (r, s, c) = parse_url(Exchange::BinanceDerivatives, "/ws/btcusdt@aggTrade");
        assert_eq!((r, c, s.len()), (Route::Legacy, false, 1));
        assert_eq!(parse_url(Exchange::BinanceSpot, "/ws").1.len(), 0);
        assert!(
            !delivers(Route::Legacy, Kind::AggTrade),
            "market stream on legacy URL is silent"
        );
        assert!(!delivers(Route::Legacy, Kind::ForceOrder));
        assert!(delivers(Route::Legacy, Kind::Depth));
        assert!(delivers(Route::Market, Kind::MarkPrice));
        assert!(!delivers(Route::Market, Kind::Depth));
        assert!(!delivers(Route::Spot, Kind::MarkPrice));
        assert_eq!(
            parse_stream("btcusdt@markPrice@1s"),
            Some((Some("BTCUSDT".into()), Kind::MarkPrice))
        );
        assert_eq!(parse_stream("BTCUSDT@trade"), None, "symbols are lowercase");
        assert_eq!(parse_stream("btcusdt@nope"), None);
        assert_eq!(depth_cadence_ms(true, "btcusdt@depth"), Some(1_000));
        assert_eq!(depth_cadence_ms(false, "btcusdt@depth"), Some(250));
        assert_eq!(depth_cadence_ms(false, "btcusdt@depth@0ms"), Some(0));
        assert_eq!(
            depth_cadence_ms(true, "btcusdt@depth@0ms"),
            None,
            "no unthrottled spot depth"
        );
        assert_eq!(depth_cadence_ms(true, "btcusdt@depth@500ms"), None);
    }

    #[test]
    fn merged_window_keeps_latest_quantity_and_id_range() {
        use crate::book::LevelChange;
        use crate::market::BookDiff;
        let diff = |prev: u64, last: u64, bids: Vec<(i64, i64)>| BookDiff {
            prev_id: prev,
            first_id: prev + 1,
            last_id: last,
            bids: bids
                .into_iter()
                .map(|(price, qty)| LevelChange {
                    price,
                    qty,
                    existed: true,
                })
                .collect(),
            asks: Vec::new(),
            okx_checksum: 0,
            best_bid: (0, 0),
            best_ask: (0, 0),
        };
        let mut w = None;
        DepthWindow::merge(&mut w, &diff(10, 12, vec![(100, 5), (99, 1)]));
        DepthWindow::merge(&mut w, &diff(12, 13, vec![(100, 0)]));
        let w = w.unwrap();
        assert_eq!((w.prev, w.first, w.last), (10, 11, 13));
        let p = window_payload(false, "BTCUSDT", &w, 1);
        assert_eq!(
            (p["U"].clone(), p["u"].clone(), p["pu"].clone()),
            (json!(11), json!(13), json!(10))
        );
        assert_eq!(p["b"][0][1], "0.00000000", "the later delete wins");
        assert_eq!(p["b"].as_array().unwrap().len(), 2);
        assert!(window_payload(true, "BTCUSDT", &w, 1).get("pu").is_none());
    }
}
