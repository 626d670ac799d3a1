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
}

impl Default for ParquetConfig {
    fn default() -> Self {
        ParquetConfig {
            dir: PathBuf::from("data"),
            flush_interval_ms: 5_000,
            max_rows: 100_000,
        }
    }
}

impl ParquetConfig {
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
        Ok(())
    }
}
