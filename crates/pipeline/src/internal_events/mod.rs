//! The pipeline's internal events (see `marketprism_telemetry`): one file per area.

pub(crate) use marketprism_telemetry::{InternalEvent, emit};

pub(crate) mod lease;
pub(crate) mod output;
pub(crate) mod publish;
pub(crate) mod sink;
pub(crate) mod store;
