//! Fusion of the OFI and CVD z-scores (`seed-systems.md` §B, "Fusion").
//!
//! `score = w_ofi · z_ofi + w_cvd · z_cvd` (0.6 / 0.4, not renormalized), from the latest
//! *published* (smoothed) z of each stream, computed whenever either stream publishes a z and
//! both have one (*choice*). The score is standardized to `score_z` with the same robust z
//! ([`crate::zscore`], level mode, same parameters, so `score_z` is the EMA-smoothed one too);
//! the signal level comes from `score_z`:
//! buy at ≥ +1.5, strong-buy at ≥ +2.5, sell at ≤ −1.5, strong-sell at ≤ −2.5, neutral between.

use crate::zscore::{RobustZ, ZConfig, ZMode, ZOutput};

/// Discrete signal from `score_z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SignalLevel {
    /// `score_z ≤ −strong_threshold`.
    StrongSell,
    /// `−strong_threshold < score_z ≤ −signal_threshold`.
    Sell,
    /// `|score_z| < signal_threshold`.
    Neutral,
    /// `signal_threshold ≤ score_z < strong_threshold`.
    Buy,
    /// `score_z ≥ strong_threshold`.
    StrongBuy,
}

impl SignalLevel {
    /// Classifies `score_z` with the thresholds (0 < `signal` < `strong`).
    pub fn classify(score_z: f64, signal: f64, strong: f64) -> Self {
        if score_z >= strong {
            SignalLevel::StrongBuy
        } else if score_z >= signal {
            SignalLevel::Buy
        } else if score_z <= -strong {
            SignalLevel::StrongSell
        } else if score_z <= -signal {
            SignalLevel::Sell
        } else {
            SignalLevel::Neutral
        }
    }

    /// `strong_sell` / `sell` / `neutral` / `buy` / `strong_buy`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalLevel::StrongSell => "strong_sell",
            SignalLevel::Sell => "sell",
            SignalLevel::Neutral => "neutral",
            SignalLevel::Buy => "buy",
            SignalLevel::StrongBuy => "strong_buy",
        }
    }
}

/// One fusion step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionStep {
    /// `w_ofi·z_ofi + w_cvd·z_cvd`.
    pub score: f64,
    /// Robust z of the score (`z.z` is `score_z`).
    pub z: ZOutput,
    /// Level from `score_z`, once it has one.
    pub level: Option<SignalLevel>,
}

/// Fusion state of one symbol.
#[derive(Debug, Clone)]
pub struct Fusion {
    w_ofi: f64,
    w_cvd: f64,
    signal: f64,
    strong: f64,
    z: RobustZ,
    ofi_z: Option<f64>,
    cvd_z: Option<f64>,
}

impl Fusion {
    /// Weights, thresholds and the z parameters (validated by the caller).
    pub fn new(w_ofi: f64, w_cvd: f64, signal: f64, strong: f64, z: &ZConfig) -> Self {
        Self {
            w_ofi,
            w_cvd,
            signal,
            strong,
            z: RobustZ::new(z, ZMode::Level),
            ofi_z: None,
            cvd_z: None,
        }
    }

    /// Forgets both inputs and the score baseline.
    pub fn reset(&mut self) {
        self.z.reset();
        self.ofi_z = None;
        self.cvd_z = None;
    }

    /// A new OFI z at `ts_ms`; a step once the CVD has a z too.
    pub fn on_ofi_z(&mut self, ts_ms: i64, z: f64) -> Option<FusionStep> {
        self.ofi_z = Some(z);
        self.step(ts_ms)
    }

    /// A new CVD z at `ts_ms`; a step once the OFI has a z too.
    pub fn on_cvd_z(&mut self, ts_ms: i64, z: f64) -> Option<FusionStep> {
        self.cvd_z = Some(z);
        self.step(ts_ms)
    }

    fn step(&mut self, ts_ms: i64) -> Option<FusionStep> {
        let score = self.w_ofi * self.ofi_z? + self.w_cvd * self.cvd_z?;
        let z = self.z.update(ts_ms, score)?;
        let level =
            z.z.map(|s| SignalLevel::classify(s, self.signal, self.strong));
        Some(FusionStep { score, z, level })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zscore::ScaleMode;

    #[test]
    fn levels_at_the_thresholds() {
        let c = |z| SignalLevel::classify(z, 1.5, 2.5);
        assert_eq!(c(0.0), SignalLevel::Neutral);
        assert_eq!(c(1.49), SignalLevel::Neutral);
        assert_eq!(c(1.5), SignalLevel::Buy);
        assert_eq!(c(2.49), SignalLevel::Buy);
        assert_eq!(c(2.5), SignalLevel::StrongBuy);
        assert_eq!(c(-1.5), SignalLevel::Sell);
        assert_eq!(c(-2.5), SignalLevel::StrongSell);
        assert_eq!(c(-8.0), SignalLevel::StrongSell);
    }

    #[test]
    fn score_is_the_weighted_sum_of_the_latest_z() {
        let zc = ZConfig {
            window: 10,
            scale_mode: ScaleMode::Std,
            ema_alpha: 1.0,
            ..ZConfig::default()
        };
        let mut f = Fusion::new(0.6, 0.4, 1.5, 2.5, &zc);
        assert!(f.on_ofi_z(0, 1.0).is_none(), "no CVD z yet");
        // 0.6·1 + 0.4·2 = 1.4
        assert_eq!(f.on_cvd_z(1, 2.0).unwrap().score, 0.6 + 0.8);
        // 0.6·(−1) + 0.4·2 = 0.2 (the CVD z is kept)
        let s = f.on_ofi_z(2, -1.0).unwrap();
        assert!((s.score - 0.2).abs() < 1e-15);
        assert!(
            s.z.z.is_none() && s.level.is_none(),
            "score z still warming up"
        );
        // Baseline of scores: feed 1,2,3,4,5 via ofi z (cvd z 0) then 6 → z = 3/√2 ⇒ buy
        f.reset();
        f.on_cvd_z(0, 0.0);
        for x in [1.0, 2.0, 3.0, 4.0, 5.0] {
            f.on_ofi_z(0, x / 0.6);
        }
        let s = f.on_ofi_z(0, 6.0 / 0.6).unwrap();
        assert!((s.z.z.unwrap() - 3.0 / 2f64.sqrt()).abs() < 1e-9);
        assert_eq!(s.level, Some(SignalLevel::Buy));
    }
}
