//! Rows of the 4 signal tables (`signal_ofi`, `signal_cvd`, `signal_fusion`, `signal_events`):
//! floats as `Float64`, flags as `UInt8` (RowBinary `bool`), labels as strings.

use super::*;

table_row!(
    /// `signal_ofi`: OFI per change of a book's top levels.
    SignalOfiRow, DataType::SignalOfi, SignalOfi(o) => OfiSignal,
    { update_id: i64, ofi: f64, ofi_z: Option<f64>, scale: Option<f64>, std_zero: bool, regime: String },
    from |e| {
        let OfiSignal { update_id, ofi, ofi_z, scale, std_zero, regime } = o.clone();
    },
    to |r| OfiSignal {
        update_id: r.update_id,
        ofi: r.ofi,
        ofi_z: r.ofi_z,
        scale: r.scale,
        std_zero: r.std_zero,
        regime: r.regime.clone(),
    }
);

table_row!(
    /// `signal_cvd`: CVD per trade.
    SignalCvdRow, DataType::SignalCvd, SignalCvd(c) => CvdSignal,
    {
        trade_id: String, cvd: f64, delta: f64, z_raw: Option<f64>, z_cvd: Option<f64>,
        scale: Option<f64>, sigma_floor: Option<f64>, floor_used: bool, std_zero: bool, regime: String,
    },
    from |e| {
        let CvdSignal { trade_id, cvd, delta, z_raw, z_cvd, scale, sigma_floor, floor_used, std_zero, regime } = c.clone();
    },
    to |r| CvdSignal {
        trade_id: r.trade_id.clone(),
        cvd: r.cvd,
        delta: r.delta,
        z_raw: r.z_raw,
        z_cvd: r.z_cvd,
        scale: r.scale,
        sigma_floor: r.sigma_floor,
        floor_used: r.floor_used,
        std_zero: r.std_zero,
        regime: r.regime.clone(),
    }
);

table_row!(
    /// `signal_fusion`: fusion score after an OFI or CVD update.
    SignalFusionRow, DataType::SignalFusion, SignalFusion(f) => FusionSignal,
    { source: String, score: f64, score_z: Option<f64>, level: Option<String>, regime: String },
    from |e| {
        let FusionSignal { source, score, score_z, level, regime } = f.clone();
    },
    to |r| FusionSignal {
        source: r.source.clone(),
        score: r.score,
        score_z: r.score_z,
        level: r.level.clone(),
        regime: r.regime.clone(),
    }
);

table_row!(
    /// `signal_events`: one signal event.
    SignalEventRow, DataType::SignalEvents, SignalEvent(v) => SignalEvent,
    { source: String, seq: i64, event_type: String, meta_json: String },
    from |e| {
        let SignalEvent { source, seq, event_type, meta_json } = v.clone();
    },
    to |r| SignalEvent {
        source: r.source.clone(),
        seq: r.seq,
        event_type: r.event_type.clone(),
        meta_json: r.meta_json.clone(),
    }
);
