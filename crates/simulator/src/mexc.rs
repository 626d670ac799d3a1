//! MEXC WebSocket protocols, from MEXC's docs (Spot V3 "Websocket Market Streams"; Futures "WebSocket
//! API"), independent of the collector's parsers.
//!
//! Spot (`/mexc_spot/ws`): JSON control frames — `{"method":"SUBSCRIPTION","params":[ch,…]}` acked
//! `{"id":0,"code":0,"msg":"ch,…"}`, refused `{"id":0,"code":0,"msg":"Not Subscribed successfully!
//! [ch].  Reason： Blocked! "}`; `{"method":"PING"}` → `{"id":0,"code":0,"msg":"PONG"}`; at most 30
//! subscriptions; closed after 30 s without a valid subscription and after `mexc_idle_timeout_ms`
//! (1 min) with neither data nor a client frame. Data: binary protobuf pushes ([`super::mexc_pb`]):
//! depth diffs `fromVersion..=toVersion` (each push starts one after the previous one ended), and deals
//! (one per fill, tradeType 1 buy / 2 sell; no trade id, as documented).
//!
//! Contracts (`/mexc_derivatives/edge`): `{"method":"sub.<x>","param":{"symbol":"BTC_USDT"}}` acked
//! `{"channel":"rs.sub.<x>","data":"success","ts":ms}` (no symbol), an unknown contract answered
//! `{"channel":"rs.error","data":"Contract doesn't exist!","ts":ms}`; `{"method":"ping"}` →
//! `{"channel":"pong","data":ms}`; closed after `mexc_idle_timeout_ms` (1 min) without a client frame.
//! `push.depth` with `compress:false`: one push per changed level, `version` stepping by one; merged
//! (the default): one push per market step with the last version (versions jump). Sizes are
//! contracts; numbers are bare JSON numbers. `push.deal` carries the live array form with ids `i`;
//! `push.funding.rate` the rate and `nextSettleTime`; `push.ticker` `holdVol` (contracts) and prices.

use super::book::{Scale, fmt_fixed, fmt_trimmed};
use super::conn::{ConnCtx, DataFrame, FrameClass, KeepAlive, Out, Protocol};
use super::market::{MarkUpdate, MarketEvent, Stamped, instrument_params};
use super::mexc_pb::{PbDeal, PbLevel, deals_push, depth_push};
use marketprism_config::SimulatorConfig;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Spot: subscriptions one connection may hold.
const MAX_SUBSCRIPTIONS: usize = 30;
/// Spot: a connection without a valid subscription is closed after this long.
const NO_SUBSCRIPTION_TIMEOUT: Duration = Duration::from_secs(30);

/// A spot channel → (kind, interval, symbol): `spot@public.aggre.<kind>.v3.api.pb@<interval>@<SYMBOL>`.
fn spot_channel(ch: &str) -> Option<(&str, &str, &str)> {
    let rest = ch.strip_prefix("spot@public.aggre.")?;
    let (kind, rest) = rest.split_once(".v3.api.pb@")?;
    let (interval, symbol) = rest.split_once('@')?;
    let valid = matches!(kind, "deals" | "depth")
        && matches!(interval, "100ms" | "10ms")
        && !symbol.is_empty()
        && symbol
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    valid.then_some((kind, interval, symbol))
}

pub(crate) struct MexcSpotConn {
    valid_path: bool,
    idle_timeout: Duration,
    opened: Option<Instant>,
    /// Channel name per (kind, symbol).
    subs: BTreeMap<(String, String), String>,
}

impl MexcSpotConn {
    pub(crate) fn new(rel: &str, config: &SimulatorConfig) -> MexcSpotConn {
        MexcSpotConn {
            valid_path: rel.split('?').next() == Some("/ws"),
            idle_timeout: Duration::from_millis(config.mexc_idle_timeout_ms),
            opened: None,
            subs: BTreeMap::new(),
        }
    }

    fn reply(msg: &str) -> Out {
        Out::Text(json!({"id": 0, "code": 0, "msg": msg}).to_string())
    }
}

fn levels(changes: impl Iterator<Item = (i64, i64)>, scale: Scale) -> Vec<PbLevel> {
    changes
        .map(|(p, q)| PbLevel {
            price: fmt_fixed(p, scale.price_decimals),
            quantity: fmt_fixed(q, scale.qty_decimals),
        })
        .collect()
}

impl Protocol for MexcSpotConn {
    fn keepalive(&self) -> KeepAlive {
        KeepAlive::ClientIdle {
            timeout: self.idle_timeout,
        }
    }

    fn open(&mut self, _cx: &mut ConnCtx) -> Vec<Out> {
        self.opened = Some(Instant::now());
        if self.valid_path {
            Vec::new()
        } else {
            vec![Out::Close(1008, "invalid path".into())]
        }
    }

    fn on_text(&mut self, text: &str, cx: &mut ConnCtx) -> Vec<Out> {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return vec![Self::reply("Invalid message")];
        };
        let method = v.get("method").and_then(Value::as_str).unwrap_or("");
        let params: Vec<String> = v
            .get("params")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        match method {
            "PING" => vec![Self::reply("PONG")],
            "SUBSCRIPTION" if !params.is_empty() => {
                let mut refused = Vec::new();
                for ch in &params {
                    let parsed = spot_channel(ch).filter(|(_, _, s)| {
                        !cx.shared.is_delisted(cx.exchange, s)
                            && !cx.shared.is_not_yet_listed(cx.exchange, s)
                    });
                    let Some((kind, _, symbol)) = parsed else {
                        refused.push(ch.clone());
                        continue;
                    };
                    let key = (kind.to_owned(), symbol.to_owned());
                    if self.subs.contains_key(&key) {
                        continue;
                    }
                    if self.subs.len() >= MAX_SUBSCRIPTIONS {
                        refused.push(ch.clone());
                        continue;
                    }
                    cx.attach(symbol, 0);
                    self.subs.insert(key, ch.clone());
                }
                if refused.is_empty() {
                    vec![Self::reply(&params.join(","))]
                } else {
                    vec![Self::reply(&format!(
                        "Not Subscribed successfully! [{}].  Reason： Blocked! ",
                        refused.join(",")
                    ))]
                }
            }
            "UNSUBSCRIPTION" if !params.is_empty() => {
                for ch in &params {
                    if let Some((kind, _, symbol)) = spot_channel(ch)
                        && self
                            .subs
                            .remove(&(kind.to_owned(), symbol.to_owned()))
                            .is_some()
                    {
                        cx.detach(symbol);
                    }
                }
                vec![Self::reply(&params.join(","))]
            }
            _ => vec![Self::reply("Invalid message")],
        }
    }

    fn encode(&mut self, ev: &Stamped, _cx: &mut ConnCtx) -> Vec<DataFrame> {
        let s = &*ev.symbol;
        let scale = instrument_params(s).0;
        let frame = |channel: &'static str, class, bytes| DataFrame {
            channel,
            symbol: ev.symbol.clone(),
            class,
            text: String::new(),
            binary: Some(bytes),
        };
        match &ev.event {
            MarketEvent::Book(d) => {
                let Some(ch) = self.subs.get(&("depth".to_owned(), s.to_owned())) else {
                    return Vec::new();
                };
                let asks = levels(d.asks.iter().map(|c| (c.price, c.qty)), scale);
                let bids = levels(d.bids.iter().map(|c| (c.price, c.qty)), scale);
                let bytes = depth_push(ch, s, ev.ts_ms, (d.first_id, d.last_id), &asks, &bids);
                vec![frame("book", FrameClass::Book, bytes)]
            }
            MarketEvent::Trades(b) => {
                let Some(ch) = self.subs.get(&("deals".to_owned(), s.to_owned())) else {
                    return Vec::new();
                };
                let deals: Vec<PbDeal> = b
                    .fills
                    .iter()
                    .map(|f| PbDeal {
                        price: fmt_fixed(b.price, scale.price_decimals),
                        quantity: fmt_fixed(f.qty, scale.qty_decimals),
                        trade_type: if b.taker_buy { 1 } else { 2 },
                        time_ms: ev.ts_ms,
                    })
                    .collect();
                let bytes = deals_push(ch, s, ev.ts_ms, &deals);
                vec![frame("trades", FrameClass::Trade, bytes)]
            }
            _ => Vec::new(),
        }
    }

    fn on_tick(&mut self, now: Instant, _cx: &mut ConnCtx) -> Vec<Out> {
        let unsubscribed = self.subs.is_empty()
            && self
                .opened
                .is_some_and(|t| now.duration_since(t) >= NO_SUBSCRIPTION_TIMEOUT);
        if unsubscribed {
            return vec![Out::Close(1000, "no valid subscription".into())];
        }
        Vec::new()
    }
}

pub(crate) struct MexcContractConn {
    valid_path: bool,
    idle_timeout: Duration,
    /// (method without `sub.`, symbol) → merged (`compress` not false; depth only).
    subs: BTreeMap<(String, String), bool>,
    /// The last mark of each symbol, for its ticker.
    marks: HashMap<String, MarkUpdate>,
}

impl MexcContractConn {
    pub(crate) fn new(rel: &str, config: &SimulatorConfig) -> MexcContractConn {
        MexcContractConn {
            valid_path: rel.split('?').next() == Some("/edge"),
            idle_timeout: Duration::from_millis(config.mexc_idle_timeout_ms),
            subs: BTreeMap::new(),
            marks: HashMap::new(),
        }
    }

    fn sub(&self, method: &str, symbol: &str) -> Option<bool> {
        self.subs
            .get(&(method.to_owned(), symbol.to_owned()))
            .copied()
    }
}

/// `{"channel":…,"data":…,"symbol":…,"ts":…}` with `data` already JSON text (bare numbers kept).
fn push(channel: &str, symbol: &str, data: &str, ts: i64) -> String {
    format!(r#"{{"symbol":"{symbol}","data":{data},"channel":"{channel}","ts":{ts}}}"#)
}

impl Protocol for MexcContractConn {
    fn keepalive(&self) -> KeepAlive {
        KeepAlive::ClientPing {
            timeout: self.idle_timeout,
        }
    }

    fn open(&mut self, _cx: &mut ConnCtx) -> Vec<Out> {
        if self.valid_path {
            Vec::new()
        } else {
            vec![Out::Close(1008, "invalid path".into())]
        }
    }

    fn on_text(&mut self, text: &str, cx: &mut ConnCtx) -> Vec<Out> {
        let now = super::now_ms();
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return vec![Out::Text(
                json!({"channel": "rs.error", "data": "Invalid request!", "ts": now}).to_string(),
            )];
        };
        let method = v.get("method").and_then(Value::as_str).unwrap_or("");
        if method == "ping" {
            return vec![Out::Text(
                json!({"channel": "pong", "data": now, "ts": now}).to_string(),
            )];
        }
        let (unsub, name) = match method.split_once('.') {
            Some(("sub", n)) => (false, n),
            Some(("unsub" | "usub", n)) => (true, n),
            _ => (false, ""),
        };
        if !matches!(name, "deal" | "depth" | "funding.rate" | "ticker") {
            return vec![Out::Text(
                json!({"channel": "rs.error", "data": "Method not supported!", "ts": now})
                    .to_string(),
            )];
        }
        let param = v.get("param").cloned().unwrap_or(Value::Null);
        let symbol = param
            .get("symbol")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let known = symbol.contains('_')
            && !cx.shared.is_delisted(cx.exchange, &symbol)
            && !cx.shared.is_not_yet_listed(cx.exchange, &symbol);
        if !known {
            return vec![Out::Text(
                json!({"channel": "rs.error", "data": "Contract doesn't exist!", "ts": now})
                    .to_string(),
            )];
        }
        if !unsub && cx.shared.is_unanswered(cx.exchange, &symbol) {
            return Vec::new();
        }
        let key = (name.to_owned(), symbol.clone());
        if unsub {
            if self.subs.remove(&key).is_some() {
                cx.detach(&symbol);
            }
        } else if let std::collections::btree_map::Entry::Vacant(e) = self.subs.entry(key) {
            let merged = param.get("compress").and_then(Value::as_bool) != Some(false);
            cx.attach(&symbol, 0);
            e.insert(merged);
        }
        let prefix = if unsub { "rs.unsub." } else { "rs.sub." };
        vec![Out::Text(
            json!({"channel": format!("{prefix}{name}"), "data": "success", "ts": now}).to_string(),
        )]
    }

    fn encode(&mut self, ev: &Stamped, _cx: &mut ConnCtx) -> Vec<DataFrame> {
        let s = &*ev.symbol;
        let scale = instrument_params(s).0;
        let (pd, qd) = (scale.price_decimals, scale.qty_decimals);
        let ts = ev.ts_ms;
        let frame = |channel: &'static str, class, text| DataFrame {
            channel,
            symbol: ev.symbol.clone(),
            class,
            text,
            binary: None,
        };
        let level = |p: i64, q: i64| {
            let orders = if q == 0 { 0 } else { q % 7 + 1 };
            format!("[{},{},{orders}]", fmt_trimmed(p, pd), fmt_trimmed(q, qd))
        };
        let depth = |asks: &[String], bids: &[String], version: u64| {
            format!(
                r#"{{"asks":[{}],"bids":[{}],"version":{version}}}"#,
                asks.join(","),
                bids.join(",")
            )
        };
        let mut out = Vec::new();
        match &ev.event {
            MarketEvent::Book(d) => match self.sub("depth", s) {
                None => {}
                Some(true) => {
                    let asks: Vec<String> = d.asks.iter().map(|c| level(c.price, c.qty)).collect();
                    let bids: Vec<String> = d.bids.iter().map(|c| level(c.price, c.qty)).collect();
                    let data = depth(&asks, &bids, d.last_id);
                    out.push(frame(
                        "book",
                        FrameClass::Book,
                        push("push.depth", s, &data, ts),
                    ));
                }
                Some(false) => {
                    // One push per changed level, versions first_id..=last_id.
                    let changes = d
                        .asks
                        .iter()
                        .map(|c| (true, c))
                        .chain(d.bids.iter().map(|c| (false, c)));
                    for (k, (ask, c)) in changes.enumerate() {
                        let one = vec![level(c.price, c.qty)];
                        let data = if ask {
                            depth(&one, &[], d.first_id + k as u64)
                        } else {
                            depth(&[], &one, d.first_id + k as u64)
                        };
                        out.push(frame(
                            "book",
                            FrameClass::Book,
                            push("push.depth", s, &data, ts),
                        ));
                    }
                }
            },
            MarketEvent::Trades(b) if self.sub("deal", s).is_some() => {
                let deals: Vec<String> = b
                    .fills
                    .iter()
                    .map(|f| {
                        format!(
                            r#"{{"p":{},"v":{},"T":{},"O":3,"M":2,"t":{ts},"i":"{}","cts":"{ts}"}}"#,
                            fmt_trimmed(b.price, pd),
                            fmt_trimmed(f.qty, qd),
                            if b.taker_buy { 1 } else { 2 },
                            f.id
                        )
                    })
                    .collect();
                let data = format!("[{}]", deals.join(","));
                out.push(frame(
                    "trades",
                    FrameClass::Trade,
                    push("push.deal", s, &data, ts),
                ));
            }
            MarketEvent::Mark(m) => {
                self.marks.insert(s.to_owned(), m.clone());
                if self.sub("funding.rate", s).is_some() {
                    let data = format!(
                        r#"{{"symbol":"{s}","rate":{},"nextSettleTime":{}}}"#,
                        fmt_trimmed(m.funding_rate_e8, 8),
                        m.next_funding_ms
                    );
                    out.push(frame(
                        "funding",
                        FrameClass::Other,
                        push("push.funding.rate", s, &data, ts),
                    ));
                }
            }
            MarketEvent::OpenInterest { oi_lots } if self.sub("ticker", s).is_some() => {
                let (fair, index, rate) = self
                    .marks
                    .get(s)
                    .map_or((0, 0, 0), |m| (m.mark, m.index, m.funding_rate_e8));
                let data = format!(
                    r#"{{"symbol":"{s}","lastPrice":{f},"fairPrice":{f},"indexPrice":{i},"fundingRate":{r},"holdVol":{oi},"timestamp":{ts}}}"#,
                    f = fmt_trimmed(fair, pd),
                    i = fmt_trimmed(index, pd),
                    r = fmt_trimmed(rate, 8),
                    oi = fmt_trimmed(*oi_lots, qd),
                );
                out.push(frame(
                    "open_interest",
                    FrameClass::Other,
                    push("push.ticker", s, &data, ts),
                ));
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
    fn spot_channels_are_read_by_their_documented_parts() {
        assert_eq!(
            spot_channel("spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"),
            Some(("deals", "100ms", "BTCUSDT"))
        );
        assert_eq!(
            spot_channel("spot@public.aggre.depth.v3.api.pb@10ms@ETHUSDT"),
            Some(("depth", "10ms", "ETHUSDT"))
        );
        for bad in [
            "spot@public.aggre.depth.v3.api.pb@100ms@btcusdt",
            "spot@public.aggre.depth.v3.api.pb@1s@BTCUSDT",
            "spot@public.deals.v3.api.pb@BTCUSDT",
            "spot@public.aggre.kline.v3.api.pb@100ms@BTCUSDT",
        ] {
            assert_eq!(spot_channel(bad), None, "{bad}");
        }
        assert_eq!(
            push("push.depth", "BTC_USDT", r#"{"version":5}"#, 7),
            r#"{"symbol":"BTC_USDT","data":{"version":5},"channel":"push.depth","ts":7}"#
        );
    }
}
