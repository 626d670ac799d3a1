//! Readiness as a set of named components (e.g. `nats`, `clickhouse`, `lease`, `binance_spot`),
//! each reporting ready or not with a reason. `/readyz` is 200 only when every registered one is ready.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<String, Status>>>,
    /// The last status of components that went away (a connection task that ended): what a run's
    /// summary reports when it explains why a stream never delivered.
    retired: Arc<Mutex<BTreeMap<String, Status>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub ready: bool,
    pub reason: String,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// Register a component (not ready until it says so) and get a handle to report through.
    pub fn register(&self, component: &str) -> ReadinessGuard {
        self.set(component, false, "starting");
        ReadinessGuard {
            health: self.clone(),
            component: component.to_owned(),
        }
    }

    pub fn set(&self, component: &str, ready: bool, reason: &str) {
        let mut map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let status = map.entry(component.to_owned()).or_insert_with(|| Status {
            ready: !ready,
            reason: String::new(),
        });
        if status.ready != ready || status.reason != reason {
            *status = Status {
                ready,
                reason: reason.to_owned(),
            };
            metrics::gauge!("marketprism_component_ready", "component" => component.to_owned())
                .set(if ready { 1.0 } else { 0.0 });
        }
    }

    /// True when every registered component is ready (and at least one is registered).
    pub fn is_ready(&self) -> bool {
        let map = self.components.lock().unwrap_or_else(|e| e.into_inner());
        !map.is_empty() && map.values().all(|s| s.ready)
    }

    pub fn snapshot(&self) -> BTreeMap<String, Status> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every component's last status: the registered ones as now, and those that went away as they
    /// were when they did.
    pub fn last_statuses(&self) -> BTreeMap<String, Status> {
        let mut all = self
            .retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        all.extend(self.snapshot());
        all
    }
}

/// A component's handle on its own readiness. Dropping it removes the component.
#[derive(Debug)]
pub struct ReadinessGuard {
    health: Health,
    component: String,
}

impl ReadinessGuard {
    pub fn ready(&self) {
        self.health.set(&self.component, true, "ok");
    }

    pub fn not_ready(&self, reason: &str) {
        self.health.set(&self.component, false, reason);
    }
}

impl Drop for ReadinessGuard {
    fn drop(&mut self) {
        let removed = self
            .health
            .components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.component);
        if let Some(status) = removed {
            self.health
                .retired
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(self.component.clone(), status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_component_is() {
        let h = Health::new();
        assert!(!h.is_ready(), "nothing registered is not ready");
        let nats = h.register("nats");
        let ch = h.register("clickhouse");
        nats.ready();
        assert!(!h.is_ready());
        ch.ready();
        assert!(h.is_ready());
        ch.not_ready("connection refused");
        assert!(!h.is_ready());
        assert_eq!(h.snapshot()["clickhouse"].reason, "connection refused");
        drop(ch);
        assert!(h.is_ready());
        assert_eq!(
            h.last_statuses()["clickhouse"].reason,
            "connection refused",
            "a component that went away keeps its last word"
        );
    }
}
