//! `lease:`: the shard's instance lock (set by the operator; absent for local runs).

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

/// Annotation on the shard Lease in which its holder says which of its components are not ready and
/// why: a JSON object `{component: reason}` (e.g. `{"instruments:binance_spot":"not listed by the
/// venue: BNB-XYZ"}`), absent when all are ready. The collector writes it with every renewal; the
/// operator reads it into the CollectorSet status. One definition for both sides.
pub const NOT_READY_ANNOTATION: &str = "marketprism.io/not-ready";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    #[serde(default = "default_lease_duration_s")]
    pub duration_s: u64,
    /// Holder identity; the pod name (from `POD_NAME`) when empty.
    #[serde(default)]
    pub holder: String,
}

fn default_lease_duration_s() -> u64 {
    15
}

impl LeaseConfig {
    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        if self.duration_s < 3 {
            return Err(ConfigError::Invalid {
                field: format!("{at}.duration_s"),
                reason: "must be at least 3".to_owned(),
            });
        }
        Ok(())
    }
}
