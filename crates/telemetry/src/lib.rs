//! What every marketprism crate shares to report itself:
//!
//! - **internal events**, Vector style: one struct per thing that happens, whose `emit` both logs and
//!   counts. Call sites build the struct and call `.emit()`; the log line and the metric live together,
//!   so they cannot drift apart. Each crate keeps the events of its area in its own `internal_events`
//!   module (one file per area) and implements [`InternalEvent`] from here.
//! - **readiness**: [`Health`], a set of named components each ready or not with a reason
//!   (`/readyz` is served by the collector binary).
#![forbid(unsafe_code)]

mod health;

pub use health::{Health, ReadinessGuard, Status};

/// Something worth a log line and a metric.
pub trait InternalEvent: Sized {
    fn emit(self);
}

/// Shorthand: `emit(SomeEvent { .. })`.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}
