//! The normalized market-data model: what every venue parser produces and every output consumes.
//!
//! One `Event` = common fields (who, what instrument, when) + one `Payload` of the 8 data types, a `Gap`,
//! or one of the 4 order-flow signal rows the collector computes ([`signal`]).
//! Prices and sizes are `rust_decimal::Decimal`, parsed from the exchange's strings, never through f64.
//! Times are Int64 UTC milliseconds: `ts_ms` is the exchange's event time (authoritative), `recv_ts_ms` ours.
//!
//! | piece | module |
//! |---|---|
//! | events and identities | (root) |
//! | the venues' instrument tables | [`instruments`] |
//! | exact decimals as `Decimal(38,18)` | [`decimal`] |
//! | order-flow signal rows | [`signal`] |
//! | deterministic synthetic events (tests, benchmarks, `collector.synthetic`) | [`synthetic`] |
//! | the JetStream payload: one event, or a batch of one subject's events | [`wire`] |

#![forbid(unsafe_code)]

pub mod decimal;
mod event;
mod identity;
pub mod instruments;
pub mod signal;
pub mod synthetic;
pub mod wire;

pub use event::{
    Event, FundingRate, Gap, GapCause, Level, Liquidation, LongShortRatio, OpenInterest,
    OrderBookSnapshot, Payload, Quantity, QuantityUnit, Side, Trade, VolatilityIndex,
    subject_of_msg_id,
};
pub use identity::{DataType, Exchange, MarketType, Symbol, SymbolError};
pub use signal::{CvdSignal, FusionSignal, OfiSignal, SignalEvent};

pub use rust_decimal::Decimal;

/// Milliseconds since the Unix epoch, UTC, by the local wall clock (for `recv_ts_ms`).
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
