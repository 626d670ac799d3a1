//! OKX server time, for the clock-offset probe ([`crate::clock`]).
//!
//! `GET /api/v5/public/time` (public, 10 requests / 2 s per IP) answers
//! `{"code":"0","msg":"","data":[{"ts":"1597026383085"}]}`: `ts` is UTC milliseconds as a string
//! (OKX API v5 docs, Public data, "Get system time").

use super::parse::rest_data;
use crate::parse::{ParseError, ParseErrorReason, ParseResult, time_str};
use serde::Deserialize;

/// The server-time path (spot and derivatives alike).
pub(crate) const TIME_PATH: &str = "/api/v5/public/time";

#[derive(Deserialize)]
struct RawTime<'a> {
    #[serde(borrow)]
    ts: &'a str,
}

/// The `data[0].ts` of the reply → server time, UTC ms (checked as plausible against `recv_ts_ms`);
/// a reply with `code != "0"` is a `VenueError`.
pub(crate) fn parse_server_time(body: &str, recv_ts_ms: i64) -> ParseResult<i64> {
    let rows: Vec<RawTime<'_>> = serde_json::from_str(rest_data(body)?)?;
    let row = rows
        .first()
        .ok_or_else(|| ParseError::new(ParseErrorReason::MissingField, "data[0].ts: empty data"))?;
    time_str(row.ts, recv_ts_ms, "ts")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECV: i64 = 1_700_000_000_000;

    #[test]
    fn documented_reply_gives_milliseconds() {
        assert_eq!(
            parse_server_time(
                r#"{"code":"0","msg":"","data":[{"ts":"1597026383085"}]}"#,
                RECV
            ),
            Ok(1_597_026_383_085)
        );
    }

    #[test]
    fn errors_garbage_and_empty_data_are_rejected() {
        let reason = |b: &str| parse_server_time(b, RECV).unwrap_err().reason;
        assert_eq!(
            reason(r#"{"code":"50011","msg":"Too Many Requests","data":[]}"#),
            ParseErrorReason::VenueError
        );
        assert_eq!(
            reason(r#"{"code":"0","msg":"","data":[]}"#),
            ParseErrorReason::MissingField
        );
        assert_eq!(reason("not json"), ParseErrorReason::InvalidJson);
        assert_eq!(
            reason(r#"{"code":"0","msg":"","data":[{"ts":"abc"}]}"#),
            ParseErrorReason::BadNumber
        );
        // Microseconds are not milliseconds.
        assert_eq!(
            reason(r#"{"code":"0","msg":"","data":[{"ts":"1597026383085000"}]}"#),
            ParseErrorReason::BadTime
        );
    }
}
