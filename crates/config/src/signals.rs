//! `exchanges[].signals`: which symbols get order-flow signals (OFI, CVD, fusion, events) and the
//! overrides of the signals engine's reference defaults (`marketprism_signals::SignalsConfig`).
//!
//! ```yaml
//! signals:
//!   symbols: [BTC-USDT]          # each must also collect orderbooks and trades in this entry
//!   ofi_weights: [0.4, 0.25, 0.2, 0.1, 0.05]
//!   z: {window: 300, scale_mode: hybrid}
//!   max_silence_ms: 2000         # 0: no silence reset (illiquid symbols)
//! ```
//! Every field but `symbols` is optional; unknown fields are refused.

use crate::error::ConfigError;
use marketprism_model::{DataType, Symbol};
use marketprism_signals::{ScaleMode, SignalsConfig, ZMode};
use serde::{Deserialize, Serialize};

/// What a z standardizes: `level` (the value) or `delta` (its increment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZModeName {
    Level,
    Delta,
}

/// How the z scale is estimated: `std` (window σ) or `hybrid` (fast/slow EWMA σ with a MAD floor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleModeName {
    Std,
    Hybrid,
}

/// Overrides of the robust z-score parameters (`z:`); unset fields keep the reference defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZSection {
    /// Baseline window, points (300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_mode: Option<ScaleModeName>,
    /// Weight of the fast σ in the hybrid blend (0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_weight: Option<f64>,
    /// Half-life of the fast EWMA σ, s (60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life_fast_s: Option<f64>,
    /// Half-life of the slow EWMA σ, s (600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_life_slow_s: Option<f64>,
    /// Floor multiple of the window MAD (1.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mad_multiplier: Option<f64>,
    /// |z| cap (8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub winsor_limit: Option<f64>,
    /// EMA factor of the published z (0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema_alpha: Option<f64>,
}

/// `signals:` of one exchange entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalsSection {
    /// Symbols of this entry that get signals; each must be in the entry's `symbols`.
    pub symbols: Vec<Symbol>,
    /// OFI weight per book level, level 1 first (0.40, 0.25, 0.20, 0.10, 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofi_weights: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "ZSection::is_unset")]
    pub z: ZSection,
    /// What the OFI z standardizes (`level`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofi_z_mode: Option<ZModeName>,
    /// What the CVD z standardizes (`delta`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvd_z_mode: Option<ZModeName>,
    /// Fusion weight of the OFI z (0.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w_ofi: Option<f64>,
    /// Fusion weight of the CVD z (0.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub w_cvd: Option<f64>,
    /// |score_z| of a buy / sell level (1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_threshold: Option<f64>,
    /// |score_z| of a strong level (2.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strong_threshold: Option<f64>,
    /// Trade-rate window of the regime, ms (60 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regime_window_ms: Option<i64>,
    /// Trades per second at or above which the regime is active (1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_tps: Option<f64>,
    /// |z| of an `extreme_z` event (3.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extreme_z: Option<f64>,
    /// Price-move lookback of a divergence, ms (60 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence_lookback_ms: Option<i64>,
    /// Smallest price move of a divergence, basis points (5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence_min_move_bps: Option<f64>,
    /// |z| against the move of a divergence (1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence_z: Option<f64>,
    /// Silence (no book change, no trade) that resets the state like a gap, ms (2000); 0: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_silence_ms: Option<i64>,
}

impl ZSection {
    pub fn is_unset(&self) -> bool {
        *self == ZSection::default()
    }
}

fn z_mode(m: ZModeName) -> ZMode {
    match m {
        ZModeName::Level => ZMode::Level,
        ZModeName::Delta => ZMode::Delta,
    }
}

impl SignalsSection {
    /// The engine configuration: the reference defaults with this section's overrides (not validated).
    pub fn engine_config(&self) -> SignalsConfig {
        let mut c = SignalsConfig::default();
        macro_rules! set {
            ($($dst:expr => $src:expr),* $(,)?) => { $(if let Some(v) = $src { $dst = v; })* };
        }
        set!(
            c.w_ofi => self.w_ofi,
            c.w_cvd => self.w_cvd,
            c.signal_threshold => self.signal_threshold,
            c.strong_threshold => self.strong_threshold,
            c.regime_window_ms => self.regime_window_ms,
            c.active_tps => self.active_tps,
            c.extreme_z => self.extreme_z,
            c.divergence_lookback_ms => self.divergence_lookback_ms,
            c.divergence_min_move_bps => self.divergence_min_move_bps,
            c.divergence_z => self.divergence_z,
            c.z.window => self.z.window,
            c.z.fast_weight => self.z.fast_weight,
            c.z.half_life_fast_s => self.z.half_life_fast_s,
            c.z.half_life_slow_s => self.z.half_life_slow_s,
            c.z.mad_multiplier => self.z.mad_multiplier,
            c.z.winsor_limit => self.z.winsor_limit,
            c.z.ema_alpha => self.z.ema_alpha,
        );
        if let Some(w) = &self.ofi_weights {
            c.ofi_weights = w.clone();
        }
        if let Some(m) = self.z.scale_mode {
            c.z.scale_mode = match m {
                ScaleModeName::Std => ScaleMode::Std,
                ScaleModeName::Hybrid => ScaleMode::Hybrid,
            };
        }
        if let Some(m) = self.ofi_z_mode {
            c.ofi_z_mode = z_mode(m);
        }
        if let Some(m) = self.cvd_z_mode {
            c.cvd_z_mode = z_mode(m);
        }
        if let Some(ms) = self.max_silence_ms {
            c.max_silence_ms = (ms != 0).then_some(ms);
        }
        c
    }

    /// `at` is the entry's path (`exchanges[0]`); `symbols` and `data_types` are the entry's.
    pub(crate) fn validate(
        &self,
        at: &str,
        symbols: &[Symbol],
        data_types: &[DataType],
    ) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: String| {
            Err(ConfigError::Invalid {
                field: format!("{at}.signals.{f}"),
                reason,
            })
        };
        if self.symbols.is_empty() {
            return invalid(
                "symbols",
                "list at least one symbol, or leave `signals` out".into(),
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.symbols {
            if !seen.insert(s) {
                return invalid("symbols", format!("{s} is listed twice"));
            }
            if !symbols.contains(s) {
                return invalid(
                    "symbols",
                    format!(
                        "{s} is not in this entry's symbols; signals need its books and trades"
                    ),
                );
            }
        }
        for needed in [DataType::Orderbooks, DataType::Trades] {
            if !data_types.contains(&needed) {
                return invalid(
                    "symbols",
                    format!(
                        "signals are computed from orderbooks and trades: add {needed} to data_types"
                    ),
                );
            }
        }
        if self.max_silence_ms.is_some_and(|ms| ms < 0) {
            return invalid("max_silence_ms", "must be 0 (off) or more".into());
        }
        if let Err(e) = self.engine_config().validate() {
            return invalid(e.field, format!("must be {} (got {})", e.allowed, e.got));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn load(signals: &str, data_types: &str) -> Result<Config, String> {
        let c = Config::from_yaml(&format!(
            "exchanges:\n  - exchange: binance_derivatives\n    symbols: [BTC-USDT, ETH-USDT]\n    data_types: {data_types}\n    signals: {signals}\n"
        ))
        .map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn overrides_reach_the_engine_config_and_the_rest_keeps_the_defaults() {
        let c = load(
            "{symbols: [BTC-USDT], ofi_weights: [0.5, 0.5], z: {window: 100, scale_mode: std}, cvd_z_mode: level, max_silence_ms: 0}",
            "[trades, orderbooks]",
        )
        .unwrap();
        let s = c.exchanges[0].signals.as_ref().unwrap();
        let e = s.engine_config();
        assert_eq!(e.ofi_weights, vec![0.5, 0.5]);
        assert_eq!(e.z.window, 100);
        assert_eq!(e.z.scale_mode, marketprism_signals::ScaleMode::Std);
        assert_eq!(e.cvd_z_mode, marketprism_signals::ZMode::Level);
        assert_eq!(e.max_silence_ms, None);
        assert_eq!(e.w_ofi, 0.6);
        let round = Config::from_yaml(&serde_yaml::to_string(&c).unwrap()).unwrap();
        assert_eq!(round, c);
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                "{symbols: [SOL-USDT]}",
                "[trades, orderbooks]",
                "signals.symbols",
                "not in this entry's symbols",
            ),
            (
                "{symbols: [BTC-USDT]}",
                "[trades]",
                "signals.symbols",
                "add orderbooks",
            ),
            (
                "{symbols: []}",
                "[trades, orderbooks]",
                "signals.symbols",
                "at least one",
            ),
            (
                "{symbols: [BTC-USDT], z: {window: 5}}",
                "[trades, orderbooks]",
                "signals.z.window",
                ">= 10",
            ),
            (
                "{symbols: [BTC-USDT], ofi_weights: [0, 0]}",
                "[trades, orderbooks]",
                "signals.ofi_weights",
                "not all zero",
            ),
            (
                "{symbols: [BTC-USDT], strong_threshold: 1}",
                "[trades, orderbooks]",
                "signals.strong_threshold",
                "> signal_threshold",
            ),
            (
                "{symbols: [BTC-USDT], max_silence_ms: -1}",
                "[trades, orderbooks]",
                "signals.max_silence_ms",
                "0 (off)",
            ),
            (
                "{symbols: [BTC-USDT], zwindow: 5}",
                "[trades, orderbooks]",
                "zwindow",
                "unknown field",
            ),
        ];
        for (signals, types, field, reason) in cases {
            let err = load(signals, types).unwrap_err();
            assert!(
                err.contains(field) && err.contains(reason),
                "{signals}: {err}"
            );
        }
    }

    #[test]
    fn signal_types_are_not_collected_from_a_venue() {
        let err = load("{symbols: [BTC-USDT]}", "[trades, orderbooks, signal_ofi]").unwrap_err();
        assert!(
            err.contains("data_types") && err.contains("signals"),
            "{err}"
        );
    }
}
