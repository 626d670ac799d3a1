//! Probes and metrics: `/livez`, `/readyz`, `/metrics` on one HTTP port.

mod health;

pub use health::{Health, ReadinessGuard};
