//! Payloads of the 4 order-flow signal types (`signal_ofi`, `signal_cvd`, `signal_fusion`,
//! `signal_events`): rows of the collector's signals stage (`marketprism-signals`), one symbol each.
//!
//! Values are `f64` (signals are statistics, not venue facts: no exact decimals to keep). Sizes
//! (`ofi`, `cvd`, `delta`) are base-asset quantities; z-scores are dimensionless; a z, scale or level
//! is `None` while the stream warms up. Labels are the engine's snake-case names:
//! `regime` ∈ {`active`, `quiet`}, `level` ∈ {`strong_sell`, `sell`, `neutral`, `buy`, `strong_buy`}.
//!
//! Natural keys come from the input that produced the row, so every collector that sees the same
//! input names the row alike: the book's update id, the trade id, or the gap.

use serde::{Deserialize, Serialize};

/// `signal_ofi`: the multi-level order-flow imbalance of one change of the book's top levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfiSignal {
    /// The venue's id of the book update after which the top levels changed (as `orderbooks.last_update_id`).
    pub update_id: i64,
    /// Weighted OFI of this change, base-asset quantity.
    pub ofi: f64,
    /// Published (smoothed, winsorized) robust z.
    pub ofi_z: Option<f64>,
    /// The scale the z divided by.
    pub scale: Option<f64>,
    /// The scale was ≈ 0 and the z forced to 0.
    pub std_zero: bool,
    pub regime: String,
}

/// `signal_cvd`: the cumulative volume delta after one trade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvdSignal {
    /// The venue's trade id (as `trades.trade_id`).
    pub trade_id: String,
    /// Cumulative signed base quantity since the last reset.
    pub cvd: f64,
    /// This trade's signed base quantity (+ buy aggressor, − sell).
    pub delta: f64,
    /// Winsorized z before EMA smoothing.
    pub z_raw: Option<f64>,
    /// Published z (EMA of `z_raw`).
    pub z_cvd: Option<f64>,
    pub scale: Option<f64>,
    /// `MAD multiplier × MAD` of the baseline.
    pub sigma_floor: Option<f64>,
    /// The MAD floor was the scale.
    pub floor_used: bool,
    pub std_zero: bool,
    pub regime: String,
}

/// `signal_fusion`: `w_ofi·ofi_z + w_cvd·z_cvd` after an OFI or CVD update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FusionSignal {
    /// The input that produced it: `book:{update_id}` or `trade:{trade_id}`.
    pub source: String,
    pub score: f64,
    /// Robust z of the score.
    pub score_z: Option<f64>,
    /// Signal level from `score_z`.
    pub level: Option<String>,
    pub regime: String,
}

/// `signal_events`: one signal event (`reset`, `warmup_done`, `signal_level`, `extreme_z`,
/// `divergence`, `regime_change`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalEvent {
    /// The input that produced it: `book:{update_id}`, `trade:{trade_id}` or
    /// `gap:{data_type}:{start_ms}:{cause}` (the gap that reset the state).
    pub source: String,
    /// Position among the events of that one input, from 0.
    pub seq: i64,
    pub event_type: String,
    /// Details as a JSON object with a fixed key order.
    pub meta_json: String,
}

#[cfg(test)]
mod tests {
    use crate::*;

    fn event(payload: Payload) -> Event {
        Event {
            exchange: Exchange::BinanceDerivatives,
            market_type: MarketType::Perpetual,
            symbol: Symbol::new("BTC-USDT").unwrap(),
            ts_ms: 1_700_000_000_123,
            recv_ts_ms: 1_700_000_000_130,
            payload,
        }
    }

    #[test]
    fn signal_rows_have_subjects_and_ids_from_their_input() {
        let ofi = event(Payload::SignalOfi(OfiSignal {
            update_id: 42,
            ofi: 0.8,
            ofi_z: None,
            scale: None,
            std_zero: false,
            regime: "quiet".into(),
        }));
        assert_eq!(
            ofi.subject(),
            "signal_ofi.binance_derivatives.perpetual.BTC-USDT"
        );
        assert_eq!(
            ofi.msg_id(),
            "signal_ofi.binance_derivatives.perpetual.BTC-USDT:1700000000123:42"
        );
        let ev = event(Payload::SignalEvent(SignalEvent {
            source: "gap:orderbooks:1700000000000:sequence_gap".into(),
            seq: 0,
            event_type: "reset".into(),
            meta_json: r#"{"reason":"book_resync"}"#.into(),
        }));
        assert_eq!(ev.data_type(), DataType::SignalEvents);
        assert_eq!(
            ev.msg_id(),
            "signal_event.binance_derivatives.perpetual.BTC-USDT:1700000000123:gap:orderbooks:1700000000000:sequence_gap:0"
        );
        assert_eq!(subject_of_msg_id(&ev.msg_id()), ev.subject());
    }

    #[test]
    fn floats_survive_json_exactly() {
        let e = event(Payload::SignalCvd(CvdSignal {
            trade_id: "7".into(),
            cvd: 0.1 + 0.2,
            delta: -1e-300,
            z_raw: Some(std::f64::consts::PI),
            z_cvd: None,
            scale: Some(1.0 / 3.0),
            sigma_floor: Some(0.0),
            floor_used: true,
            std_zero: false,
            regime: "active".into(),
        }));
        let back: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
