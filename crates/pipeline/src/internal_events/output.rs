//! Events of the fan-out stage.

use super::InternalEvent;
use marketprism_model::{DataType, Exchange};

/// A normalized event entered the outputs.
pub(crate) struct EventReceived {
    pub exchange: Exchange,
    pub data_type: DataType,
}

impl InternalEvent for EventReceived {
    fn emit(self) {
        metrics::counter!(
            "marketprism_events_in_total",
            "exchange" => self.exchange.as_str(),
            "data_type" => self.data_type.as_str()
        )
        .increment(1);
    }
}

/// An event was dropped because this instance does not hold its shard lock.
pub(crate) struct EventFenced {
    pub data_type: DataType,
}

impl InternalEvent for EventFenced {
    fn emit(self) {
        tracing::debug!(data_type = %self.data_type, "event dropped: instance is fenced");
        metrics::counter!("marketprism_events_fenced_total", "data_type" => self.data_type.as_str())
            .increment(1);
    }
}

/// This instance took the shard lock over: a `handover` gap was recorded for an instrument.
pub(crate) struct HandoverGap {
    pub exchange: Exchange,
}

impl InternalEvent for HandoverGap {
    fn emit(self) {
        tracing::debug!(exchange = %self.exchange, "handover gap recorded");
        metrics::counter!("marketprism_handover_gaps_total", "exchange" => self.exchange.as_str())
            .increment(1);
    }
}
