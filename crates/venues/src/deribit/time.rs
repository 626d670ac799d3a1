//! Deribit server time, for the clock-offset probe ([`crate::clock`]).
//!
//! JSON-RPC `public/get_time` (no parameters), here over REST `GET /api/v2/public/get_time`, answers
//! `{"jsonrpc":"2.0","id":7365,"result":1550147385946}`: `result` is UTC milliseconds (Deribit API v2
//! docs, Supporting, "public/get_time": "can be used to check the clock skew").

use crate::parse::{ParseError, ParseErrorReason, ParseResult, time_ms};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The server-time path over REST.
pub(crate) const TIME_PATH: &str = "/api/v2/public/get_time";

#[derive(Deserialize)]
struct RawReply<'a> {
    #[serde(default)]
    result: Option<i64>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// The `result` of the reply → server time, UTC ms (checked as plausible against `recv_ts_ms`); a
/// JSON-RPC `error` is a `VenueError`.
pub(crate) fn parse_server_time(body: &str, recv_ts_ms: i64) -> ParseResult<i64> {
    let reply: RawReply<'_> = serde_json::from_str(body)?;
    if let Some(error) = reply.error {
        return Err(ParseError::new(
            ParseErrorReason::VenueError,
            error.get().chars().take(200).collect::<String>(),
        ));
    }
    let ms = reply
        .result
        .ok_or_else(|| ParseError::new(ParseErrorReason::MissingField, "result"))?;
    time_ms(ms, recv_ts_ms, "result")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECV: i64 = 1_700_000_000_000;

    #[test]
    fn documented_reply_gives_milliseconds() {
        assert_eq!(
            parse_server_time(
                r#"{"jsonrpc":"2.0","id":7365,"result":1550147385946}"#,
                RECV
            ),
            Ok(1_550_147_385_946)
        );
        // The REST form carries no id.
        assert_eq!(
            parse_server_time(
                r#"{"jsonrpc":"2.0","result":1550147385946,"testnet":false}"#,
                RECV
            ),
            Ok(1_550_147_385_946)
        );
    }

    #[test]
    fn errors_and_garbage_are_rejected() {
        let reason = |b: &str| parse_server_time(b, RECV).unwrap_err().reason;
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0","error":{"code":10028,"message":"too_many_requests"}}"#),
            ParseErrorReason::VenueError
        );
        assert_eq!(
            reason(r#"{"jsonrpc":"2.0"}"#),
            ParseErrorReason::MissingField
        );
        assert_eq!(
            reason(r#"{"result":"1550147385946"}"#),
            ParseErrorReason::InvalidJson
        );
        assert_eq!(reason(""), ParseErrorReason::InvalidJson);
        // Nanoseconds are not milliseconds.
        assert_eq!(
            reason(r#"{"result":1550147385946000000}"#),
            ParseErrorReason::BadTime
        );
    }
}
