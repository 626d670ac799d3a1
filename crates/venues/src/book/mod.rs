//! Local L2 order books and the per-venue rules that keep them in sync with the exchange.
//!
//! | piece | module |
//! |---|---|
//! | the book (sorted levels, top-N, crossed check) | [`order_book`] |
//! | per-venue sequence rules (pure predicates) | [`rules`] |
//! | the sync state machine (buffer, snapshot, replay, resync) | [`sync`] |
//! | OKX crc32 | [`checksum`] |
//! | publish cadence | [`cadence`] |

pub mod cadence;
pub mod checksum;
pub mod order_book;
pub mod rules;
pub mod sync;

pub use cadence::SnapshotCadence;
pub use order_book::OrderBook;
pub use rules::SyncRule;
pub use sync::{BookSync, Desync, ReplayedTop, SyncOutcome};

use marketprism_model::Decimal;

/// One incremental update, in venue-neutral terms.
#[derive(Debug, Clone, PartialEq)]
pub struct BookUpdate {
    /// First update id in the event (Binance `U`); equals `last_id` for venues with one id per message.
    pub first_id: i64,
    /// Final update id (Binance `u`, OKX `seqId`, Deribit `change_id`).
    pub last_id: i64,
    /// The previous event's final id as the venue states it (Binance USD-M `pu`, OKX `prevSeqId`,
    /// Deribit `prev_change_id`); `None` when the venue does not send it (Binance spot, pre-2022 OKX).
    pub prev_id: Option<i64>,
    /// Exchange event time, UTC ms.
    pub ts_ms: i64,
    pub bids: Vec<(Decimal, Decimal)>,
    pub asks: Vec<(Decimal, Decimal)>,
    /// OKX crc32 over the top 25 levels after applying; `None` when absent or `0` (deprecated 2026-06-23).
    pub checksum: Option<i32>,
}

/// A full book: REST snapshot, or the first push of a stream (OKX legacy, Deribit).
#[derive(Debug, Clone, PartialEq)]
pub struct BookSnapshot {
    /// Binance `lastUpdateId`, OKX `seqId` (0 when the venue did not send one), Deribit `change_id`.
    pub last_id: i64,
    /// Exchange time, when the snapshot carries one.
    pub ts_ms: Option<i64>,
    pub bids: Vec<(Decimal, Decimal)>,
    pub asks: Vec<(Decimal, Decimal)>,
    pub checksum: Option<i32>,
}
