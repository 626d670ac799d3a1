//! Acceptance criteria per data type: the OFI + CVD harvester's defaults
//! (`shared/reference/seed-systems.md` §B), overridable field by field from a YAML or JSON file.
//!
//! ```yaml
//! defaults:                        # every data type
//!   max_duplicate_ratio: 0.001
//! data_types:
//!   trades: { max_latency_p99_ms: 250 }
//!   orderbooks: { max_empty_minute_ratio: null }   # null switches a criterion off
//! ```

use crate::error::{Error, Result};
use marketprism_model::DataType;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The limits a stream of one data type is held to; `None` is not judged.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Thresholds {
    /// Minutes without a row / whole minutes in the range (harvester: < 0.1 %).
    pub max_empty_minute_ratio: Option<f64>,
    /// Rows repeating an earlier row's natural key / rows (harvester: < 0.5 %).
    pub max_duplicate_ratio: Option<f64>,
    /// Receive − exchange time, ms (harvester: p50 < 60, p99 < 120).
    pub max_latency_p50_ms: Option<f64>,
    pub max_latency_p99_ms: Option<f64>,
    /// Rows per hour of the range (harvester: ≥ 1000 signal events per 72 h).
    pub min_events_per_hour: Option<f64>,
    /// Time inside the stream's gaps / range (ours: the harvester has no such criterion).
    pub max_gap_ratio: Option<f64>,
    /// Rows in the range: a stream the config expects but that wrote nothing fails.
    pub min_rows: Option<u64>,
}

/// The harvester's criteria as marketprism applies them: latency to the streamed venue types, empty
/// minutes and gap time to the continuous streams (not to polled or sporadic ones), events per hour
/// to signal events.
pub(crate) fn default_thresholds(data_type: DataType) -> Thresholds {
    let mut t = Thresholds {
        max_duplicate_ratio: Some(0.005),
        min_rows: Some(1),
        ..Thresholds::default()
    };
    match data_type {
        // Event-driven: an hour without a liquidation is a quiet market, not a fault.
        DataType::Liquidations => t.min_rows = None,
        // Each start polls the ratio history again: copies before `FINAL` are by design (the
        // ReplacingMergeTree keeps one), so every restart would fail them.
        DataType::LsrTopPositions | DataType::LsrAllAccounts => t.max_duplicate_ratio = None,
        // The harvester measured latency on its trades (`prices`); a book row's receive time is that of
        // the update that made a snapshot due, so its latency is reported, not judged, by default.
        DataType::Trades => {
            t.max_empty_minute_ratio = Some(0.001);
            t.max_latency_p50_ms = Some(60.0);
            t.max_latency_p99_ms = Some(120.0);
            t.max_gap_ratio = Some(0.01);
        }
        DataType::Orderbooks => {
            t.max_empty_minute_ratio = Some(0.001);
            t.max_gap_ratio = Some(0.01);
        }
        DataType::SignalOfi | DataType::SignalCvd | DataType::SignalFusion => {
            t.max_empty_minute_ratio = Some(0.001);
        }
        DataType::SignalEvents => t.min_events_per_hour = Some(1000.0 / 72.0),
        _ => {}
    }
    t
}

/// Criteria for every data type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criteria {
    pub per_type: BTreeMap<DataType, Thresholds>,
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            per_type: DataType::ALL
                .iter()
                .map(|&dt| (dt, default_thresholds(dt)))
                .collect(),
        }
    }
}

impl Criteria {
    pub fn for_type(&self, data_type: DataType) -> Thresholds {
        self.per_type
            .get(&data_type)
            .copied()
            .unwrap_or_else(|| default_thresholds(data_type))
    }

    /// The defaults with a criteria file's overrides (YAML or JSON); an unknown field or data type
    /// is an error naming it.
    pub fn from_file_text(text: &str, origin: &str) -> Result<Criteria> {
        let file: CriteriaFile = serde_yaml::from_str(text).map_err(|e| Error::Criteria {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        let bad = |reason: String| Error::Criteria {
            origin: origin.to_string(),
            reason,
        };
        file.defaults.check("defaults").map_err(bad)?;
        let mut criteria = Criteria::default();
        for t in criteria.per_type.values_mut() {
            file.defaults.apply(t);
        }
        for (name, overrides) in &file.data_types {
            let dt = DataType::parse(name)
                .filter(|d| *d != DataType::Gaps)
                .ok_or_else(|| {
                    bad(format!(
                        "data_types.{name}: not a data type with rows to judge; allowed: {}",
                        DataType::ALL
                            .iter()
                            .filter(|d| **d != DataType::Gaps)
                            .map(|d| d.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            overrides
                .check(&format!("data_types.{name}"))
                .map_err(bad)?;
            let t = criteria.per_type.entry(dt).or_default();
            overrides.apply(t);
        }
        Ok(criteria)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CriteriaFile {
    #[serde(default)]
    defaults: Overrides,
    #[serde(default)]
    data_types: BTreeMap<String, Overrides>,
}

/// Absent: keep; `null`: switch off; a value: replace.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    #[serde(default, deserialize_with = "present")]
    max_empty_minute_ratio: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    max_duplicate_ratio: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    max_latency_p50_ms: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    max_latency_p99_ms: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    min_events_per_hour: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    max_gap_ratio: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    min_rows: Option<Option<u64>>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl Overrides {
    /// Every limit given is a finite number ≥ 0, and ratios are at most 1.
    fn check(&self, at: &str) -> std::result::Result<(), String> {
        let ratios = [
            ("max_empty_minute_ratio", self.max_empty_minute_ratio),
            ("max_duplicate_ratio", self.max_duplicate_ratio),
            ("max_gap_ratio", self.max_gap_ratio),
        ];
        let amounts = [
            ("max_latency_p50_ms", self.max_latency_p50_ms),
            ("max_latency_p99_ms", self.max_latency_p99_ms),
            ("min_events_per_hour", self.min_events_per_hour),
        ];
        for (name, value, max) in ratios
            .iter()
            .map(|(n, v)| (n, v, 1.0))
            .chain(amounts.iter().map(|(n, v)| (n, v, f64::MAX)))
        {
            if let Some(Some(v)) = value
                && !(v.is_finite() && (0.0..=max).contains(v))
            {
                let allowed = if max == 1.0 {
                    "0 to 1"
                } else {
                    "a number ≥ 0"
                };
                return Err(format!(
                    "{at}.{name}: {v} is not allowed; give {allowed} (or null: off)"
                ));
            }
        }
        Ok(())
    }

    fn apply(&self, t: &mut Thresholds) {
        fn set<T: Copy>(slot: &mut Option<T>, o: Option<Option<T>>) {
            if let Some(v) = o {
                *slot = v;
            }
        }
        set(&mut t.max_empty_minute_ratio, self.max_empty_minute_ratio);
        set(&mut t.max_duplicate_ratio, self.max_duplicate_ratio);
        set(&mut t.max_latency_p50_ms, self.max_latency_p50_ms);
        set(&mut t.max_latency_p99_ms, self.max_latency_p99_ms);
        set(&mut t.min_events_per_hour, self.min_events_per_hour);
        set(&mut t.max_gap_ratio, self.max_gap_ratio);
        set(&mut t.min_rows, self.min_rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_harvesters() {
        let c = Criteria::default();
        let trades = c.for_type(DataType::Trades);
        assert_eq!(trades.max_empty_minute_ratio, Some(0.001));
        assert_eq!(trades.max_duplicate_ratio, Some(0.005));
        assert_eq!(trades.max_latency_p50_ms, Some(60.0));
        assert_eq!(trades.max_latency_p99_ms, Some(120.0));
        let events = c.for_type(DataType::SignalEvents);
        assert!((events.min_events_per_hour.unwrap() * 72.0 - 1000.0).abs() < 1e-9);
        // Polled types are not judged by empty minutes: they report every few minutes.
        assert_eq!(
            c.for_type(DataType::LsrAllAccounts).max_empty_minute_ratio,
            None
        );
    }

    #[test]
    fn a_file_overrides_field_by_field_and_null_switches_off() {
        let c = Criteria::from_file_text(
            "defaults: {max_duplicate_ratio: 0.01}\n\
             data_types:\n  trades: {max_latency_p99_ms: 250, max_empty_minute_ratio: null}\n",
            "test",
        )
        .unwrap();
        let trades = c.for_type(DataType::Trades);
        assert_eq!(trades.max_latency_p99_ms, Some(250.0));
        assert_eq!(trades.max_latency_p50_ms, Some(60.0));
        assert_eq!(trades.max_empty_minute_ratio, None);
        assert_eq!(
            c.for_type(DataType::Orderbooks).max_duplicate_ratio,
            Some(0.01)
        );
    }

    #[test]
    fn unknown_fields_and_types_are_named() {
        let e = Criteria::from_file_text("data_types: {trades: {max_latncy_p99_ms: 1}}", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.yaml") && e.contains("max_latncy_p99_ms"),
            "{e}"
        );
        let e = Criteria::from_file_text("data_types: {trade: {min_rows: 1}}", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_types.trade") && e.contains("trades"),
            "{e}"
        );
    }
}
