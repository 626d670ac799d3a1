//! [`SignalEngine`]: the whole signals state of one symbol, and its output rows.
//!
//! Inputs, in the order the caller observed them:
//! - [`SignalEngine::on_book`]: the top levels of the book after **every change** (not periodic
//!   snapshots) → an [`OfiRow`] (from the second book after a reset on) and maybe a [`FusionRow`];
//! - [`SignalEngine::on_trade`]: one trade with its aggressor side if the venue gives it → a
//!   [`CvdRow`] and maybe a [`FusionRow`];
//! - [`SignalEngine::on_gap`]: the caller saw a hole (sequence gap, resync, reconnect, restart).
//!
//! **Rows** mirror the reference's datasets (`ofi`, `cvd`, `fusion`, `events`) without `symbol`
//! (one engine per symbol; the caller adds it), plus `std_zero` on the z rows and the signal
//! `level` on fusion rows. z columns are `None` during warm-up.
//!
//! **Resets.** A gap, or a silence longer than `max_silence_ms` between two inputs (checked
//! before the later input is used), resets *every* state — previous book, CVD, tick history,
//! z baselines and EWMAs, fusion, regime window, price history, event triggers — and emits a
//! `reset` event. Nothing is computed across the hole; warm-up starts over.
//!
//! **Time.** Only the given `ts_ms` (event time, ms) is used. Out-of-order timestamps are
//! accepted (decay and windows never move backwards); rows carry the input's own `ts_ms`.
//!
//! **Determinism.** No hash maps, no wall clock, no randomness: the same input sequence gives
//! bit-identical rows on the same build and platform (`exp2` / `sqrt` come from the platform's
//! libm).

use crate::config::{ConfigError, SignalsConfig};
use crate::cvd::{Cvd, Side};
use crate::events::{
    DivergenceDetector, EventDetail, ExtremeTrigger, ResetReason, SignalEvent, Stream,
};
use crate::fusion::{Fusion, FusionStep, SignalLevel};
use crate::ofi::{Level, OfiCalculator};
use crate::regime::{Regime, RegimeTracker};
use crate::zscore::RobustZ;

/// A row of the `ofi` dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfiRow {
    /// Book change time, ms.
    pub ts_ms: i64,
    /// Weighted multi-level OFI of this change (base-asset quantity); the dataset's `ofi_value`.
    pub ofi: f64,
    /// Published (smoothed, winsorized) robust z; `None` during warm-up.
    pub ofi_z: Option<f64>,
    /// Scale the z divided by; `None` during warm-up.
    pub scale: Option<f64>,
    /// The scale was ≤ 1e-9 and the z forced to 0.
    pub std_zero: bool,
    /// Regime at this time.
    pub regime: Regime,
}

/// A row of the `cvd` dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CvdRow {
    /// Trade time, ms.
    pub ts_ms: i64,
    /// Cumulative volume delta since the last reset (base-asset quantity).
    pub cvd: f64,
    /// Signed quantity of this trade.
    pub delta: f64,
    /// Winsorized robust z before EMA smoothing.
    pub z_raw: Option<f64>,
    /// Published z: EMA (α 0.2) of `z_raw`.
    pub z_cvd: Option<f64>,
    /// Scale the z divided by.
    pub scale: Option<f64>,
    /// `MAD_MULTIPLIER × MAD` of the baseline.
    pub sigma_floor: Option<f64>,
    /// The floor was the scale (hybrid mode).
    pub floor_used: bool,
    /// The scale was ≤ 1e-9 and the z forced to 0.
    pub std_zero: bool,
    /// Regime at this time.
    pub regime: Regime,
}

/// A row of the `fusion` dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionRow {
    /// Time of the OFI or CVD update that produced it, ms.
    pub ts_ms: i64,
    /// `w_ofi·ofi_z + w_cvd·z_cvd`.
    pub score: f64,
    /// Robust z of the score, same parameters as the streams (EMA included); `None` in warm-up.
    pub score_z: Option<f64>,
    /// Signal level from `score_z`.
    pub level: Option<SignalLevel>,
    /// Regime at this time.
    pub regime: Regime,
}

/// Everything one input produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// From a book change.
    pub ofi: Option<OfiRow>,
    /// From a trade.
    pub cvd: Option<CvdRow>,
    /// When both streams have a z.
    pub fusion: Option<FusionRow>,
    /// Events, in the order they occurred (a `reset` first).
    pub events: Vec<SignalEvent>,
}

/// Signals state of one symbol.
#[derive(Debug, Clone)]
pub struct SignalEngine {
    cfg: SignalsConfig,
    ofi: OfiCalculator,
    ofi_z: RobustZ,
    cvd: Cvd,
    cvd_z: RobustZ,
    fusion: Fusion,
    regime: RegimeTracker,
    last_regime: Option<Regime>,
    divergence: DivergenceDetector,
    extreme: [ExtremeTrigger; 3],
    warm: [bool; 3],
    level: Option<SignalLevel>,
    last_ts: Option<i64>,
}

impl SignalEngine {
    /// An engine for one symbol; the configuration is validated.
    pub fn new(cfg: SignalsConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Self {
            ofi: OfiCalculator::new(&cfg.ofi_weights),
            ofi_z: RobustZ::new(&cfg.z, cfg.ofi_z_mode),
            cvd: Cvd::new(),
            cvd_z: RobustZ::new(&cfg.z, cfg.cvd_z_mode),
            fusion: Fusion::new(
                cfg.w_ofi,
                cfg.w_cvd,
                cfg.signal_threshold,
                cfg.strong_threshold,
                &cfg.z,
            ),
            regime: RegimeTracker::new(cfg.regime_window_ms, cfg.active_tps),
            last_regime: None,
            divergence: DivergenceDetector::new(
                cfg.divergence_lookback_ms,
                cfg.divergence_min_move_bps,
                cfg.divergence_z,
            ),
            extreme: Default::default(),
            warm: [false; 3],
            level: None,
            last_ts: None,
            cfg,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &SignalsConfig {
        &self.cfg
    }

    /// A book change: the top levels after it (`bids` highest first, `asks` lowest first).
    pub fn on_book(&mut self, ts_ms: i64, bids: &[Level], asks: &[Level]) -> Output {
        let mut out = Output::default();
        self.begin(ts_ms, &mut out);
        let regime = self.regime_now(ts_ms, &mut out);
        let Some(ofi) = self.ofi.update(bids, asks) else {
            return out;
        };
        let Some(z) = self.ofi_z.update(ts_ms, ofi) else {
            return out;
        };
        out.ofi = Some(OfiRow {
            ts_ms,
            ofi,
            ofi_z: z.z,
            scale: z.scale,
            std_zero: z.std_zero,
            regime,
        });
        if let Some(zv) = z.z {
            self.stream_events(Stream::Ofi, ts_ms, zv, &mut out);
            if let Some(step) = self.fusion.on_ofi_z(ts_ms, zv) {
                self.fusion_row(ts_ms, step, regime, &mut out);
            }
        }
        out
    }

    /// A trade: price, quantity (base asset) and the aggressor side when the venue gives it
    /// (`None` → tick rule).
    pub fn on_trade(&mut self, ts_ms: i64, price: f64, qty: f64, side: Option<Side>) -> Output {
        let mut out = Output::default();
        self.begin(ts_ms, &mut out);
        let Some(step) = self.cvd.update(price, qty, side) else {
            self.regime_now(ts_ms, &mut out);
            return out;
        };
        self.regime.on_trade(ts_ms);
        self.divergence.on_trade(ts_ms, price);
        let regime = self.regime_now(ts_ms, &mut out);
        let Some(z) = self.cvd_z.update(ts_ms, step.cvd) else {
            return out;
        };
        out.cvd = Some(CvdRow {
            ts_ms,
            cvd: step.cvd,
            delta: step.delta,
            z_raw: z.z_raw,
            z_cvd: z.z,
            scale: z.scale,
            sigma_floor: z.sigma_floor,
            floor_used: z.floor_used,
            std_zero: z.std_zero,
            regime,
        });
        if let Some(zv) = z.z {
            self.stream_events(Stream::Cvd, ts_ms, zv, &mut out);
            if let Some(step) = self.fusion.on_cvd_z(ts_ms, zv) {
                self.fusion_row(ts_ms, step, regime, &mut out);
            }
        }
        out
    }

    /// A hole in the input (gap, resync, reconnect, restart): every state resets, one `reset` event.
    pub fn on_gap(&mut self, ts_ms: i64, reason: ResetReason) -> Output {
        let mut out = Output::default();
        self.reset(ts_ms, reason, &mut out);
        self.last_ts = None;
        out
    }

    fn reset(&mut self, ts_ms: i64, reason: ResetReason, out: &mut Output) {
        self.ofi.reset();
        self.ofi_z.reset();
        self.cvd.reset();
        self.cvd_z.reset();
        self.fusion.reset();
        self.regime.reset();
        self.last_regime = None;
        self.divergence.reset();
        self.extreme = Default::default();
        self.warm = [false; 3];
        self.level = None;
        out.events
            .push(SignalEvent::new(ts_ms, EventDetail::Reset { reason }));
    }

    /// Silence check, then the clock.
    fn begin(&mut self, ts_ms: i64, out: &mut Output) {
        if let (Some(max), Some(last)) = (self.cfg.max_silence_ms, self.last_ts) {
            let silence = ts_ms.saturating_sub(last);
            if silence > max {
                self.reset(ts_ms, ResetReason::Silence(silence), out);
            }
        }
        self.last_ts = Some(self.last_ts.map_or(ts_ms, |t| t.max(ts_ms)));
    }

    fn regime_now(&mut self, ts_ms: i64, out: &mut Output) -> Regime {
        self.regime.advance(ts_ms);
        let now = self.regime.regime();
        if let Some(prev) = self.last_regime
            && prev != now
        {
            let rate_tps = self.regime.rate_tps();
            out.events.push(SignalEvent::new(
                ts_ms,
                EventDetail::RegimeChange {
                    from: prev,
                    to: now,
                    rate_tps,
                },
            ));
        }
        self.last_regime = Some(now);
        now
    }

    fn stream_events(&mut self, stream: Stream, ts_ms: i64, z: f64, out: &mut Output) {
        let i = stream as usize;
        if !self.warm[i] {
            self.warm[i] = true;
            out.events
                .push(SignalEvent::new(ts_ms, EventDetail::WarmupDone { stream }));
        }
        if self.extreme[i].check(z, self.cfg.extreme_z) {
            out.events
                .push(SignalEvent::new(ts_ms, EventDetail::ExtremeZ { stream, z }));
        }
        if stream != Stream::Fusion
            && let Some((direction, price_move_bps)) = self.divergence.check(stream, z, ts_ms)
        {
            out.events.push(SignalEvent::new(
                ts_ms,
                EventDetail::Divergence {
                    stream,
                    direction,
                    z,
                    price_move_bps,
                },
            ));
        }
    }

    fn fusion_row(&mut self, ts_ms: i64, step: FusionStep, regime: Regime, out: &mut Output) {
        out.fusion = Some(FusionRow {
            ts_ms,
            score: step.score,
            score_z: step.z.z,
            level: step.level,
            regime,
        });
        if let (Some(score_z), Some(to)) = (step.z.z, step.level) {
            self.stream_events(Stream::Fusion, ts_ms, score_z, out);
            let from = self.level.unwrap_or(SignalLevel::Neutral);
            if from != to {
                out.events.push(SignalEvent::new(
                    ts_ms,
                    EventDetail::SignalLevel { from, to, score_z },
                ));
            }
            self.level = Some(to);
        }
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
