//! The simulator's internal events (see `marketprism_telemetry`).

pub(crate) use marketprism_telemetry::InternalEvent;

pub(crate) mod simulator;
