//! `collector:`: this instance's name, run length, channel size and the synthetic source.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// The longest `collector.wake_coalesce_ms`: beyond it a frame's receive time says little.
pub const MAX_WAKE_COALESCE_MS: u64 = 50;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSection {
    /// Stable name of this collector instance (pod name in Kubernetes); used in logs and Parquet file names.
    pub instance_id: String,
    /// Stop after this many seconds (demo runs); run until a signal when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
    /// Capacity of the bounded channel between connectors and outputs.
    pub channel_capacity: usize,
    /// Async runtime threads of `run`: 1 runs every task on the main thread (a current-thread
    /// runtime: no cross-thread wake-ups; Parquet encoding and file writes still go to the blocking
    /// pool), n ≥ 2 a multi-thread runtime with n workers, 0 one worker per CPU core.
    pub worker_threads: usize,
    /// Wake-up coalescing, ms (0: off, at most [`MAX_WAKE_COALESCE_MS`]): each time the runtime runs
    /// out of work it first sleeps this long, so frames that arrive meanwhile are read in one wake-up
    /// (interrupt moderation). Costs up to this much latency and receive-time (`recv_ts_ms`) lateness
    /// per frame and delays timers as much; saves CPU at high rates (see the README's benchmarks).
    pub wake_coalesce_ms: u64,
    /// A deterministic synthetic event source (all 8 data types and gaps), for tests and benchmarks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub synthetic: Option<SyntheticConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    pub seed: u64,
    /// Events per second (all types together).
    pub rate_per_s: u64,
    /// Stop producing after this many events; endless when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Default for CollectorSection {
    fn default() -> Self {
        CollectorSection {
            instance_id: "local".into(),
            duration_s: None,
            channel_capacity: 65_536,
            worker_threads: 1,
            wake_coalesce_ms: 0,
            synthetic: None,
        }
    }
}

impl CollectorSection {
    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("{at}.{f}"),
                reason: reason.to_owned(),
            })
        };
        if self.channel_capacity == 0 {
            return invalid("channel_capacity", "must be at least 1");
        }
        if self.worker_threads > 256 {
            return invalid("worker_threads", "must be at most 256");
        }
        if self.wake_coalesce_ms > MAX_WAKE_COALESCE_MS {
            return invalid(
                "wake_coalesce_ms",
                &format!("must be between 0 (off) and {MAX_WAKE_COALESCE_MS}"),
            );
        }
        if let Some(syn) = &self.synthetic
            && syn.rate_per_s == 0
        {
            return invalid("synthetic.rate_per_s", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn run_defaults_to_one_runtime_thread_and_bounds_the_knob() {
        let config = Config::from_yaml("collector: {instance_id: x}\n").unwrap();
        assert_eq!(config.collector.worker_threads, 1);
        let many = Config::from_yaml("collector: {worker_threads: 4}\n").unwrap();
        assert_eq!(many.collector.worker_threads, 4);
        assert!(many.validate().is_ok());
        let err = Config::from_yaml("collector: {worker_threads: 1000}\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("collector.worker_threads"), "{err}");
    }

    #[test]
    fn wake_coalescing_is_off_by_default_and_bounded() {
        let config = Config::from_yaml("collector: {instance_id: x}\n").unwrap();
        assert_eq!(config.collector.wake_coalesce_ms, 0);
        let on = Config::from_yaml("collector: {wake_coalesce_ms: 5}\n").unwrap();
        assert_eq!(on.collector.wake_coalesce_ms, 5);
        assert!(on.validate().is_ok());
        let err = Config::from_yaml("collector: {wake_coalesce_ms: 51}\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("collector.wake_coalesce_ms") && err.contains("between 0 (off) and 50"),
            "{err}"
        );
    }
}
