//! Binance server time, for the clock-offset probe ([`crate::clock`]).
//!
//! Spot `GET /api/v3/time` and USD-M `GET /fapi/v1/time` (both weight 1, no parameters) answer
//! `{"serverTime": 1499827319559}`: UTC milliseconds (Binance spot REST docs, "Check server time";
//! USD-M REST docs, "Check Server Time").

use crate::parse::{ParseResult, time_ms};
use marketprism_model::Exchange;
use serde::Deserialize;

/// The server-time path of a Binance product line (USD-M for derivatives, spot otherwise).
pub(crate) fn time_path(exchange: Exchange) -> &'static str {
    match exchange {
        Exchange::BinanceDerivatives => "/fapi/v1/time",
        _ => "/api/v3/time",
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTime {
    server_time: i64,
}

/// `{"serverTime": ms}` → server time, UTC ms (checked as plausible against `recv_ts_ms`).
pub(crate) fn parse_server_time(body: &str, recv_ts_ms: i64) -> ParseResult<i64> {
    let raw: RawTime = serde_json::from_str(body)?;
    time_ms(raw.server_time, recv_ts_ms, "serverTime")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParseErrorReason;

    const RECV: i64 = 1_700_000_000_000;

    #[test]
    fn documented_reply_gives_milliseconds() {
        // The documented example (spot and USD-M share the shape).
        assert_eq!(
            parse_server_time(r#"{"serverTime":1499827319559}"#, RECV),
            Ok(1_499_827_319_559)
        );
        assert_eq!(time_path(Exchange::BinanceSpot), "/api/v3/time");
        assert_eq!(time_path(Exchange::BinanceDerivatives), "/fapi/v1/time");
    }

    #[test]
    fn garbage_and_other_units_are_rejected() {
        let reason = |b: &str| parse_server_time(b, RECV).unwrap_err().reason;
        assert_eq!(reason("<html>502</html>"), ParseErrorReason::InvalidJson);
        assert_eq!(
            reason(r#"{"code":-1003,"msg":"banned"}"#),
            ParseErrorReason::InvalidJson
        );
        assert_eq!(
            reason(r#"{"serverTime":"1499827319559"}"#),
            ParseErrorReason::InvalidJson
        );
        // Seconds are not milliseconds.
        assert_eq!(
            reason(r#"{"serverTime":1499827319}"#),
            ParseErrorReason::BadTime
        );
    }
}
