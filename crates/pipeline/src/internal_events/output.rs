//! Events of the fan-out stage.

use super::InternalEvent;
use marketprism_model::{DataType, Exchange};

/// The `marketprism_events_in_total` handles of the fan-out, registered on the first event of each
/// exchange and data type: an event costs a small hash lookup, not a registry lookup of its labels.
#[derive(Default)]
pub(crate) struct EventsIn(
    std::collections::HashMap<(Exchange, DataType), metrics::Counter, foldhash::fast::RandomState>,
);

impl EventsIn {
    /// The event of `exchange` and `data_type` that entered the outputs.
    pub(crate) fn received(
        &mut self,
        exchange: Exchange,
        data_type: DataType,
    ) -> EventReceived<'_> {
        let counter = self.0.entry((exchange, data_type)).or_insert_with(|| {
            metrics::counter!(
                "marketprism_events_in_total",
                "exchange" => exchange.as_str(),
                "data_type" => data_type.as_str()
            )
        });
        EventReceived { counter }
    }
}

/// A normalized event entered the outputs (see [`EventsIn`]).
pub(crate) struct EventReceived<'a> {
    counter: &'a metrics::Counter,
}

impl InternalEvent for EventReceived<'_> {
    fn emit(self) {
        self.counter.increment(1);
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
