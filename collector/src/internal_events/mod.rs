//! Internal events, Vector style: one struct per thing that happens, whose `emit` both logs and counts.
//!
//! Call sites build the struct and call `.emit()`; the log line and the metric live together here,
//! so they cannot drift apart. One file per area of the data path.

pub mod exchanges;
pub mod lease;
pub mod output;
pub mod publish;
pub mod sink;
pub mod store;
pub mod streams;

/// Something worth a log line and a metric.
pub trait InternalEvent: Sized {
    fn emit(self);
}

/// Shorthand: `emit(SomeEvent { .. })`.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}

pub mod simulator;
