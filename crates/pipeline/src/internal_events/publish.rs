//! Events of the JetStream publisher (`publish/`).

use super::InternalEvent;
use marketprism_model::DataType;

/// JetStream stored (or deduplicated) published events: counted per data type when acked.
pub(crate) struct EventsPublished {
    pub data_type: DataType,
    pub count: u64,
    /// Acks with `duplicate: true`: the stream already had this `Nats-Msg-Id` (a retry or a second collector).
    pub duplicates: u64,
}

impl InternalEvent for EventsPublished {
    fn emit(self) {
        let dt = self.data_type.as_str();
        metrics::counter!("marketprism_publish_events_out_total", "data_type" => dt)
            .increment(self.count);
        metrics::counter!("marketprism_publish_acks_total").increment(self.count);
        if self.duplicates > 0 {
            metrics::counter!("marketprism_publish_duplicate_acks_total", "data_type" => dt)
                .increment(self.duplicates);
        }
    }
}

/// A publish or its ack failed; the event goes back to the buffer and is retried with the same id.
pub(crate) struct PublishFailed<'a> {
    pub subject: &'a str,
    pub error: &'a str,
}

impl InternalEvent for PublishFailed<'_> {
    fn emit(self) {
        tracing::debug!(
            subject = self.subject,
            error = self.error,
            "publish failed; will retry"
        );
        metrics::counter!("marketprism_publish_errors_total").increment(1);
    }
}

/// Events dropped because NATS was unreachable (`nats_unreachable`) or their stream refused publishes
/// (`stream_refused`) and the buffer was full. Never silent: also a gap.
pub(crate) struct EventsDropped {
    pub data_type: DataType,
    pub count: u64,
    pub reason: &'static str,
}

impl InternalEvent for EventsDropped {
    fn emit(self) {
        tracing::warn!(
            data_type = %self.data_type,
            count = self.count,
            reason = self.reason,
            "publisher dropped events"
        );
        metrics::counter!(
            "marketprism_publish_dropped_total",
            "data_type" => self.data_type.as_str(),
            "reason" => self.reason
        )
        .increment(self.count);
    }
}

/// A stream started refusing publishes (at its limits with `discard: new`, or out of storage): its
/// events are held, the publisher is not ready, and drops beyond the buffer become overflow gaps.
pub(crate) struct StreamRefusing<'a> {
    pub stream: &'a str,
    pub error: &'a str,
}

impl InternalEvent for StreamRefusing<'_> {
    fn emit(self) {
        tracing::warn!(
            stream = self.stream,
            error = self.error,
            "JetStream stream refuses publishes; holding its events (size the stream: README, JetStream limits)"
        );
        metrics::counter!("marketprism_publish_stream_refusals_total", "stream" => self.stream.to_owned())
            .increment(1);
    }
}

/// Events dropped unsent because this instance lost (or never held) its shard lock.
pub(crate) struct PublishFenced {
    pub events: usize,
}

impl InternalEvent for PublishFenced {
    fn emit(self) {
        if self.events > 1 {
            tracing::warn!(
                events = self.events,
                "shard lock lost: dropping the events buffered for NATS, unsent"
            );
        }
        metrics::counter!("marketprism_publish_fenced_total").increment(self.events as u64);
    }
}

/// Overflow gap events were queued for the subjects that lost events.
pub(crate) struct OverflowGapsQueued {
    pub gaps: usize,
    pub dropped: u64,
}

impl InternalEvent for OverflowGapsQueued {
    fn emit(self) {
        tracing::warn!(
            gaps = self.gaps,
            dropped = self.dropped,
            "recording overflow gaps for events dropped while NATS was unreachable"
        );
        metrics::counter!("marketprism_publish_overflow_gaps_total").increment(self.gaps as u64);
    }
}

/// Sampled publisher state: acks awaited and events buffered.
pub(crate) struct PublisherState {
    pub in_flight: usize,
    pub buffered: usize,
}

impl InternalEvent for PublisherState {
    fn emit(self) {
        metrics::gauge!("marketprism_publish_in_flight").set(self.in_flight as f64);
        metrics::gauge!("marketprism_publish_buffered").set(self.buffered as f64);
    }
}

/// The connection to NATS changed state.
pub(crate) struct NatsConnection<'a> {
    pub role: &'static str,
    pub state: &'a str,
}

impl InternalEvent for NatsConnection<'_> {
    fn emit(self) {
        tracing::info!(role = self.role, state = self.state, "NATS connection");
        metrics::counter!(
            "marketprism_nats_connection_events_total",
            "role" => self.role,
            "state" => self.state.to_owned()
        )
        .increment(1);
    }
}

/// A JetStream stream was created or updated to the configured limits.
pub(crate) struct StreamEnsured<'a> {
    pub name: &'a str,
    pub subjects: &'a [String],
}

impl InternalEvent for StreamEnsured<'_> {
    fn emit(self) {
        tracing::info!(stream = self.name, subjects = ?self.subjects, "JetStream stream ready");
    }
}
