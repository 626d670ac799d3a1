//! Gate server time, for the clock-offset probe ([`crate::clock`]).
//!
//! `GET /api/v4/spot/time` (public) answers `{"server_time":1597026383085}`: UTC milliseconds
//! (Gate API v4 docs, Spot, "Get server current time"). Both product lines use it.

use crate::parse::{ParseError, ParseErrorReason, ParseResult, time_ms};
use serde::Deserialize;

/// The server-time path (spot and derivatives alike).
pub(crate) const TIME_PATH: &str = "/api/v4/spot/time";

#[derive(Deserialize)]
struct RawTime<'a> {
    #[serde(default)]
    server_time: Option<i64>,
    #[serde(borrow, default)]
    label: Option<&'a str>,
}

/// `server_time` → server time, UTC ms (checked as plausible against `recv_ts_ms`); an error body
/// (`{"label":..,"message":..}`) is a `VenueError`.
pub(crate) fn parse_server_time(body: &str, recv_ts_ms: i64) -> ParseResult<i64> {
    let raw: RawTime<'_> = serde_json::from_str(body)?;
    if let Some(label) = raw.label {
        return Err(ParseError::new(ParseErrorReason::VenueError, label));
    }
    let t = raw
        .server_time
        .ok_or_else(|| ParseError::missing("server_time"))?;
    time_ms(t, recv_ts_ms, "server_time")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_reply_and_failures() {
        let recv = 1_700_000_000_000;
        assert_eq!(
            parse_server_time(r#"{"server_time":1597026383085}"#, recv),
            Ok(1_597_026_383_085)
        );
        let reason = |b: &str| parse_server_time(b, recv).unwrap_err().reason;
        assert_eq!(
            reason(r#"{"label":"TOO_MANY_REQUESTS","message":"x"}"#),
            ParseErrorReason::VenueError
        );
        assert_eq!(reason("{}"), ParseErrorReason::MissingField);
        assert_eq!(
            reason(r#"{"server_time":1597026383}"#),
            ParseErrorReason::BadTime,
            "seconds are not milliseconds"
        );
    }
}
