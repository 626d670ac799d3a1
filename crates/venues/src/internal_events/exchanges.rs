//! Internal events of the exchange connectors and local books.

use super::InternalEvent;
use crate::parse::{ParseError, truncate};
use marketprism_model::{Exchange, GapCause};

/// Longest frame excerpt put in a log line.
const SAMPLE_BYTES: usize = 200;

/// A frame that did not parse: counted per venue and reason, logged with a truncated sample, skipped.
pub(crate) struct BadFrame<'a> {
    pub exchange: Exchange,
    pub error: &'a ParseError,
    pub frame: &'a str,
}

impl InternalEvent for BadFrame<'_> {
    fn emit(self) {
        tracing::warn!(
            exchange = %self.exchange,
            reason = self.error.reason.as_str(),
            detail = %self.error.detail,
            sample = truncate(self.frame, SAMPLE_BYTES),
            "bad exchange frame skipped"
        );
        metrics::counter!(
            "marketprism_exchange_bad_frames_total",
            "exchange" => self.exchange.as_str(),
            "reason" => self.error.reason.as_str()
        )
        .increment(1);
    }
}

/// A WebSocket connection was established and subscribed.
pub(crate) struct Connected<'a> {
    pub exchange: Exchange,
    pub url: &'a str,
    pub streams: usize,
}

impl InternalEvent for Connected<'_> {
    fn emit(self) {
        tracing::info!(exchange = %self.exchange, url = self.url, streams = self.streams, "exchange connection subscribed");
        metrics::counter!("marketprism_exchange_connects_total", "exchange" => self.exchange.as_str())
            .increment(1);
    }
}

/// A connection ended; `cause` is what the gap records.
pub(crate) struct Disconnected<'a> {
    pub exchange: Exchange,
    pub cause: GapCause,
    pub detail: &'a str,
    pub retry_in_ms: u64,
}

impl InternalEvent for Disconnected<'_> {
    fn emit(self) {
        tracing::warn!(
            exchange = %self.exchange,
            cause = self.cause.as_str(),
            detail = self.detail,
            retry_in_ms = self.retry_in_ms,
            "exchange connection lost"
        );
        metrics::counter!(
            "marketprism_exchange_disconnects_total",
            "exchange" => self.exchange.as_str(),
            "cause" => self.cause.as_str()
        )
        .increment(1);
    }
}

/// A local book was dropped and is being rebuilt.
pub(crate) struct BookResync<'a> {
    pub exchange: Exchange,
    pub symbol: &'a str,
    pub cause: GapCause,
    pub detail: &'a str,
}

impl InternalEvent for BookResync<'_> {
    fn emit(self) {
        tracing::warn!(exchange = %self.exchange, symbol = self.symbol, cause = self.cause.as_str(), detail = self.detail, "order book resync");
        metrics::counter!(
            "marketprism_orderbook_resyncs_total",
            "exchange" => self.exchange.as_str(),
            "symbol" => self.symbol.to_owned(),
            "cause" => self.cause.as_str()
        )
        .increment(1);
    }
}

/// Rows of an instrument list that could not be read or mapped were left out (the rest is used).
pub(crate) struct InstrumentRowsSkipped<'a> {
    pub exchange: Exchange,
    pub count: usize,
    pub first: &'a str,
}

impl InternalEvent for InstrumentRowsSkipped<'_> {
    fn emit(self) {
        tracing::warn!(exchange = %self.exchange, rows = self.count, first = self.first, "instrument list rows left out: not mappable");
        metrics::counter!(
            "marketprism_exchange_instrument_rows_skipped_total",
            "exchange" => self.exchange.as_str()
        )
        .increment(self.count as u64);
    }
}

/// A REST call was refused or failed; the poller backs off.
pub(crate) struct RestFailed<'a> {
    pub exchange: Exchange,
    pub endpoint: &'a str,
    pub status: Option<u16>,
    pub detail: &'a str,
    pub retry_in_ms: u64,
}

impl InternalEvent for RestFailed<'_> {
    fn emit(self) {
        tracing::warn!(
            exchange = %self.exchange,
            endpoint = self.endpoint,
            status = self.status,
            detail = truncate(self.detail, SAMPLE_BYTES),
            retry_in_ms = self.retry_in_ms,
            "exchange REST request failed"
        );
        let status = self
            .status
            .map_or_else(|| "io".to_owned(), |s| s.to_string());
        metrics::counter!(
            "marketprism_exchange_rest_failures_total",
            "exchange" => self.exchange.as_str(),
            "status" => status
        )
        .increment(1);
    }
}

/// Events dropped because the output channel was closed (shutdown) — counted, never silent.
pub(crate) struct EventsDropped {
    pub exchange: Exchange,
    pub count: u64,
}

impl InternalEvent for EventsDropped {
    fn emit(self) {
        tracing::debug!(exchange = %self.exchange, count = self.count, "events dropped: output closed");
        metrics::counter!("marketprism_exchange_events_dropped_total", "exchange" => self.exchange.as_str())
            .increment(self.count);
    }
}

/// A trade the venue sent twice (same id on one connection): dropped, counted.
pub(crate) struct DuplicateTradeDropped<'a> {
    pub exchange: Exchange,
    pub symbol: &'a str,
    pub trade_id: &'a str,
}

impl InternalEvent for DuplicateTradeDropped<'_> {
    fn emit(self) {
        tracing::debug!(exchange = %self.exchange, symbol = self.symbol, trade_id = self.trade_id, "duplicate trade dropped");
        metrics::counter!("marketprism_exchange_duplicate_trades_total", "exchange" => self.exchange.as_str())
            .increment(1);
    }
}

/// A connector task panicked (a bug): logged as an error with its message, counted, then restarted.
pub(crate) struct TaskPanicked<'a> {
    pub exchange: Exchange,
    pub task: &'a str,
    pub message: &'a str,
    pub restart_in_ms: u64,
}

impl InternalEvent for TaskPanicked<'_> {
    fn emit(self) {
        tracing::error!(
            exchange = %self.exchange,
            task = self.task,
            message = self.message,
            restart_in_ms = self.restart_in_ms,
            "connector task panicked; recorded as a gap and restarted"
        );
        metrics::counter!(
            "marketprism_task_panics_total",
            "exchange" => self.exchange.as_str()
        )
        .increment(1);
    }
}

/// A product line's instrument list was loaded or refreshed from the venue.
pub(crate) struct InstrumentsLoaded {
    pub exchange: Exchange,
    pub count: usize,
}

impl InternalEvent for InstrumentsLoaded {
    fn emit(self) {
        tracing::info!(exchange = %self.exchange, instruments = self.count, "instrument list loaded from the venue");
        metrics::gauge!("marketprism_exchange_instruments", "exchange" => self.exchange.as_str())
            .set(self.count as f64);
    }
}

/// A configured symbol the venue does not list: reported at start and never collected.
pub(crate) struct SymbolUnlisted<'a> {
    pub exchange: Exchange,
    pub symbol: &'a str,
    pub listed: usize,
}

impl InternalEvent for SymbolUnlisted<'_> {
    fn emit(self) {
        tracing::error!(
            exchange = %self.exchange,
            symbol = self.symbol,
            listed = self.listed,
            "configured symbol is not in the venue's instrument list: not collected"
        );
        metrics::counter!(
            "marketprism_exchange_unlisted_symbols_total",
            "exchange" => self.exchange.as_str(),
            "symbol" => self.symbol.to_owned()
        )
        .increment(1);
    }
}
