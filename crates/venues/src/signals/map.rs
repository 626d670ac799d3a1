//! Pure mapping between the collector's normalized model and the signals engine
//! (`marketprism_signals`): book levels and trades in, engine rows out as normalized [`Event`]s.
//!
//! Every row is keyed by the input that produced it ([`Source`]), so the same input gives the same
//! message id on every collector: the book's update id (`signal_ofi`), the trade id (`signal_cvd`),
//! `book:{id}` / `trade:{id}` / `gap:{data_type}:{start_ms}:{cause}` (`signal_fusion`,
//! `signal_events`, with the event's position among that input's events).

use marketprism_model::{
    CvdSignal, DataType, Decimal, Event, Exchange, FusionSignal, GapCause, MarketType, OfiSignal,
    Payload, Side, SignalEvent, Symbol,
};
use marketprism_signals::{self as sig, Output, ResetReason};
use rust_decimal::prelude::ToPrimitive;

/// The input an engine output came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source<'a> {
    /// A change of the book's top levels after the venue's update `update_id`.
    Book { update_id: i64 },
    /// A trade.
    Trade { trade_id: &'a str },
    /// A gap of one of the symbol's streams (it reset the state).
    Gap {
        data_type: DataType,
        start_ms: i64,
        cause: GapCause,
    },
}

impl Source<'_> {
    /// `book:{id}`, `trade:{id}`, `gap:{data_type}:{start_ms}:{cause}`.
    pub fn key(&self) -> String {
        match self {
            Source::Book { update_id } => format!("book:{update_id}"),
            Source::Trade { trade_id } => format!("trade:{trade_id}"),
            Source::Gap {
                data_type,
                start_ms,
                cause,
            } => format!("gap:{data_type}:{start_ms}:{}", cause.as_str()),
        }
    }
}

/// Who the rows are about and when they were received (the input's `recv_ts_ms`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowContext<'a> {
    pub exchange: Exchange,
    pub market_type: MarketType,
    pub symbol: &'a Symbol,
    pub recv_ts_ms: i64,
}

/// Up to `n` levels, best first, as engine levels (price, base quantity; `f64` nearest to the decimal).
pub fn levels<'a>(
    side: impl IntoIterator<Item = &'a (Decimal, Decimal)>,
    n: usize,
) -> Vec<sig::Level> {
    side.into_iter()
        .take(n)
        .map(|(p, q)| sig::Level::new(f64_of(*p), f64_of(*q)))
        .collect()
}

/// The nearest `f64` (every `Decimal(38,18)` value is in range).
pub(crate) fn f64_of(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

/// The venue's taker side (every venue gives it, so the tick rule is never needed).
pub fn side(s: Side) -> sig::Side {
    match s {
        Side::Buy => sig::Side::Buy,
        Side::Sell => sig::Side::Sell,
    }
}

/// Why a gap of `data_type` resets the state: a book rebuilt after a failed check is a resync, a
/// lost connection a reconnect, anything else a hole in the stream.
pub(crate) fn reset_reason(data_type: DataType, cause: GapCause) -> ResetReason {
    match cause {
        GapCause::Disconnect | GapCause::ServerShutdown | GapCause::Handover | GapCause::Fenced => {
            ResetReason::Reconnect
        }
        GapCause::SequenceGap | GapCause::Integrity | GapCause::Stale
            if data_type == DataType::Orderbooks =>
        {
            ResetReason::BookResync
        }
        _ => ResetReason::StreamGap,
    }
}

/// The engine's output for one input as events, in the order ofi, cvd, fusion, events.
/// An OFI row needs a [`Source::Book`] and a CVD row a [`Source::Trade`] (the engine emits them
/// only for those inputs).
pub(crate) fn output_events(ctx: RowContext<'_>, source: &Source<'_>, out: &Output) -> Vec<Event> {
    let mut events = Vec::with_capacity(3 + out.events.len());
    let row = |ts_ms: i64, payload: Payload| Event {
        exchange: ctx.exchange,
        market_type: ctx.market_type,
        symbol: ctx.symbol.clone(),
        ts_ms,
        recv_ts_ms: ctx.recv_ts_ms,
        payload,
    };
    if let (Some(o), Source::Book { update_id }) = (&out.ofi, source) {
        events.push(row(
            o.ts_ms,
            Payload::SignalOfi(OfiSignal {
                update_id: *update_id,
                ofi: o.ofi,
                ofi_z: o.ofi_z,
                scale: o.scale,
                std_zero: o.std_zero,
                regime: o.regime.as_str().to_owned(),
            }),
        ));
    }
    if let (Some(c), Source::Trade { trade_id }) = (&out.cvd, source) {
        events.push(row(
            c.ts_ms,
            Payload::SignalCvd(CvdSignal {
                trade_id: (*trade_id).to_owned(),
                cvd: c.cvd,
                delta: c.delta,
                z_raw: c.z_raw,
                z_cvd: c.z_cvd,
                scale: c.scale,
                sigma_floor: c.sigma_floor,
                floor_used: c.floor_used,
                std_zero: c.std_zero,
                regime: c.regime.as_str().to_owned(),
            }),
        ));
    }
    let key = source.key();
    if let Some(f) = &out.fusion {
        events.push(row(
            f.ts_ms,
            Payload::SignalFusion(FusionSignal {
                source: key.clone(),
                score: f.score,
                score_z: f.score_z,
                level: f.level.map(|l| l.as_str().to_owned()),
                regime: f.regime.as_str().to_owned(),
            }),
        ));
    }
    for (seq, e) in out.events.iter().enumerate() {
        events.push(row(
            e.ts_ms,
            Payload::SignalEvent(SignalEvent {
                source: key.clone(),
                seq: seq as i64,
                event_type: e.kind.as_str().to_owned(),
                meta_json: e.meta_json(),
            }),
        ));
    }
    events
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
