//! Faults the simulator injects on demand, so tests can prove the collector notices each one.

use marketprism_model::Exchange;

/// Which connections a fault hits: a venue, optionally one symbol, optionally one connection id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub exchange: Exchange,
    pub symbol: Option<String>,
    pub connection: Option<u64>,
}

impl Target {
    pub fn venue(exchange: Exchange) -> Target {
        Target {
            exchange,
            symbol: None,
            connection: None,
        }
    }

    pub fn symbol(exchange: Exchange, symbol: &str) -> Target {
        Target {
            exchange,
            symbol: Some(symbol.to_owned()),
            connection: None,
        }
    }

    pub fn with_connection(mut self, id: u64) -> Target {
        self.connection = Some(id);
        self
    }
}

/// How a malformed frame is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformation {
    /// Not JSON at all.
    InvalidJson,
    /// Valid JSON, every string replaced by `true` and every number by a string.
    WrongTypes,
    /// The first half of the real frame.
    Truncated,
}

/// HTTP error the REST side answers with, both carrying `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestRejection {
    /// 429 Too Many Requests.
    RateLimited,
    /// 418 I'm a teapot: Binance's IP ban.
    IpBanned,
}

impl RestRejection {
    pub fn status(self) -> u16 {
        match self {
            RestRejection::RateLimited => 429,
            RestRejection::IpBanned => 418,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Cut the TCP connections abruptly (no close frame).
    DropConnections(Target),
    /// Do not send the next `messages` book messages (ids skipped: the chain breaks).
    SequenceGap { target: Target, messages: u32 },
    /// Send each of the next `messages` book/trade messages twice.
    Duplicate { target: Target, messages: u32 },
    /// Swap each of the next `messages` book/trade messages with the one after it.
    OutOfOrder { target: Target, messages: u32 },
    /// Keep the connection open but send no data (pings and acks continue) for `duration_ms`.
    Stale { target: Target, duration_ms: u64 },
    /// Replace the next `messages` data frames by broken ones.
    Malformed {
        target: Target,
        kind: Malformation,
        messages: u32,
    },
    /// Delay the next `requests` REST answers of the venue.
    SlowRest {
        exchange: Exchange,
        delay_ms: u64,
        requests: u32,
    },
    /// Reject the next `requests` REST calls of the venue with 429/418 and `Retry-After`.
    RestReject {
        exchange: Exchange,
        rejection: RestRejection,
        retry_after_s: u64,
        requests: u32,
    },
    /// Freeze the target's books now and serve that (soon too old) snapshot to the next `requests` REST calls:
    /// its `lastUpdateId`/`seqId` falls before the events a client buffers after subscribing.
    StaleSnapshot { target: Target, requests: u32 },
    /// From now on connections of the venue live at most `lifetime_ms` (stands in for the 24 h cut).
    ConnectionLifetime {
        exchange: Exchange,
        lifetime_ms: u64,
    },
    /// For `duration_ms`, answer every WebSocket upgrade of the venue with HTTP 503 (maintenance):
    /// with [`Fault::DropConnections`], a disconnect that lasts while the markets keep trading (a
    /// market nobody listens to otherwise holds still).
    RefuseConnections {
        exchange: Exchange,
        duration_ms: u64,
    },
    /// OKX: a keep-alive book message (empty, `seqId == prevSeqId`) on the target's markets.
    OkxKeepAlive(Target),
    /// OKX: the next book update restarts the sequence (`seqId < prevSeqId`).
    OkxSequenceReset(Target),
    /// Binance: send `serverShutdown`, then close after the configured grace.
    BinanceServerShutdown(Target),
    /// The venue stops listing the target's instrument (`symbol` as the venue names it): OKX refuses
    /// its subscribe args with error 60018 (acking the others of the batch) and REST with 51001;
    /// Binance acks the SUBSCRIBE but never sends its data, and REST answers `-1121 Invalid symbol.`.
    Delist(Target),
    /// Gate and MEXC contracts: subscribe requests for the target's instrument get no answer at all
    /// (no ack, no error, no data), as a venue that drops a request.
    Unanswered(Target),
    /// Ends [`Fault::Unanswered`] for the target: its subscribe requests are answered again.
    AnswerAgain(Target),
    /// The target's instrument (`symbol` as the venue names it) is missing from the venue's instrument
    /// list for the next `after_ms`, then listed: a listing that appears while a collector runs.
    ListLater { target: Target, after_ms: u64 },
    /// The target's instrument (`symbol` as the venue names it) leaves the venue's instrument list from
    /// now on while its streams keep flowing: a listing that ends while a collector runs (a delisting
    /// announced, maintenance).
    Unlist(Target),
    /// The target's market holds still for `duration_ms`: no book change, no trade (Binance pushes
    /// depth only on change, so its depth stream is silent while the socket is healthy).
    Quiet { target: Target, duration_ms: u64 },
    /// One trade frame for the target's instrument, which the connections did not subscribe to.
    UnsubscribedFrame(Target),
    /// Swap each of the next `messages` trade frames (only trades) with the one after it.
    SwapTrades { target: Target, messages: u32 },
    /// OKX: the next `messages` book frames carry no `prevSeqId`/`seqId` (older feeds, some mirrors).
    StripSeqIds { target: Target, messages: u32 },
    /// OKX: the next `messages` book frames carry a wrong non-zero checksum.
    CorruptChecksum { target: Target, messages: u32 },
    /// OKX: the next `requests` REST book snapshots carry no `seqId`.
    SnapshotWithoutSeqId { exchange: Exchange, requests: u32 },
}

/// A per-connection fault still waiting to be applied to data frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingFault {
    pub symbol: Option<String>,
    pub kind: FrameFault,
    pub remaining: u32,
    /// A gap counts once, however many messages it skips.
    pub started: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameFault {
    Gap,
    Duplicate,
    OutOfOrder,
    OutOfOrderTrades,
    Malformed(Malformation),
    StripSeqIds,
    CorruptChecksum,
}

/// OKX book frame without `prevSeqId`/`seqId` in its data objects (pure).
pub(crate) fn strip_seq_ids(text: &str) -> String {
    edit_okx_book(text, |d| {
        d.remove("prevSeqId");
        d.remove("seqId");
    })
}

/// OKX book frame whose checksum is wrong and non-zero (pure).
pub(crate) fn corrupt_checksum(text: &str) -> String {
    edit_okx_book(text, |d| {
        let c = d
            .get("checksum")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0);
        d.insert(
            "checksum".into(),
            serde_json::json!(if c == 7 { 8 } else { 7 }),
        );
    })
}

fn edit_okx_book(
    text: &str,
    f: impl Fn(&mut serde_json::Map<String, serde_json::Value>),
) -> String {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.to_owned();
    };
    if let Some(data) = v.get_mut("data").and_then(serde_json::Value::as_array_mut) {
        for d in data.iter_mut().filter_map(serde_json::Value::as_object_mut) {
            f(d);
        }
    }
    v.to_string()
}

/// A trade frame for `symbol` (the venue's name) in the venue's own shape (exchange-protocols.md
/// §2.4 Binance `trade`, §3.5 OKX `trades`, §4 Deribit notifications), or `None` for venues without one.
pub(crate) fn foreign_trade(exchange: Exchange, symbol: &str, ts_ms: i64) -> Option<String> {
    use serde_json::json;
    Some(match exchange {
        // Spot data is binary: no text frame to send.
        Exchange::MexcSpot => return None,
        Exchange::MexcDerivatives => json!({"symbol": symbol, "data": [{"p": 1, "v": 1, "T": 1, "O": 3, "M": 2,
            "t": ts_ms, "i": "1"}], "channel": "push.deal", "ts": ts_ms})
        .to_string(),
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => json!({"e": "trade", "E": ts_ms, "s": symbol, "t": 1, "p": "1.00000000",
            "q": "1.00000000", "T": ts_ms, "m": true, "M": true})
        .to_string(),
        Exchange::OkxSpot | Exchange::OkxDerivatives => json!({"arg": {"channel": "trades", "instId": symbol}, "data": [{
            "instId": symbol, "tradeId": "1", "px": "1", "sz": "1", "side": "buy", "ts": ts_ms.to_string(), "count": "1", "source": "0", "seqId": 1}]})
        .to_string(),
        Exchange::GateSpot => json!({"time": ts_ms / 1_000, "channel": "spot.trades", "event": "update", "result": {
            "id": 1, "create_time": ts_ms / 1_000, "create_time_ms": format!("{ts_ms}.0000"), "side": "buy",
            "currency_pair": symbol, "amount": "1", "price": "1"}})
        .to_string(),
        Exchange::GateDerivatives => json!({"time": ts_ms / 1_000, "channel": "futures.trades", "event": "update", "result": [{
            "size": 1, "id": 1, "create_time": ts_ms / 1_000, "create_time_ms": ts_ms, "price": "1", "contract": symbol}]})
        .to_string(),
        Exchange::DeribitDerivatives => json!({"jsonrpc": "2.0", "method": "subscription", "params": {"channel": format!("trades.{symbol}.100ms"),
            "data": [{"trade_seq": 1, "trade_id": "1", "timestamp": ts_ms, "tick_direction": 0, "price": 1.0, "mark_price": 1.0,
                      "instrument_name": symbol, "index_price": 1.0, "direction": "buy", "amount": 10.0}]}})
        .to_string(),
    })
}

/// Break a frame the way `kind` says (pure).
pub(crate) fn malform(text: &str, kind: Malformation) -> String {
    match kind {
        Malformation::InvalidJson => format!(
            "{{\"e\":depthUpdate,{}",
            &text[..text.len().min(10)].replace('"', "'")
        ),
        Malformation::Truncated => {
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_owned()
        }
        Malformation::WrongTypes => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => retype(v).to_string(),
            Err(_) => "true".to_owned(),
        },
    }
}

fn retype(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(_) => Value::Bool(true),
        Value::Number(n) => Value::String(format!("n{n}")),
        Value::Array(a) => Value::Array(a.into_iter().map(retype).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, retype(v))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn okx_book_edits_touch_only_the_named_fields() {
        let f = r#"{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":[],"bids":[],"ts":"1","checksum":0,"prevSeqId":5,"seqId":6}]}"#;
        let v: serde_json::Value = serde_json::from_str(&strip_seq_ids(f)).unwrap();
        assert!(v["data"][0].get("seqId").is_none() && v["data"][0].get("prevSeqId").is_none());
        assert_eq!(v["data"][0]["ts"], "1");
        let v: serde_json::Value = serde_json::from_str(&corrupt_checksum(f)).unwrap();
        assert_eq!(v["data"][0]["checksum"], 7);
        assert_eq!(v["data"][0]["seqId"], 6);
        let t = foreign_trade(Exchange::BinanceSpot, "XRPUSDT", 5).unwrap();
        assert!(t.contains(r#""s":"XRPUSDT""#), "{t}");
    }

    #[test]
    fn malformed_frames_are_really_broken() {
        let good = r#"{"e":"trade","t":5,"p":"1.5"}"#;
        for kind in [Malformation::InvalidJson, Malformation::Truncated] {
            let bad = malform(good, kind);
            assert!(
                serde_json::from_str::<serde_json::Value>(&bad).is_err(),
                "{kind:?}: {bad}"
            );
        }
        let bad: serde_json::Value =
            serde_json::from_str(&malform(good, Malformation::WrongTypes)).unwrap();
        assert_eq!(bad["e"], serde_json::json!(true));
        assert_eq!(bad["t"], serde_json::json!("n5"));
    }
}
