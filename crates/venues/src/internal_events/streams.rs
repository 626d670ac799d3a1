//! Internal events of single streams (venue, data type, symbol): faults that stay in their stream.

use super::InternalEvent;
use crate::parse::truncate;
use marketprism_model::{DataType, Exchange};

const SAMPLE_BYTES: usize = 200;

/// The venue refused one stream (unlisted instrument): it ends with a `refused` gap; the others go on.
pub(crate) struct StreamRefused<'a> {
    pub exchange: Exchange,
    pub data_type: DataType,
    pub symbol: &'a str,
    pub detail: &'a str,
}

impl InternalEvent for StreamRefused<'_> {
    fn emit(self) {
        tracing::error!(exchange = %self.exchange, data_type = %self.data_type, symbol = self.symbol, detail = self.detail, "stream refused by the venue; not collected");
        metrics::counter!(
            "marketprism_stream_refused_total",
            "exchange" => self.exchange.as_str(),
            "data_type" => self.data_type.as_str(),
            "symbol" => self.symbol.to_owned()
        )
        .increment(1);
    }
}

/// One stream stayed silent past its cadence while its connection kept delivering.
pub(crate) struct StreamSilent<'a> {
    pub exchange: Exchange,
    pub data_type: DataType,
    pub symbol: &'a str,
    pub silent_ms: u64,
}

impl InternalEvent for StreamSilent<'_> {
    fn emit(self) {
        tracing::warn!(exchange = %self.exchange, data_type = %self.data_type, symbol = self.symbol, silent_ms = self.silent_ms, "stream silent past its cadence");
        metrics::counter!(
            "marketprism_stream_silent_total",
            "exchange" => self.exchange.as_str(),
            "data_type" => self.data_type.as_str(),
            "symbol" => self.symbol.to_owned()
        )
        .increment(1);
    }
}

/// A silent book checked against the venue's REST snapshot: same update id, so it is merely quiet.
pub(crate) struct BookQuietVerified<'a> {
    pub exchange: Exchange,
    pub symbol: &'a str,
    pub last_id: i64,
}

impl InternalEvent for BookQuietVerified<'_> {
    fn emit(self) {
        tracing::debug!(exchange = %self.exchange, symbol = self.symbol, last_id = self.last_id, "quiet book verified against a snapshot");
        metrics::counter!(
            "marketprism_orderbook_quiet_verified_total",
            "exchange" => self.exchange.as_str(),
            "symbol" => self.symbol.to_owned()
        )
        .increment(1);
    }
}

/// A frame that names no stream of its connection (unparsable, or for an instrument not subscribed):
/// counted and skipped without touching any stream.
pub(crate) struct FrameUnattributed<'a> {
    pub exchange: Exchange,
    /// `unparsable` or `not_subscribed`.
    pub reason: &'static str,
    pub frame: &'a str,
}

impl InternalEvent for FrameUnattributed<'_> {
    fn emit(self) {
        tracing::warn!(exchange = %self.exchange, reason = self.reason, sample = truncate(self.frame, SAMPLE_BYTES), "frame attributable to no subscribed stream skipped");
        metrics::counter!(
            "marketprism_exchange_unattributed_frames_total",
            "exchange" => self.exchange.as_str(),
            "reason" => self.reason
        )
        .increment(1);
    }
}

/// A book did not sync within `orderbook.sync_timeout_s`.
pub(crate) struct BookSyncOverdue<'a> {
    pub exchange: Exchange,
    pub symbol: &'a str,
    pub waited_ms: u64,
    pub reason: &'a str,
}

impl InternalEvent for BookSyncOverdue<'_> {
    fn emit(self) {
        tracing::error!(exchange = %self.exchange, symbol = self.symbol, waited_ms = self.waited_ms, reason = self.reason, "order book not synced in time");
        metrics::counter!(
            "marketprism_orderbook_sync_overdue_total",
            "exchange" => self.exchange.as_str(),
            "symbol" => self.symbol.to_owned()
        )
        .increment(1);
    }
}

/// A book's resyncs hit the ceiling per minute: the next one waits; reported once per storm.
pub(crate) struct ResyncStorm<'a> {
    pub exchange: Exchange,
    pub symbol: &'a str,
    pub resyncs: usize,
    pub next_in_ms: u64,
}

impl InternalEvent for ResyncStorm<'_> {
    fn emit(self) {
        tracing::error!(exchange = %self.exchange, symbol = self.symbol, resyncs = self.resyncs, next_in_ms = self.next_in_ms, "order book resync storm: resyncs deferred");
        metrics::counter!(
            "marketprism_orderbook_resync_storms_total",
            "exchange" => self.exchange.as_str(),
            "symbol" => self.symbol.to_owned()
        )
        .increment(1);
    }
}

/// A book whose continuity no sequence id or checksum can prove: withheld, not published.
pub(crate) struct BookUnprovable<'a> {
    pub exchange: Exchange,
    pub symbol: &'a str,
}

impl InternalEvent for BookUnprovable<'_> {
    fn emit(self) {
        tracing::error!(exchange = %self.exchange, symbol = self.symbol, "order book continuity unprovable (no prevSeqId, no checksum): withheld");
        metrics::counter!(
            "marketprism_orderbook_unprovable_total",
            "exchange" => self.exchange.as_str(),
            "symbol" => self.symbol.to_owned()
        )
        .increment(1);
    }
}
