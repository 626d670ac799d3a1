//! MEXC server time, for the clock-offset probe ([`crate::clock`]).
//!
//! Spot `GET /api/v3/time` answers `{"serverTime":1645539742000}` (MEXC Spot V3 docs, "Check Server
//! Time"); contracts `GET /api/v1/contract/ping` answer `{"success":true,"code":0,"data":1587442022003}`
//! (MEXC Futures docs, "Get the server time"). Both are UTC milliseconds.

use crate::parse::{ParseResult, time_ms};
use marketprism_model::Exchange;
use serde::Deserialize;

/// The server-time path of a MEXC product line.
pub(crate) fn time_path(exchange: Exchange) -> &'static str {
    match exchange {
        Exchange::MexcSpot => "/api/v3/time",
        _ => "/api/v1/contract/ping",
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpotTime {
    server_time: i64,
}

/// The reply → server time, UTC ms (checked as plausible against `recv_ts_ms`); a contract reply
/// with `success: false` is a `VenueError`.
pub(crate) fn parse_server_time(
    exchange: Exchange,
    body: &str,
    recv_ts_ms: i64,
) -> ParseResult<i64> {
    match exchange {
        Exchange::MexcSpot => {
            let raw: RawSpotTime = serde_json::from_str(body)?;
            time_ms(raw.server_time, recv_ts_ms, "serverTime")
        }
        _ => {
            let data = super::futures::rest_data(body)?;
            let ms: i64 = serde_json::from_str(data)?;
            time_ms(ms, recv_ts_ms, "data")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParseErrorReason;

    const RECV: i64 = 1_700_000_000_000;

    #[test]
    fn documented_replies_give_milliseconds() {
        assert_eq!(
            parse_server_time(Exchange::MexcSpot, r#"{"serverTime":1645539742000}"#, RECV),
            Ok(1_645_539_742_000)
        );
        assert_eq!(
            parse_server_time(
                Exchange::MexcDerivatives,
                r#"{"success":true,"code":0,"data":1587442022003}"#,
                RECV
            ),
            Ok(1_587_442_022_003)
        );
    }

    #[test]
    fn errors_and_other_units_are_rejected() {
        let reason = |e, b: &str| parse_server_time(e, b, RECV).unwrap_err().reason;
        assert_eq!(
            reason(
                Exchange::MexcDerivatives,
                r#"{"success":false,"code":510,"message":"Excessive frequency of requests"}"#
            ),
            ParseErrorReason::VenueError
        );
        assert_eq!(
            reason(Exchange::MexcSpot, r#"{"serverTime":1645539742}"#),
            ParseErrorReason::BadTime
        );
        assert_eq!(
            reason(Exchange::MexcSpot, "<html>"),
            ParseErrorReason::InvalidJson
        );
    }
}
