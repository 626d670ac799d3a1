//! `outputs.parquet`: local Parquet files.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParquetConfig {
    pub dir: PathBuf,
    /// Milliseconds between flushes: the most a kill -9 can lose.
    pub flush_interval_ms: u64,
    /// Rows per partition that force a flush before the interval.
    pub max_rows: usize,
    /// Rows kept in memory, all partitions together, while writes fail (read-only or full disk);
    /// beyond it events are dropped, counted, and recorded as `overflow` gaps once writes succeed.
    /// The default, 200 000 rows, took ~65 MB (measured: README), inside a 256 MiB pod limit; in
    /// effect never less than `max_rows` (one partition's flush).
    pub max_buffered_rows: usize,
    /// Merging of closed hours' small files into one file per partition and hour.
    pub compact: ParquetCompactConfig,
    /// Days of `date=` partitions kept besides today (UTC); older whole days are deleted by the
    /// compaction pass. 0 keeps everything.
    pub retention_days: u32,
}

/// `outputs.parquet.compact`: the periodic compaction inside the Parquet output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParquetCompactConfig {
    pub enabled: bool,
    /// Seconds between compaction passes (the first one runs one interval after start).
    pub interval_s: u64,
    /// Seconds after an hour ends (UTC, by event time) before its files are merged, for late flushes.
    pub grace_s: u64,
}

impl Default for ParquetCompactConfig {
    fn default() -> Self {
        ParquetCompactConfig {
            enabled: true,
            interval_s: 300,
            grace_s: 120,
        }
    }
}

impl Default for ParquetConfig {
    fn default() -> Self {
        ParquetConfig {
            dir: PathBuf::from("data"),
            flush_interval_ms: 5_000,
            max_rows: 100_000,
            max_buffered_rows: 200_000,
            compact: ParquetCompactConfig::default(),
            retention_days: 0,
        }
    }
}

impl ParquetConfig {
    /// `max_buffered_rows`, at least `max_rows`.
    pub fn effective_max_buffered_rows(&self) -> usize {
        self.max_buffered_rows.max(self.max_rows).max(1)
    }

    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("{at}.{f}"),
                reason: reason.to_owned(),
            })
        };
        if self.flush_interval_ms == 0 {
            return invalid("flush_interval_ms", "must be at least 1");
        }
        if self.max_rows == 0 {
            return invalid("max_rows", "must be at least 1");
        }
        if self.max_buffered_rows == 0 {
            return invalid("max_buffered_rows", "must be at least 1");
        }
        if self.compact.enabled && self.compact.interval_s == 0 {
            return invalid("compact.interval_s", "must be at least 1 (seconds)");
        }
        if self.compact.grace_s > 86_400 {
            return invalid("compact.grace_s", "must be at most 86400 (seconds)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_holds_at_least_one_flush_and_is_never_zero() {
        let ok = ParquetConfig::default();
        assert!(ok.validate("outputs.parquet").is_ok());
        let small = ParquetConfig {
            max_buffered_rows: 10,
            ..ok.clone()
        };
        assert!(small.validate("outputs.parquet").is_ok());
        assert_eq!(small.effective_max_buffered_rows(), 100_000, "max_rows");
        let zero = ParquetConfig {
            max_buffered_rows: 0,
            ..ok
        };
        match zero.validate("outputs.parquet") {
            Err(ConfigError::Invalid { field, reason }) => {
                assert_eq!(field, "outputs.parquet.max_buffered_rows");
                assert!(reason.contains("at least 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_compaction_settings_name_their_field() {
        let yaml = "dir: d\ncompact: {enabled: true, interval_s: 0}\nretention_days: 7\n";
        let c: ParquetConfig = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(c.retention_days, 7);
        assert_eq!(c.compact.grace_s, 120, "default");
        match c.validate("outputs.parquet") {
            Err(ConfigError::Invalid { field, .. }) => {
                assert_eq!(field, "outputs.parquet.compact.interval_s")
            }
            other => panic!("{other:?}"),
        }
        let off = ParquetConfig {
            compact: ParquetCompactConfig {
                enabled: false,
                interval_s: 0,
                grace_s: 0,
            },
            ..ParquetConfig::default()
        };
        assert!(off.validate("outputs.parquet").is_ok());
        let unknown = serde_yaml::from_str::<ParquetConfig>("compact: {intervall_s: 5}\n");
        assert!(unknown.unwrap_err().to_string().contains("intervall_s"));
    }
}
