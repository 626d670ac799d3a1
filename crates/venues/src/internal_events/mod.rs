//! The venues' internal events (see `marketprism_telemetry`): one file per area.

pub(crate) use marketprism_telemetry::InternalEvent;

pub(crate) mod exchanges;
pub mod frames;
pub(crate) mod observe;
pub(crate) mod signals;
pub(crate) mod streams;
