//! `lease:`: the shard's instance lock (set by the operator; absent for local runs).

use crate::error::ConfigError;
use serde::{Deserialize, Serialize};

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
