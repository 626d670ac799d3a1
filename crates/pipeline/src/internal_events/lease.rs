//! Events of the shard lock (`lease/`).

use super::InternalEvent;
use crate::lease::Role;

/// This pod became active, standby, or lost track of the Lease.
pub(crate) struct LeaseRoleChanged<'a> {
    pub lease: &'a str,
    pub holder: &'a str,
    pub role: Role,
}

impl InternalEvent for LeaseRoleChanged<'_> {
    fn emit(self) {
        let role = match self.role {
            Role::Active => "active",
            Role::Standby => "standby",
            Role::Unknown => "unknown",
        };
        tracing::info!(
            lease = self.lease,
            identity = self.holder,
            role,
            "shard lock role changed"
        );
        metrics::counter!("marketprism_lease_role_changes_total", "role" => role).increment(1);
    }
}

/// Reading or writing the Lease failed; the state machine decides whether that costs the hold.
pub(crate) struct LeaseWriteFailed<'a> {
    pub lease: &'a str,
    pub reason: &'a str,
}

impl InternalEvent for LeaseWriteFailed<'_> {
    fn emit(self) {
        tracing::warn!(
            lease = self.lease,
            reason = self.reason,
            "shard lock API call failed"
        );
        metrics::counter!("marketprism_lease_errors_total").increment(1);
    }
}
