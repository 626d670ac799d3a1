//! The clock offset against each venue's server time: one small task per configured exchange entry
//! asks the venue's server-time endpoint every [`PROBE_INTERVAL`] (first at start) through the product
//! line's REST client and rate limiter, and reports
//! `marketprism_exchange_clock_offset_seconds{exchange}` (server time − the midpoint of send and
//! receive, seconds; positive: the venue's clock is ahead of ours) and
//! `marketprism_exchange_clock_rtt_seconds{exchange}` (the probe's round trip, seconds). Every failure
//! (network, HTTP status, unreadable reply) is counted in
//! `marketprism_exchange_clock_probe_failures_total{exchange,reason}` and logged; it never stops the
//! task and never touches collection.
//!
//! Endpoints, from each venue's docs (details in the venue's `time` module): Binance spot
//! `GET /api/v3/time`, USD-M `GET /fapi/v1/time` (`{"serverTime":ms}`), OKX `GET /api/v5/public/time`
//! (`data[0].ts`, ms as a string), Deribit `public/get_time` over REST `GET /api/v2/public/get_time`
//! (`result`, ms), Gate `GET /api/v4/spot/time` (`server_time`, ms).
//! (`result`, ms), MEXC spot `GET /api/v3/time` (`serverTime`), contracts `GET /api/v1/contract/ping`
//! (`data`, ms).

use crate::internal_events::InternalEvent;
use crate::internal_events::observe::{ClockProbeFailed, ClockSampled};
use crate::parse::ParseResult;
use crate::rate_limit::RateLimiter;
use crate::{binance, deribit, gate, mexc, okx};
use marketprism_model::Exchange;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// Time between two probes of one venue.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// Limiter weight of one probe: 1 on Binance (documented weight of both time endpoints); one request
/// of the shared budget elsewhere.
const PROBE_WEIGHT: u32 = 1;

/// The server-time URL of `exchange` under its REST base URL `rest` (no trailing slash).
pub fn time_url(exchange: Exchange, rest: &str) -> String {
    let path = match exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => binance::time::time_path(exchange),
        Exchange::OkxSpot | Exchange::OkxDerivatives => okx::time::TIME_PATH,
        Exchange::DeribitDerivatives => deribit::time::TIME_PATH,
        Exchange::GateSpot | Exchange::GateDerivatives => gate::time::TIME_PATH,
        Exchange::MexcSpot | Exchange::MexcDerivatives => mexc::time::time_path(exchange),
    };
    format!("{rest}{path}")
}

/// A server-time reply of `exchange` → server time, UTC ms, by the venue's own parser.
pub(crate) fn parse_server_time(
    exchange: Exchange,
    body: &str,
    recv_ts_ms: i64,
) -> ParseResult<i64> {
    match exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => {
            binance::time::parse_server_time(body, recv_ts_ms)
        }
        Exchange::OkxSpot | Exchange::OkxDerivatives => {
            okx::time::parse_server_time(body, recv_ts_ms)
        }
        Exchange::DeribitDerivatives => deribit::time::parse_server_time(body, recv_ts_ms),
        Exchange::GateSpot | Exchange::GateDerivatives => {
            gate::time::parse_server_time(body, recv_ts_ms)
        }
        Exchange::MexcSpot | Exchange::MexcDerivatives => {
            mexc::time::parse_server_time(exchange, body, recv_ts_ms)
        }
    }
}

/// One probe's result: offset and round trip, seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockSample {
    /// Server time − (send + receive) / 2, seconds.
    pub offset_s: f64,
    /// Receive − send, seconds.
    pub rtt_s: f64,
}

/// The offset of a server time `server_ms` (UTC ms) read between our `send_s` and `recv_s` (Unix
/// seconds): the server is assumed to stamp the middle of the round trip (NTP's assumption), so the
/// error is at most half the round trip.
pub fn offset(server_ms: i64, send_s: f64, recv_s: f64) -> ClockSample {
    ClockSample {
        offset_s: server_ms as f64 / 1_000.0 - (send_s + recv_s) / 2.0,
        rtt_s: (recv_s - send_s).max(0.0),
    }
}

/// Why a probe failed: the `reason` label and a detail for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeError {
    /// `io` (no answer), `status` (non-2xx), `parse` (unreadable reply).
    pub reason: &'static str,
    pub detail: String,
}

/// Unix time now, seconds (sub-millisecond resolution).
fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Ask `url` once. The limiter is passed before the send time is taken, so a wait for budget is not
/// part of the round trip; a 429/418 reply is honoured on the limiter like any other REST call.
pub async fn probe(
    exchange: Exchange,
    url: &str,
    http: &reqwest::Client,
    limiter: &RateLimiter,
) -> Result<ClockSample, ProbeError> {
    limiter.acquire(PROBE_WEIGHT).await;
    let send_s = unix_now_s();
    let io = |e: reqwest::Error| ProbeError {
        reason: "io",
        detail: e.to_string(),
    };
    let resp = http.get(url).send().await.map_err(io)?;
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        limiter.honour_rejection(status, resp.headers());
        let body = resp.text().await.unwrap_or_default();
        return Err(ProbeError {
            reason: "status",
            detail: format!("HTTP {status}: {body}"),
        });
    }
    let body = resp.text().await.map_err(io)?;
    let recv_s = unix_now_s();
    let server_ms =
        parse_server_time(exchange, &body, (recv_s * 1_000.0) as i64).map_err(|e| ProbeError {
            reason: "parse",
            detail: format!("{e}; body: {body}"),
        })?;
    Ok(offset(server_ms, send_s, recv_s))
}

/// Probe `exchange` at `rest` now and every `every` until `shutdown`, reporting each result.
pub async fn run_clock(
    exchange: Exchange,
    rest: String,
    every: Duration,
    http: reqwest::Client,
    limiter: RateLimiter,
    shutdown: CancellationToken,
) {
    let url = time_url(exchange, &rest);
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = probe(exchange, &url, &http, &limiter) => r,
        };
        match result {
            Ok(s) => ClockSampled {
                exchange,
                offset_s: s.offset_s,
                rtt_s: s.rtt_s,
            }
            .emit(),
            Err(e) => ClockProbeFailed {
                exchange,
                reason: e.reason,
                detail: &e.detail,
            }
            .emit(),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_server_time_against_the_midpoint() {
        // Sent at 100.000 s, answered at 100.200 s, stamped 105.100 s: 5 s ahead, 200 ms round trip.
        let s = offset(105_100, 100.0, 100.2);
        assert!((s.offset_s - 5.0).abs() < 1e-9, "{s:?}");
        assert!((s.rtt_s - 0.2).abs() < 1e-9, "{s:?}");
        // A venue behind us gives a negative offset.
        assert!(offset(99_000, 100.0, 100.0).offset_s < -0.99);
    }

    #[test]
    fn each_venue_has_its_documented_time_endpoint() {
        let url = |e| time_url(e, "https://x");
        assert_eq!(url(Exchange::BinanceSpot), "https://x/api/v3/time");
        assert_eq!(url(Exchange::BinanceDerivatives), "https://x/fapi/v1/time");
        assert_eq!(url(Exchange::OkxSpot), "https://x/api/v5/public/time");
        assert_eq!(
            url(Exchange::OkxDerivatives),
            "https://x/api/v5/public/time"
        );
        assert_eq!(
            url(Exchange::DeribitDerivatives),
            "https://x/api/v2/public/get_time"
        );
    }

    #[test]
    fn replies_are_read_by_their_venue() {
        let recv = 1_700_000_000_000;
        let t = 1_699_999_999_000;
        let ok = |e, body: String| parse_server_time(e, &body, recv);
        assert_eq!(
            ok(
                Exchange::BinanceDerivatives,
                format!(r#"{{"serverTime":{t}}}"#)
            ),
            Ok(t)
        );
        assert_eq!(
            ok(
                Exchange::OkxSpot,
                format!(r#"{{"code":"0","msg":"","data":[{{"ts":"{t}"}}]}}"#)
            ),
            Ok(t)
        );
        assert_eq!(
            ok(
                Exchange::DeribitDerivatives,
                format!(r#"{{"jsonrpc":"2.0","result":{t}}}"#)
            ),
            Ok(t)
        );
        // Another venue's shape is not accepted.
        assert!(ok(Exchange::OkxSpot, format!(r#"{{"serverTime":{t}}}"#)).is_err());
    }
}
