//! Signal events (the `events` dataset: `ts_ms, event_type, meta_json`).
//!
//! | kind | when (all edge-triggered: once on entering the condition, re-armed when it clears) |
//! |---|---|
//! | `reset` | state reset: a gap / resync reported by the caller, or a silence longer than `max_silence_ms` |
//! | `warmup_done` | the first z of a stream (ofi, cvd, fusion) after a reset |
//! | `signal_level` | the fusion level (from `score_z`) changed, e.g. neutral → buy → strong_buy |
//! | `extreme_z` | a published z (ofi z, cvd z, score_z) reached `|z| ≥ extreme_z` (3.0) |
//! | `divergence` | OFI or CVD against price, defined below |
//! | `regime_change` | active ↔ quiet |
//!
//! **Divergence** (*definition, the reference only names it*): let `Δp` be the move of the last
//! trade price over exactly the lookback (`divergence_lookback_ms`, 60 s), in basis points:
//! `Δp = (p_last − p_anchor) / p_anchor · 1e4`, `p_anchor` the price of the latest trade at or
//! before `now − lookback` (no anchor yet → no divergence). A stream diverges **bearishly** when
//! `Δp ≥ +divergence_min_move_bps` (5) while its published z ≤ `−divergence_z` (1.5) — price rises
//! on net selling flow — and **bullishly** when `Δp ≤ −5 bps` while `z ≥ +1.5`. Checked for OFI
//! on each OFI z and for CVD on each CVD z.

use crate::fusion::SignalLevel;
use crate::regime::Regime;
use std::collections::VecDeque;

/// Why the state was reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetReason {
    /// The caller saw a hole in a stream (sequence gap, missed messages).
    StreamGap,
    /// The order book was resynchronized from a snapshot.
    BookResync,
    /// The connection was re-established.
    Reconnect,
    /// Resumed after a restart (checkpoint).
    Restart,
    /// No input for longer than `max_silence_ms`; carries the silence in ms.
    Silence(i64),
}

impl ResetReason {
    /// `stream_gap` / `book_resync` / `reconnect` / `restart` / `silence`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResetReason::StreamGap => "stream_gap",
            ResetReason::BookResync => "book_resync",
            ResetReason::Reconnect => "reconnect",
            ResetReason::Restart => "restart",
            ResetReason::Silence(_) => "silence",
        }
    }
}

/// A z-scored stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// OFI z.
    Ofi,
    /// CVD z.
    Cvd,
    /// Fusion score_z.
    Fusion,
}

impl Stream {
    /// `ofi` / `cvd` / `fusion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Ofi => "ofi",
            Stream::Cvd => "cvd",
            Stream::Fusion => "fusion",
        }
    }
}

/// Direction of a divergence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Divergence {
    /// Price down, flow buying.
    Bullish,
    /// Price up, flow selling.
    Bearish,
}

/// Event type (the dataset's `event_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// See the module table.
    Reset,
    /// See the module table.
    WarmupDone,
    /// See the module table.
    SignalLevel,
    /// See the module table.
    ExtremeZ,
    /// See the module table.
    Divergence,
    /// See the module table.
    RegimeChange,
}

impl EventKind {
    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Reset => "reset",
            EventKind::WarmupDone => "warmup_done",
            EventKind::SignalLevel => "signal_level",
            EventKind::ExtremeZ => "extreme_z",
            EventKind::Divergence => "divergence",
            EventKind::RegimeChange => "regime_change",
        }
    }
}

/// What happened, typed (rendered by [`SignalEvent::meta_json`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EventDetail {
    /// State reset.
    Reset { reason: ResetReason },
    /// First z of a stream after a reset.
    WarmupDone { stream: Stream },
    /// Fusion level change.
    SignalLevel {
        from: SignalLevel,
        to: SignalLevel,
        score_z: f64,
    },
    /// |z| reached the extreme threshold.
    ExtremeZ { stream: Stream, z: f64 },
    /// A stream against the price move.
    Divergence {
        stream: Stream,
        direction: Divergence,
        z: f64,
        price_move_bps: f64,
    },
    /// Regime switch with the trade rate that caused it.
    RegimeChange {
        from: Regime,
        to: Regime,
        rate_tps: f64,
    },
}

/// One row of the events dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalEvent {
    /// Event time, ms.
    pub ts_ms: i64,
    /// Type.
    pub kind: EventKind,
    /// Details.
    pub detail: EventDetail,
}

impl SignalEvent {
    /// An event; the kind follows from the detail.
    pub fn new(ts_ms: i64, detail: EventDetail) -> Self {
        let kind = match detail {
            EventDetail::Reset { .. } => EventKind::Reset,
            EventDetail::WarmupDone { .. } => EventKind::WarmupDone,
            EventDetail::SignalLevel { .. } => EventKind::SignalLevel,
            EventDetail::ExtremeZ { .. } => EventKind::ExtremeZ,
            EventDetail::Divergence { .. } => EventKind::Divergence,
            EventDetail::RegimeChange { .. } => EventKind::RegimeChange,
        };
        Self {
            ts_ms,
            kind,
            detail,
        }
    }

    /// The detail as a JSON object with a fixed key order (the dataset's `meta_json`);
    /// numbers in Rust's shortest round-trip form, so identical events give identical text.
    pub fn meta_json(&self) -> String {
        match self.detail {
            EventDetail::Reset {
                reason: ResetReason::Silence(ms),
            } => {
                format!(r#"{{"reason":"silence","silence_ms":{ms}}}"#)
            }
            EventDetail::Reset { reason } => format!(r#"{{"reason":"{}"}}"#, reason.as_str()),
            EventDetail::WarmupDone { stream } => format!(r#"{{"stream":"{}"}}"#, stream.as_str()),
            EventDetail::SignalLevel { from, to, score_z } => {
                format!(
                    r#"{{"from":"{}","to":"{}","score_z":{score_z}}}"#,
                    from.as_str(),
                    to.as_str()
                )
            }
            EventDetail::ExtremeZ { stream, z } => {
                format!(r#"{{"stream":"{}","z":{z}}}"#, stream.as_str())
            }
            EventDetail::Divergence {
                stream,
                direction,
                z,
                price_move_bps,
            } => format!(
                r#"{{"stream":"{}","direction":"{}","z":{z},"price_move_bps":{price_move_bps}}}"#,
                stream.as_str(),
                match direction {
                    Divergence::Bullish => "bullish",
                    Divergence::Bearish => "bearish",
                }
            ),
            EventDetail::RegimeChange { from, to, rate_tps } => {
                format!(
                    r#"{{"from":"{}","to":"{}","rate_tps":{rate_tps}}}"#,
                    from.as_str(),
                    to.as_str()
                )
            }
        }
    }
}

/// Edge trigger for `|z| ≥ limit`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExtremeTrigger {
    inside: bool,
}

impl ExtremeTrigger {
    /// True when `z` enters the extreme zone (`|z| ≥ limit`) from outside.
    pub fn check(&mut self, z: f64, limit: f64) -> bool {
        let now = z.abs() >= limit;
        let fire = now && !self.inside;
        self.inside = now;
        fire
    }
}

/// Price history over the lookback and the per-stream divergence state.
#[derive(Debug, Clone)]
pub(crate) struct DivergenceDetector {
    lookback_ms: i64,
    min_move_bps: f64,
    z_threshold: f64,
    prices: VecDeque<(i64, f64)>,
    state: [Option<Divergence>; 2],
}

impl DivergenceDetector {
    /// Lookback (ms), minimum move (bps) and z threshold.
    pub fn new(lookback_ms: i64, min_move_bps: f64, z_threshold: f64) -> Self {
        Self {
            lookback_ms,
            min_move_bps,
            z_threshold,
            prices: VecDeque::new(),
            state: [None; 2],
        }
    }

    /// Forgets prices and states.
    pub fn reset(&mut self) {
        self.prices.clear();
        self.state = [None; 2];
    }

    /// Records a trade price (positive, finite).
    pub fn on_trade(&mut self, ts_ms: i64, price: f64) {
        if price.is_finite() && price > 0.0 {
            self.prices.push_back((ts_ms, price));
        }
    }

    /// Price move over exactly the lookback ending at `now_ms`, bps; `None` without an anchor.
    pub fn price_move_bps(&mut self, now_ms: i64) -> Option<f64> {
        let cutoff = now_ms.saturating_sub(self.lookback_ms);
        // Keep the latest trade at or before the cutoff as the anchor, drop older ones.
        while self.prices.len() >= 2 && self.prices[1].0 <= cutoff {
            self.prices.pop_front();
        }
        let (t0, anchor) = *self.prices.front()?;
        if t0 > cutoff {
            return None;
        }
        let (_, last) = *self.prices.back()?;
        Some((last - anchor) / anchor * 1e4)
    }

    /// Checks `stream` (OFI or CVD) with its published `z` at `now_ms`; a divergence when one
    /// starts (or flips direction).
    pub fn check(&mut self, stream: Stream, z: f64, now_ms: i64) -> Option<(Divergence, f64)> {
        let i = usize::from(stream == Stream::Cvd);
        let mv = self.price_move_bps(now_ms);
        let cond = mv.and_then(|m| {
            if m >= self.min_move_bps && z <= -self.z_threshold {
                Some(Divergence::Bearish)
            } else if m <= -self.min_move_bps && z >= self.z_threshold {
                Some(Divergence::Bullish)
            } else {
                None
            }
        });
        let fire = cond.is_some() && cond != self.state[i];
        self.state[i] = cond;
        if fire { cond.zip(mv) } else { None }
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
