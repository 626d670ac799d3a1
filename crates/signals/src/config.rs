//! [`SignalsConfig`]: every knob of the signals stage, with the reference defaults
//! (`seed-systems.md` §B) and [`SignalsConfig::validate`].

use crate::zscore::{ZConfig, ZMode};

/// Default OFI level weights of the source system (level 1 first); normalized to sum 1 at use.
pub const DEFAULT_OFI_WEIGHTS: [f64; 5] = [0.40, 0.25, 0.20, 0.10, 0.05];

/// A configuration value outside what is allowed: names the field, what is allowed and what was given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("signals config: `{field}` must be {allowed} (got {got})")]
pub struct ConfigError {
    /// The offending field, as spelled in [`SignalsConfig`] / [`ZConfig`] (`z.window`, ...).
    pub field: &'static str,
    /// What the field accepts.
    pub allowed: &'static str,
    /// The value given, formatted.
    pub got: String,
}

/// Configuration of one [`crate::SignalEngine`] (one symbol).
#[derive(Debug, Clone, PartialEq)]
pub struct SignalsConfig {
    /// OFI weight per book level, level 1 first; the number of weights is the number of levels used.
    /// Non-negative, not all zero; normalized to sum 1. Default [`DEFAULT_OFI_WEIGHTS`].
    pub ofi_weights: Vec<f64>,
    /// Robust z-score parameters shared by OFI, CVD and the fusion score.
    pub z: ZConfig,
    /// What the OFI z standardizes. Default [`ZMode::Level`]: OFI per book change is already a flow.
    pub ofi_z_mode: ZMode,
    /// What the CVD z standardizes. Default [`ZMode::Delta`]: the CVD level is a random walk (not
    /// stationary), its increment (the signed trade quantity) is.
    pub cvd_z_mode: ZMode,
    /// Fusion weight of the OFI z (0.6) ...
    pub w_ofi: f64,
    /// ... and of the CVD z (0.4): `score = w_ofi·z_ofi + w_cvd·z_cvd`.
    pub w_cvd: f64,
    /// |score_z| at or above which the signal is buy / sell (1.5).
    pub signal_threshold: f64,
    /// |score_z| at or above which the signal is strong-buy / strong-sell (2.5).
    pub strong_threshold: f64,
    /// Sliding window of the trade rate that decides the regime, ms (60 000).
    pub regime_window_ms: i64,
    /// Trade rate (trades per second over the window) at or above which the regime is active.
    /// Default 1.0 tps (60 trades a minute): BTCUSDT/ETHUSDT perpetuals run far above it, a
    /// small-cap in a lull falls below it. Tune per symbol.
    pub active_tps: f64,
    /// |z| (published, smoothed) at or above which an `extreme_z` event fires (3.0), edge-triggered.
    pub extreme_z: f64,
    /// Lookback of the price move a divergence compares against, ms (60 000).
    pub divergence_lookback_ms: i64,
    /// Smallest |price move| over the lookback that counts as a move, basis points (5.0).
    pub divergence_min_move_bps: f64,
    /// |z| of OFI / CVD at or above which it counts as pointing the other way (1.5).
    pub divergence_z: f64,
    /// Silence (no book change and no trade) longer than this resets the state like a gap, ms.
    /// Default `Some(2000)`, the source system's gap; `None` leaves gap detection to the caller
    /// (advisable for illiquid symbols whose book can stay unchanged for seconds).
    pub max_silence_ms: Option<i64>,
}

impl Default for SignalsConfig {
    fn default() -> Self {
        Self {
            ofi_weights: DEFAULT_OFI_WEIGHTS.to_vec(),
            z: ZConfig::default(),
            ofi_z_mode: ZMode::Level,
            cvd_z_mode: ZMode::Delta,
            w_ofi: 0.6,
            w_cvd: 0.4,
            signal_threshold: 1.5,
            strong_threshold: 2.5,
            regime_window_ms: 60_000,
            active_tps: 1.0,
            extreme_z: 3.0,
            divergence_lookback_ms: 60_000,
            divergence_min_move_bps: 5.0,
            divergence_z: 1.5,
            max_silence_ms: Some(2000),
        }
    }
}

fn err(field: &'static str, allowed: &'static str, got: impl std::fmt::Debug) -> ConfigError {
    ConfigError {
        field,
        allowed,
        got: format!("{got:?}"),
    }
}

fn check(
    ok: bool,
    field: &'static str,
    allowed: &'static str,
    got: impl std::fmt::Debug,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(err(field, allowed, got))
    }
}

impl SignalsConfig {
    /// Checks every field; the first violation is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.ofi_weights;
        check(
            (1..=50).contains(&w.len()),
            "ofi_weights",
            "1 to 50 weights (one per level)",
            w,
        )?;
        check(
            w.iter().all(|x| x.is_finite() && *x >= 0.0) && w.iter().any(|x| *x > 0.0),
            "ofi_weights",
            "finite, non-negative and not all zero",
            w,
        )?;
        self.z.validate()?;
        let pos = |x: f64| x.is_finite() && x > 0.0;
        let nonneg = |x: f64| x.is_finite() && x >= 0.0;
        check(
            nonneg(self.w_ofi),
            "w_ofi",
            "finite and non-negative",
            self.w_ofi,
        )?;
        check(
            nonneg(self.w_cvd),
            "w_cvd",
            "finite and non-negative",
            self.w_cvd,
        )?;
        check(
            self.w_ofi + self.w_cvd > 0.0,
            "w_cvd",
            "non-zero when w_ofi is zero",
            self.w_cvd,
        )?;
        check(
            pos(self.signal_threshold),
            "signal_threshold",
            "finite and > 0",
            self.signal_threshold,
        )?;
        check(
            pos(self.strong_threshold) && self.strong_threshold > self.signal_threshold,
            "strong_threshold",
            "finite and > signal_threshold",
            self.strong_threshold,
        )?;
        check(
            self.regime_window_ms >= 1000,
            "regime_window_ms",
            ">= 1000",
            self.regime_window_ms,
        )?;
        check(
            nonneg(self.active_tps),
            "active_tps",
            "finite and >= 0",
            self.active_tps,
        )?;
        check(
            pos(self.extreme_z),
            "extreme_z",
            "finite and > 0",
            self.extreme_z,
        )?;
        check(
            self.divergence_lookback_ms > 0,
            "divergence_lookback_ms",
            "> 0",
            self.divergence_lookback_ms,
        )?;
        check(
            nonneg(self.divergence_min_move_bps),
            "divergence_min_move_bps",
            "finite and >= 0",
            self.divergence_min_move_bps,
        )?;
        check(
            pos(self.divergence_z),
            "divergence_z",
            "finite and > 0",
            self.divergence_z,
        )?;
        check(
            self.max_silence_ms.is_none_or(|ms| ms > 0),
            "max_silence_ms",
            "None or > 0",
            self.max_silence_ms,
        )?;
        Ok(())
    }
}

impl ZConfig {
    /// Checks the z-score fields (reported as `z.<field>`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let pos = |x: f64| x.is_finite() && x > 0.0;
        check(self.window >= 10, "z.window", ">= 10", self.window)?;
        check(
            pos(self.winsor_limit),
            "z.winsor_limit",
            "finite and > 0",
            self.winsor_limit,
        )?;
        check(
            self.ema_alpha > 0.0 && self.ema_alpha <= 1.0,
            "z.ema_alpha",
            "in (0, 1]",
            self.ema_alpha,
        )?;
        check(
            (0.0..=1.0).contains(&self.fast_weight),
            "z.fast_weight",
            "in [0, 1]",
            self.fast_weight,
        )?;
        check(
            pos(self.half_life_fast_s),
            "z.half_life_fast_s",
            "finite and > 0",
            self.half_life_fast_s,
        )?;
        check(
            pos(self.half_life_slow_s),
            "z.half_life_slow_s",
            "finite and > 0",
            self.half_life_slow_s,
        )?;
        check(
            self.mad_multiplier.is_finite() && self.mad_multiplier >= 0.0,
            "z.mad_multiplier",
            "finite and >= 0",
            self.mad_multiplier,
        )?;
        check(
            self.std_zero_eps.is_finite() && self.std_zero_eps >= 0.0,
            "z.std_zero_eps",
            "finite and >= 0",
            self.std_zero_eps,
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_reference() {
        let c = SignalsConfig::default();
        c.validate().unwrap();
        assert_eq!(c.ofi_weights, vec![0.40, 0.25, 0.20, 0.10, 0.05]);
        assert_eq!(c.z.window, 300);
        assert_eq!(c.z.warmup(), 60); // max(5, 300/5)
        assert_eq!((c.w_ofi, c.w_cvd), (0.6, 0.4));
        assert_eq!((c.signal_threshold, c.strong_threshold), (1.5, 2.5));
    }

    #[test]
    fn errors_name_the_field_and_what_is_allowed() {
        let bad = |f: fn(&mut SignalsConfig)| {
            let mut c = SignalsConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        let e = bad(|c| c.ofi_weights = vec![0.5, -0.1]);
        assert_eq!(e.field, "ofi_weights");
        assert!(
            e.to_string().contains("non-negative and not all zero"),
            "{e}"
        );
        assert_eq!(bad(|c| c.ofi_weights = vec![0.0; 3]).field, "ofi_weights");
        assert_eq!(bad(|c| c.ofi_weights.clear()).field, "ofi_weights");
        let e = bad(|c| c.z.window = 9);
        assert_eq!(
            e.to_string(),
            "signals config: `z.window` must be >= 10 (got 9)"
        );
        assert_eq!(bad(|c| c.z.ema_alpha = 0.0).field, "z.ema_alpha");
        assert_eq!(bad(|c| c.z.fast_weight = 1.5).field, "z.fast_weight");
        assert_eq!(bad(|c| c.z.winsor_limit = f64::NAN).field, "z.winsor_limit");
        assert_eq!(
            bad(|c| c.z.half_life_slow_s = 0.0).field,
            "z.half_life_slow_s"
        );
        assert_eq!(bad(|c| c.z.mad_multiplier = -1.0).field, "z.mad_multiplier");
        assert_eq!(bad(|c| c.strong_threshold = 1.0).field, "strong_threshold");
        assert_eq!(bad(|c| (c.w_ofi, c.w_cvd) = (0.0, 0.0)).field, "w_cvd");
        assert_eq!(bad(|c| c.regime_window_ms = 0).field, "regime_window_ms");
        assert_eq!(bad(|c| c.max_silence_ms = Some(0)).field, "max_silence_ms");
        assert_eq!(bad(|c| c.divergence_z = -1.0).field, "divergence_z");
    }
}
