//! Events of the JetStream → ClickHouse sink (`sink/`).

use super::InternalEvent;
use marketprism_model::DataType;
use std::time::Duration;

/// A batch was inserted and its messages acked.
pub(crate) struct BatchInserted {
    pub data_type: DataType,
    pub rows: usize,
    /// Messages acked: rows plus redeliveries folded into them.
    pub messages: usize,
    pub insert_time: Duration,
    pub attempts: u32,
}

impl InternalEvent for BatchInserted {
    fn emit(self) {
        let dt = self.data_type.as_str();
        tracing::debug!(
            data_type = dt,
            rows = self.rows,
            messages = self.messages,
            insert_ms = self.insert_time.as_millis() as u64,
            attempts = self.attempts,
            "sink batch inserted"
        );
        metrics::counter!("marketprism_sink_rows_inserted_total", "data_type" => dt)
            .increment(self.rows as u64);
        metrics::counter!("marketprism_sink_messages_acked_total", "data_type" => dt)
            .increment(self.messages as u64);
        metrics::histogram!("marketprism_sink_batch_rows", "data_type" => dt)
            .record(self.rows as f64);
        metrics::histogram!("marketprism_sink_insert_seconds", "data_type" => dt)
            .record(self.insert_time.as_secs_f64());
    }
}

/// An insert failed; the batch is held (unacked) and retried after `retry_in`.
pub(crate) struct InsertRetryScheduled<'a> {
    pub data_type: DataType,
    pub rows: usize,
    pub attempt: u32,
    pub retry_in: Duration,
    pub error: &'a str,
}

impl InternalEvent for InsertRetryScheduled<'_> {
    fn emit(self) {
        tracing::warn!(
            data_type = %self.data_type,
            rows = self.rows,
            attempt = self.attempt,
            retry_in_ms = self.retry_in.as_millis() as u64,
            error = self.error,
            "ClickHouse insert failed; holding the batch unacked and retrying"
        );
        metrics::counter!("marketprism_sink_insert_retries_total", "data_type" => self.data_type.as_str())
            .increment(1);
    }
}

/// Messages delivered more than once (JetStream `delivered > 1`).
pub(crate) struct Redelivered {
    pub data_type: DataType,
    pub count: u64,
}

impl InternalEvent for Redelivered {
    fn emit(self) {
        metrics::counter!("marketprism_sink_redeliveries_total", "data_type" => self.data_type.as_str())
            .increment(self.count);
    }
}

/// Messages left unacked while their type's inserts fail and its next batch is full (`max_rows`):
/// JetStream redelivers them after `ack_wait`, so the sink's memory stays bounded in rows however
/// many events a message holds.
pub(crate) struct Deferred {
    pub data_type: DataType,
    pub count: u64,
}

impl InternalEvent for Deferred {
    fn emit(self) {
        tracing::debug!(data_type = %self.data_type, count = self.count, "messages deferred while inserts fail");
        metrics::counter!("marketprism_sink_deferred_total", "data_type" => self.data_type.as_str())
            .increment(self.count);
    }
}

/// A redelivered message whose natural key the sink already held: its ack is kept, its row is not.
pub(crate) struct DuplicatesFolded {
    pub data_type: DataType,
    pub count: u64,
}

impl InternalEvent for DuplicatesFolded {
    fn emit(self) {
        metrics::counter!("marketprism_sink_duplicates_folded_total", "data_type" => self.data_type.as_str())
            .increment(self.count);
    }
}

/// An undecodable or unstorable message was moved to the dead-letter subject and acked.
pub(crate) struct DeadLettered<'a> {
    pub subject: &'a str,
    pub dead_letter_subject: &'a str,
    pub kind: &'static str,
    pub error: &'a str,
}

impl InternalEvent for DeadLettered<'_> {
    fn emit(self) {
        tracing::warn!(
            subject = self.subject,
            dead_letter_subject = self.dead_letter_subject,
            kind = self.kind,
            error = self.error,
            "message dead-lettered"
        );
        metrics::counter!("marketprism_sink_dead_letters_total", "kind" => self.kind).increment(1);
    }
}

/// Publishing a dead letter failed: the message stays unacked and comes back after `ack_wait`.
pub(crate) struct DeadLetterFailed<'a> {
    pub subject: &'a str,
    pub error: &'a str,
}

impl InternalEvent for DeadLetterFailed<'_> {
    fn emit(self) {
        tracing::error!(
            subject = self.subject,
            error = self.error,
            "cannot publish dead letter; message left unacked"
        );
        metrics::counter!("marketprism_sink_dead_letter_errors_total").increment(1);
    }
}

/// Acks that could not be sent (NATS down): those messages are redelivered and deduplicated.
pub(crate) struct AckFailed<'a> {
    pub count: usize,
    pub error: &'a str,
}

impl InternalEvent for AckFailed<'_> {
    fn emit(self) {
        tracing::warn!(
            count = self.count,
            error = self.error,
            "acks not sent; messages will be redelivered"
        );
        metrics::counter!("marketprism_sink_ack_errors_total").increment(self.count as u64);
    }
}

/// Consumer lag, sampled from the server.
pub(crate) struct ConsumerLag<'a> {
    pub consumer: &'a str,
    /// In the stream, not yet delivered.
    pub pending: u64,
    /// Delivered, not yet acked.
    pub ack_pending: usize,
}

impl InternalEvent for ConsumerLag<'_> {
    fn emit(self) {
        let c = self.consumer.to_owned();
        metrics::gauge!("marketprism_sink_consumer_pending", "consumer" => c.clone())
            .set(self.pending as f64);
        metrics::gauge!("marketprism_sink_consumer_ack_pending", "consumer" => c)
            .set(self.ack_pending as f64);
    }
}

/// The pull subscription failed (missed heartbeats, NATS restart); it is resumed.
pub(crate) struct PullError<'a> {
    pub error: &'a str,
}

impl InternalEvent for PullError<'_> {
    fn emit(self) {
        tracing::warn!(error = self.error, "JetStream pull interrupted; resuming");
        metrics::counter!("marketprism_sink_pull_errors_total").increment(1);
    }
}
