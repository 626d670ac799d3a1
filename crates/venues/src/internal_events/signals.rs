//! Internal events of the signals stage: the scale each symbol's z-scores divide by, and how often
//! the CVD z-score's scale was the MAD floor (hybrid scale mode) rather than the blended std.

use super::InternalEvent;
use marketprism_model::{Exchange, Symbol};
use marketprism_signals::Output;
use metrics::{Counter, Gauge};

/// One signals symbol's metric handles, registered when its engine is built (rows are per input).
pub(crate) struct SignalMeter {
    ofi_scale: Gauge,
    cvd_scale: Gauge,
    ofi_z_rows: Counter,
    cvd_z_rows: Counter,
    cvd_floor_hits: Counter,
}

impl SignalMeter {
    /// `marketprism_signal_scale{exchange,symbol,signal}` (gauge, the OFI's or CVD's last scale, in
    /// the stream's unit: base-asset quantity), `marketprism_signal_z_rows_total{…,signal}` (rows
    /// with a z) and `marketprism_signal_floor_hits_total{…,signal="cvd"}` (CVD rows whose scale was
    /// the floor `mad_multiplier × MAD`; the engine's OFI rows carry no floor flag).
    pub(crate) fn new(exchange: Exchange, symbol: &Symbol) -> SignalMeter {
        let (e, s) = (exchange.as_str(), symbol.as_str());
        let scale = |signal: &'static str| metrics::gauge!("marketprism_signal_scale", "exchange" => e, "symbol" => s.to_owned(), "signal" => signal);
        let rows = |signal: &'static str| metrics::counter!("marketprism_signal_z_rows_total", "exchange" => e, "symbol" => s.to_owned(), "signal" => signal);
        SignalMeter {
            ofi_scale: scale("ofi"),
            cvd_scale: scale("cvd"),
            ofi_z_rows: rows("ofi"),
            cvd_z_rows: rows("cvd"),
            cvd_floor_hits: metrics::counter!(
                "marketprism_signal_floor_hits_total",
                "exchange" => e,
                "symbol" => s.to_owned(),
                "signal" => "cvd"
            ),
        }
    }
}

/// One engine output of a signals symbol: its rows' scales and floor use are counted (no log line:
/// one per book change or trade; resets are logged by the rows they produce).
pub(crate) struct SignalRowsComputed<'a> {
    pub meter: &'a SignalMeter,
    pub out: &'a Output,
}

impl InternalEvent for SignalRowsComputed<'_> {
    fn emit(self) {
        let m = self.meter;
        if let Some(o) = &self.out.ofi
            && o.ofi_z.is_some()
        {
            m.ofi_z_rows.increment(1);
            if let Some(scale) = o.scale {
                m.ofi_scale.set(scale);
            }
        }
        if let Some(c) = &self.out.cvd
            && c.z_cvd.is_some()
        {
            m.cvd_z_rows.increment(1);
            if c.floor_used {
                m.cvd_floor_hits.increment(1);
            }
            if let Some(scale) = c.scale {
                m.cvd_scale.set(scale);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_signals::{CvdRow, OfiRow, Regime};

    fn cvd(z: Option<f64>, scale: Option<f64>, floor_used: bool) -> Output {
        Output {
            cvd: Some(CvdRow {
                ts_ms: 1,
                cvd: 1.0,
                delta: 1.0,
                z_raw: z,
                z_cvd: z,
                scale,
                sigma_floor: scale,
                floor_used,
                std_zero: false,
                regime: Regime::Quiet,
            }),
            ..Output::default()
        }
    }

    fn ofi(z: Option<f64>, scale: Option<f64>) -> Output {
        Output {
            ofi: Some(OfiRow {
                ts_ms: 1,
                ofi: 1.0,
                ofi_z: z,
                scale,
                std_zero: false,
                regime: Regime::Quiet,
            }),
            ..Output::default()
        }
    }

    fn value(text: &str, name: &str, signal: &str) -> Option<f64> {
        let signal = format!("signal=\"{signal}\"");
        text.lines()
            .filter(|l| {
                l.starts_with(name) && l.contains("symbol=\"BTC-USDT\"") && l.contains(&signal)
            })
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
    }

    #[test]
    fn floor_hits_count_against_rows_with_a_z_and_scales_follow_the_last_row() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            let meter = SignalMeter::new(
                Exchange::BinanceDerivatives,
                &Symbol::new("BTC-USDT").unwrap(),
            );
            let outputs = [
                cvd(None, None, false), // warm-up: no z, not a z row
                cvd(Some(0.5), Some(2.0), true),
                cvd(Some(-1.0), Some(3.0), false),
                cvd(Some(2.0), Some(1.5), true),
                ofi(None, None),
                ofi(Some(0.1), Some(7.0)),
                Output::default(), // a gap's reset: nothing
            ];
            for out in &outputs {
                SignalRowsComputed { meter: &meter, out }.emit();
            }
        });
        let text = handle.render();
        assert_eq!(
            value(&text, "marketprism_signal_z_rows_total", "cvd"),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            value(&text, "marketprism_signal_floor_hits_total", "cvd"),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "marketprism_signal_z_rows_total", "ofi"),
            Some(1.0)
        );
        assert_eq!(value(&text, "marketprism_signal_scale", "cvd"), Some(1.5));
        assert_eq!(value(&text, "marketprism_signal_scale", "ofi"), Some(7.0));
    }
}
