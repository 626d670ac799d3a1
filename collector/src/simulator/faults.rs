//! Faults the simulator injects on demand, so tests can prove the collector notices each one.

use crate::model::Exchange;

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
    /// OKX: a keep-alive book message (empty, `seqId == prevSeqId`) on the target's markets.
    OkxKeepAlive(Target),
    /// OKX: the next book update restarts the sequence (`seqId < prevSeqId`).
    OkxSequenceReset(Target),
    /// Binance: send `serverShutdown`, then close after the configured grace.
    BinanceServerShutdown(Target),
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
    Malformed(Malformation),
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
