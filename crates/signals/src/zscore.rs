//! The robust z-score shared by OFI, CVD and the fusion score (`seed-systems.md` §B,
//! "Robust z-scores, identical for OFI and CVD").
//!
//! For each input `x` at `ts_ms`, in this order:
//! 1. **Series value** `v`: [`ZMode::Level`] → `v = x`; [`ZMode::Delta`] → `v = x − x_prev`
//!    (the increment). *Choice:* after a reset `x_prev = 0`, the start of a cumulative series
//!    such as CVD, so the first CVD increment is exactly the first trade's signed quantity.
//! 2. **Warm-up**: the baseline is the *previous* window — the last `window` (300) values
//!    **before** `v`; `v` itself is never part of its own baseline. No z while the baseline holds
//!    fewer than [`ZConfig::warmup`] = `max(5, window / 5)` values (60 at 300): the first z comes
//!    with the 61st value after a reset.
//! 3. **Center and scale** (over the baseline):
//!    - [`ScaleMode::Std`]: the classical z, center = window mean, scale = window population
//!      standard deviation.
//!    - [`ScaleMode::Hybrid`]: center = window median; scale = `fast_weight · σ_fast +
//!      (1 − fast_weight) · σ_slow`, the σ being exponentially weighted standard deviations of
//!      every value since the reset with time-based decay (weights halve every
//!      `half_life_fast_s` = 60 s / `half_life_slow_s` = 600 s of `ts_ms`), floored at
//!      `sigma_floor = mad_multiplier (1.8) × MAD` of the window (raw MAD, no 1.4826 factor);
//!      `floor_used` is true when the floor is strictly above the blend. *Choices:* the spec
//!      names one half-life (600 s): it is the slow one, the fast one is a tenth of it; the
//!      blend is linear in σ.
//!      `sigma_floor` is reported in both modes; only hybrid applies it.
//! 4. **std_zero**: `scale ≤ std_zero_eps` (1e-9) → `z_raw = 0`, `std_zero = true`.
//! 5. **Winsorization**: `z_raw = clamp((v − center) / scale, −winsor_limit, +winsor_limit)` (±8).
//! 6. **Smoothing** (*choice: where α applies*): the published `z` is the EMA of `z_raw` with
//!    `ema_alpha` = 0.2, `z = α·z_raw + (1 − α)·z_prev`, seeded with the first `z_raw` after
//!    warm-up. Because the EMA averages winsorized values, `|z| ≤ winsor_limit` too.
//! 7. `v` joins the window and the EWMAs (so it is in the baseline of the *next* value).
//!
//! Non-finite inputs are ignored (no output, no state change).

use crate::window::{DecayedVar, SortedWindow};

/// What the z standardizes: the value itself or its increment (`Z_MODE=delta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZMode {
    /// The input value.
    Level,
    /// The increment from the previous input (0 before the first after a reset).
    Delta,
}

/// How the scale is estimated (`SCALE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleMode {
    /// Window mean and population standard deviation.
    Std,
    /// Median center; fast/slow time-decayed EWMA σ blend, floored at a MAD multiple.
    Hybrid,
}

/// Robust z-score parameters (defaults from the reference).
#[derive(Debug, Clone, PartialEq)]
pub struct ZConfig {
    /// Baseline window, points (`z_window` = 300; ≥ 10).
    pub window: usize,
    /// Scale estimator (default [`ScaleMode::Hybrid`]).
    pub scale_mode: ScaleMode,
    /// Weight of the fast σ in the hybrid blend (`SCALE_FAST_WEIGHT` = 0.20).
    pub fast_weight: f64,
    /// Half-life of the fast EWMA σ, s (60; a tenth of the slow one).
    pub half_life_fast_s: f64,
    /// Half-life of the slow EWMA σ, s (`HALF_LIFE_SEC` = 600).
    pub half_life_slow_s: f64,
    /// Floor multiple of the window MAD (`MAD_MULTIPLIER` = 1.8).
    pub mad_multiplier: f64,
    /// |z| cap (`WINSOR_LIMIT` = 8).
    pub winsor_limit: f64,
    /// EMA factor of the published z (0.2; 1 disables smoothing).
    pub ema_alpha: f64,
    /// A scale at or below this is zero (1e-9).
    pub std_zero_eps: f64,
}

impl Default for ZConfig {
    fn default() -> Self {
        Self {
            window: 300,
            scale_mode: ScaleMode::Hybrid,
            fast_weight: 0.20,
            half_life_fast_s: 60.0,
            half_life_slow_s: 600.0,
            mad_multiplier: 1.8,
            winsor_limit: 8.0,
            ema_alpha: 0.2,
            std_zero_eps: 1e-9,
        }
    }
}

impl ZConfig {
    /// Baseline points needed before the first z: `max(5, window / 5)`.
    pub fn warmup(&self) -> usize {
        (self.window / 5).max(5)
    }
}

/// One z-score step. Scale fields are `None` (and flags false) during warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZOutput {
    /// The standardized series value: the input ([`ZMode::Level`]) or its increment ([`ZMode::Delta`]).
    pub value: f64,
    /// Winsorized z before smoothing.
    pub z_raw: Option<f64>,
    /// Published z: EMA (α = `ema_alpha`) of `z_raw`.
    pub z: Option<f64>,
    /// Scale the z divided by (after the floor in hybrid mode).
    pub scale: Option<f64>,
    /// `mad_multiplier × MAD` of the baseline window.
    pub sigma_floor: Option<f64>,
    /// Hybrid mode: the MAD floor was above the EWMA blend and became the scale.
    pub floor_used: bool,
    /// The scale was ≤ `std_zero_eps`; `z_raw` is 0.
    pub std_zero: bool,
}

/// Streaming robust z-score of one series (see the module docs for the exact definition).
#[derive(Debug, Clone)]
pub(crate) struct RobustZ {
    cfg: ZConfig,
    mode: ZMode,
    window: SortedWindow,
    fast: DecayedVar,
    slow: DecayedVar,
    prev_level: f64,
    ema: Option<f64>,
}

impl RobustZ {
    /// A fresh scorer; `cfg` is assumed validated ([`ZConfig::validate`]).
    pub fn new(cfg: &ZConfig, mode: ZMode) -> Self {
        Self {
            window: SortedWindow::new(cfg.window),
            fast: DecayedVar::new(cfg.half_life_fast_s * 1000.0),
            slow: DecayedVar::new(cfg.half_life_slow_s * 1000.0),
            cfg: cfg.clone(),
            mode,
            prev_level: 0.0,
            ema: None,
        }
    }

    /// Forgets everything: warm-up starts over.
    pub fn reset(&mut self) {
        self.window.clear();
        self.fast.clear();
        self.slow.clear();
        self.prev_level = 0.0;
        self.ema = None;
    }

    /// True once the baseline is long enough for a z.
    pub fn is_warm(&self) -> bool {
        self.window.len() >= self.cfg.warmup()
    }

    /// Scores `x` observed at `ts_ms`, then adds it to the baseline. `None` for a non-finite `x`.
    pub fn update(&mut self, ts_ms: i64, x: f64) -> Option<ZOutput> {
        if !x.is_finite() {
            return None;
        }
        let value = match self.mode {
            ZMode::Level => x,
            ZMode::Delta => x - self.prev_level,
        };
        if !value.is_finite() {
            return None;
        }
        self.prev_level = x;
        let mut out = ZOutput {
            value,
            z_raw: None,
            z: None,
            scale: None,
            sigma_floor: None,
            floor_used: false,
            std_zero: false,
        };
        if self.is_warm() {
            self.score(value, &mut out);
        }
        self.window.push(value);
        if self.cfg.scale_mode == ScaleMode::Hybrid {
            self.fast.push(ts_ms, value);
            self.slow.push(ts_ms, value);
        }
        Some(out)
    }

    fn score(&mut self, value: f64, out: &mut ZOutput) {
        let c = &self.cfg;
        let median = self.window.median().unwrap_or(0.0);
        let floor = c.mad_multiplier * self.window.mad(median).unwrap_or(0.0);
        let (center, scale) = match c.scale_mode {
            ScaleMode::Std => self.window.mean_std().unwrap_or((0.0, 0.0)),
            ScaleMode::Hybrid => {
                let blend =
                    c.fast_weight * self.fast.std() + (1.0 - c.fast_weight) * self.slow.std();
                out.floor_used = floor > blend;
                (median, blend.max(floor))
            }
        };
        let z_raw = if scale <= c.std_zero_eps {
            out.std_zero = true;
            0.0
        } else {
            ((value - center) / scale).clamp(-c.winsor_limit, c.winsor_limit)
        };
        let z = match self.ema {
            None => z_raw,
            Some(prev) => c.ema_alpha * z_raw + (1.0 - c.ema_alpha) * prev,
        };
        self.ema = Some(z);
        out.z_raw = Some(z_raw);
        out.z = Some(z);
        out.scale = Some(scale);
        out.sigma_floor = Some(floor);
    }
}

#[cfg(test)]
#[path = "zscore_tests.rs"]
mod tests;
