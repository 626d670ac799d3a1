//! OKX v5 public WebSocket: subscribe envelope and acks, `books` in legacy/zero-checksum/REST-snapshot modes,
//! trades, funding-rate, open-interest, liquidation-orders, text ping/pong.

use super::book::{LevelChange, Scale, fmt_trimmed};
use super::conn::{ConnCtx, DataFrame, FrameClass, KeepAlive, Out, Protocol};
use super::market::{BookSnapshot, MarketEvent, Stamped, instrument_params};
use marketprism_config::{OkxBookMode, SimulatorConfig};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

const CHANNELS: [&str; 5] = [
    "books",
    "trades",
    "funding-rate",
    "open-interest",
    "liquidation-orders",
];

/// Instrument type from an OKX instId (`BTC-USDT` spot, `BTC-USDT-SWAP` swap, `BTC-USD-251226` futures).
pub(crate) fn inst_type(inst_id: &str) -> &'static str {
    let parts: Vec<&str> = inst_id.split('-').collect();
    match parts.as_slice() {
        [_, _, "SWAP"] => "SWAP",
        [_, _, _] => "FUTURES",
        [_, _, _, _, _] => "OPTION",
        _ => "SPOT",
    }
}

/// Order count shown in a level (deterministic from the size; "0" for a deletion).
fn orders(qty: i64) -> String {
    if qty == 0 {
        "0".into()
    } else {
        (qty % 7 + 1).to_string()
    }
}

pub(crate) fn level(price: i64, qty: i64, scale: Scale) -> [String; 4] {
    [
        fmt_trimmed(price, scale.price_decimals),
        fmt_trimmed(qty, scale.qty_decimals),
        "0".into(),
        orders(qty),
    ]
}

/// The `data[0]` object of a REST or WS snapshot (pure).
pub(crate) fn snapshot_data(snap: &BookSnapshot, scale: Scale, checksum: Option<i32>) -> Value {
    let side = |v: &[(i64, i64)]| {
        v.iter()
            .map(|(p, q)| level(*p, *q, scale))
            .collect::<Vec<_>>()
    };
    let mut d = json!({"asks": side(&snap.asks), "bids": side(&snap.bids), "ts": snap.ts_ms.to_string(), "seqId": snap.last_id});
    if let Some(c) = checksum {
        d["checksum"] = json!(c);
        d["prevSeqId"] = json!(-1);
    }
    d
}

pub(crate) struct OkxConn {
    valid_path: bool,
    mode: OkxBookMode,
    idle_timeout: Duration,
    /// (channel, instId or instType)
    subs: BTreeSet<(String, String)>,
    /// Per instId: drop book diffs older than the WS snapshot sent at subscribe time.
    book_from: HashMap<String, u64>,
    last_checksum: HashMap<String, i32>,
}

impl OkxConn {
    pub(crate) fn new(rel: &str, config: &SimulatorConfig) -> OkxConn {
        OkxConn {
            valid_path: rel.split('?').next() == Some("/ws/v5/public"),
            mode: config.okx_book_mode,
            idle_timeout: Duration::from_millis(config.okx_idle_timeout_ms),
            subs: BTreeSet::new(),
            book_from: HashMap::new(),
            last_checksum: HashMap::new(),
        }
    }

    fn checksum(&self, real: i32) -> i32 {
        if self.mode == OkxBookMode::Legacy {
            real
        } else {
            0
        }
    }

    fn error(id: &Value, code: &str, msg: String, conn_id: &str) -> Out {
        let mut o = json!({"event": "error", "code": code, "msg": msg, "connId": conn_id});
        if !id.is_null() {
            o["id"] = id.clone();
        }
        Out::Text(o.to_string())
    }

    fn handle_arg(
        &mut self,
        op: &str,
        arg: &Value,
        id: &Value,
        cx: &mut ConnCtx,
        out: &mut Vec<Out>,
    ) {
        let conn_id = format!("{:08x}", cx.id);
        let channel = arg.get("channel").and_then(Value::as_str).unwrap_or("");
        if !CHANNELS.contains(&channel) {
            out.push(Self::error(id, "60018", format!("Wrong URL or channel:{channel} doesn't exist. Please use the correct URL, channel and parameters referring to API document."), &conn_id));
            return;
        }
        let by_type = channel == "liquidation-orders";
        let field = if by_type { "instType" } else { "instId" };
        let Some(key) = arg.get(field).and_then(Value::as_str).map(str::to_owned) else {
            out.push(Self::error(
                id,
                "60012",
                format!("Invalid request: {{\"op\": \"{op}\", \"args\":[{arg}]}}, missing {field}"),
                &conn_id,
            ));
            return;
        };
        let needs_swap = matches!(channel, "funding-rate" | "open-interest");
        if needs_swap && inst_type(&key) == "SPOT"
            || by_type && !["SWAP", "FUTURES", "MARGIN", "OPTION"].contains(&key.as_str())
            || !by_type && cx.shared.is_delisted(cx.exchange, &key)
        {
            out.push(Self::error(
                id,
                "60018",
                format!("Wrong URL or channel:{channel},{field}:{key} doesn't exist."),
                &conn_id,
            ));
            return;
        }
        let sub = (channel.to_owned(), key.clone());
        let mut ack = json!({"event": op, "arg": arg, "connId": conn_id});
        if !id.is_null() {
            ack["id"] = id.clone();
        }
        out.push(Out::Text(ack.to_string()));
        if op == "unsubscribe" {
            if self.subs.remove(&sub) {
                self.detach(&sub, cx);
            }
            return;
        }
        if !self.subs.insert(sub) {
            return;
        }
        if by_type {
            for m in cx.shared.markets_of(cx.exchange) {
                let sym = super::lock(&m).symbol.to_string();
                cx.attach_market(&sym, &m, 0);
            }
            return;
        }
        let snap = cx.attach(&key, 400);
        if channel == "books" {
            self.last_checksum.insert(key.clone(), snap.okx_checksum);
            if self.mode != OkxBookMode::RestSnapshot {
                self.book_from.insert(key.clone(), snap.last_id);
                let data = snapshot_data(
                    &snap,
                    instrument_params(&key).0,
                    Some(self.checksum(snap.okx_checksum)),
                );
                let msg = json!({"arg": {"channel": "books", "instId": key}, "action": "snapshot", "data": [data]});
                out.push(Out::Text(msg.to_string()));
            }
        }
    }

    fn detach(&mut self, sub: &(String, String), cx: &mut ConnCtx) {
        if sub.0 == "liquidation-orders" {
            for m in cx.shared.markets_of(cx.exchange) {
                let sym = super::lock(&m).symbol.to_string();
                cx.detach(&sym);
            }
        } else {
            cx.detach(&sub.1);
        }
    }

    fn has(&self, channel: &str, key: &str) -> bool {
        self.subs.contains(&(channel.to_owned(), key.to_owned()))
    }
}

impl Protocol for OkxConn {
    fn keepalive(&self) -> KeepAlive {
        KeepAlive::ClientIdle {
            timeout: self.idle_timeout,
        }
    }

    fn open(&mut self, _cx: &mut ConnCtx) -> Vec<Out> {
        if self.valid_path {
            Vec::new()
        } else {
            vec![Out::Close(
                4000,
                "Invalid request path, use /ws/v5/public".into(),
            )]
        }
    }

    fn on_text(&mut self, text: &str, cx: &mut ConnCtx) -> Vec<Out> {
        if text == "ping" {
            return vec![Out::Text("pong".into())];
        }
        let conn_id = format!("{:08x}", cx.id);
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return vec![Self::error(
                &Value::Null,
                "60012",
                format!("Invalid request: {text}"),
                &conn_id,
            )];
        };
        let id = v.get("id").cloned().unwrap_or(Value::Null);
        let op = v.get("op").and_then(Value::as_str).unwrap_or("");
        let args = v
            .get("args")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !matches!(op, "subscribe" | "unsubscribe") || args.is_empty() {
            return vec![Self::error(
                &id,
                "60012",
                format!("Invalid request: {text}"),
                &conn_id,
            )];
        }
        let mut out = Vec::new();
        for arg in &args {
            self.handle_arg(op, arg, &id, cx, &mut out);
        }
        out
    }

    fn encode(&mut self, ev: &Stamped, cx: &mut ConnCtx) -> Vec<DataFrame> {
        let _ = cx;
        let s = &*ev.symbol;
        let scale = instrument_params(s).0;
        let ts = ev.ts_ms.to_string();
        let mut out = Vec::new();
        match &ev.event {
            MarketEvent::Book(d) if self.has("books", s) => {
                if let Some(from) = self.book_from.get(s).copied() {
                    if d.prev_id < from {
                        return out;
                    }
                    self.book_from.remove(s);
                }
                self.last_checksum.insert(s.to_owned(), d.okx_checksum);
                let side = |v: &Vec<LevelChange>| {
                    v.iter()
                        .map(|c| level(c.price, c.qty, scale))
                        .collect::<Vec<_>>()
                };
                let msg = json!({"arg": {"channel": "books", "instId": s}, "action": "update", "data": [{
                    "asks": side(&d.asks), "bids": side(&d.bids), "ts": ts, "checksum": self.checksum(d.okx_checksum),
                    "prevSeqId": d.prev_id, "seqId": d.last_id}]});
                out.push(DataFrame::json("book", ev, FrameClass::Book, msg));
            }
            MarketEvent::BookKeepAlive { id } if self.has("books", s) => {
                let c = self.checksum(self.last_checksum.get(s).copied().unwrap_or(0));
                let msg = json!({"arg": {"channel": "books", "instId": s}, "action": "update", "data": [{
                    "asks": [], "bids": [], "ts": ts, "checksum": c, "prevSeqId": id, "seqId": id}]});
                out.push(DataFrame::json("book", ev, FrameClass::Other, msg));
            }
            MarketEvent::Trades(b) if self.has("trades", s) => {
                let qty: i64 = b.fills.iter().map(|f| f.qty).sum();
                let last = b.fills[b.fills.len() - 1].id;
                let msg = json!({"arg": {"channel": "trades", "instId": s}, "data": [{
                    "instId": s, "tradeId": last.to_string(), "px": fmt_trimmed(b.price, scale.price_decimals),
                    "sz": fmt_trimmed(qty, scale.qty_decimals), "side": if b.taker_buy { "buy" } else { "sell" },
                    "ts": ts, "count": b.fills.len().to_string(), "source": "0", "seqId": b.agg_id}]});
                out.push(DataFrame::json("trades", ev, FrameClass::Trade, msg));
            }
            MarketEvent::Mark(m) if self.has("funding-rate", s) => {
                let rate = super::book::fmt_fixed(m.funding_rate_e8, 8);
                let msg = json!({"arg": {"channel": "funding-rate", "instId": s}, "data": [{
                    "formulaType": "noRate", "fundingRate": rate, "fundingTime": m.next_funding_ms.to_string(), "impactValue": "",
                    "instId": s, "instType": "SWAP", "interestRate": "", "method": "current_period", "maxFundingRate": "0.00375",
                    "minFundingRate": "-0.00375", "nextFundingRate": "", "nextFundingTime": (m.next_funding_ms + 8 * 3_600_000).to_string(),
                    "premium": "0.0001", "settFundingRate": rate, "settState": "settled", "ts": ts}]});
                out.push(DataFrame::json("funding", ev, FrameClass::Other, msg));
            }
            MarketEvent::OpenInterest { oi_lots } if self.has("open-interest", s) => {
                let oi = fmt_trimmed(*oi_lots, scale.qty_decimals);
                // ctVal 0.01 coin per contract.
                let oi_ccy = fmt_trimmed(*oi_lots, scale.qty_decimals + 2);
                let msg = json!({"arg": {"channel": "open-interest", "instId": s}, "data": [{
                    "instId": s, "instType": "SWAP", "oi": oi, "oiCcy": oi_ccy, "oiUsd": "0", "ts": ts}]});
                out.push(DataFrame::json("open_interest", ev, FrameClass::Other, msg));
            }
            MarketEvent::Liquidation(l) if self.has("liquidation-orders", inst_type(s)) => {
                let family = s.trim_end_matches("-SWAP");
                let msg = json!({"arg": {"channel": "liquidation-orders", "instType": inst_type(s)}, "data": [{
                    "details": [{"bkLoss": "0", "bkPx": fmt_trimmed(l.price, scale.price_decimals), "ccy": "",
                                 "posSide": if l.sell { "long" } else { "short" }, "side": if l.sell { "sell" } else { "buy" },
                                 "sz": fmt_trimmed(l.qty, scale.qty_decimals), "ts": ts}],
                    "instFamily": family, "instId": s, "instType": inst_type(s), "uly": family}]});
                out.push(DataFrame::json("liquidations", ev, FrameClass::Other, msg));
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
    fn inst_types() {
        assert_eq!(inst_type("BTC-USDT"), "SPOT");
        assert_eq!(inst_type("BTC-USDT-SWAP"), "SWAP");
        assert_eq!(inst_type("BTC-USD-251226"), "FUTURES");
        assert_eq!(inst_type("BTC-USD-251226-4000-C"), "OPTION");
    }
}
