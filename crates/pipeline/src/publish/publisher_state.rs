//! The publisher's bookkeeping that is not the send loop: failed publishes, readiness, fencing, shutdown and metrics.

use super::{Failure, Publisher, RETRY_PAUSE, STALL_PAUSE};
use crate::internal_events::emit;
use crate::internal_events::publish::{
    EventsDropped, EventsPublished, PublishFailed, PublishFenced, PublisherState, StreamRefusing,
};
use crate::publish::coalesce::Outgoing;
use crate::publish::holds::stream_index;
use marketprism_model::{DataType, Event, now_ms};
use tokio::time::Instant;

impl Publisher {
    /// Readiness is written on a change, and refreshed every tick while not ready (buffer size).
    pub(super) fn set_ready(&mut self, ready: bool) {
        if self.reported_ready == Some(ready) {
            return;
        }
        self.reported_ready = Some(ready);
        if ready {
            self.readiness.ready();
            return;
        }
        let closed = self.holds.closed();
        let state = if !self.was_connected {
            "unreachable".to_owned()
        } else if self.is_stalled() {
            format!("not taking publishes ({})", self.stall_reason)
        } else if !closed.is_empty() {
            let streams: Vec<String> = closed
                .iter()
                .map(|(s, why, held)| {
                    format!("stream {} refuses publishes ({why}; {held} events held: raise its max_bytes/max_age or free space)", self.stream_name(*s))
                })
                .collect();
            streams.join(", ")
        } else {
            "streams not ready".to_owned()
        };
        self.readiness.not_ready(&format!(
            "NATS {state} at {}; {} events buffered, {} dropped",
            self.config.url,
            self.buffered(),
            self.stats.dropped
        ));
    }

    /// The shard lock is lost: drop (and count) everything not sent yet; in-flight publishes are out.
    pub(super) fn fence(&mut self) {
        if !self.overflow.is_empty() {
            // Their gaps may not be published by a deposed holder: the drops were counted and logged.
            let gaps = self.overflow.take_gaps(now_ms());
            tracing::error!(
                gaps = gaps.len(),
                "shard lock lost: overflow gaps not published (see marketprism_publish_dropped_total)"
            );
        }
        self.coalescer.seal_all(&mut self.sealed);
        self.queue_sealed();
        let dropped: usize = self
            .pending
            .drain()
            .chain(self.holds.drain())
            .map(|out| out.events)
            .sum();
        if dropped == 0 {
            return;
        }
        self.stats.fenced += dropped as u64;
        emit(PublishFenced { events: dropped });
    }

    pub(super) fn give_up_at_shutdown(&mut self) {
        self.coalescer.seal_all(&mut self.sealed);
        self.queue_sealed();
        let in_flight = self.in_flight.drain();
        self.in_flight_events = 0;
        let held = self.holds.drain();
        let mut left = 0;
        for out in self.pending.drain().chain(in_flight).chain(held) {
            self.dropped_by_type[out.data_type as usize] += out.events as u64;
            left += out.events as u64;
        }
        tracing::error!(
            unsent = left,
            overflowed = self.overflow.dropped(),
            "shutdown drain timed out: NATS did not take these events"
        );
        self.stats.dropped += left;
    }

    /// Flush the accumulated per-type counters into metrics (cheaper than one metric call per event).
    pub(super) fn report(&mut self) {
        if self.reported_ready == Some(false) {
            self.reported_ready = None;
        }
        for (i, data_type) in DataType::ALL.into_iter().enumerate() {
            let count = std::mem::take(&mut self.acked_by_type[i]);
            let duplicates = std::mem::take(&mut self.dups_by_type[i]);
            if count > 0 {
                emit(EventsPublished {
                    data_type,
                    count,
                    duplicates,
                });
            }
            let dropped = std::mem::take(&mut self.dropped_by_type[i]);
            if dropped > 0 {
                emit(EventsDropped {
                    data_type,
                    count: dropped,
                    reason: "nats_unreachable",
                });
            }
            let too_large = std::mem::take(&mut self.too_large_by_type[i]);
            if too_large > 0 {
                emit(EventsDropped {
                    data_type,
                    count: too_large,
                    reason: "too_large",
                });
            }
            let refused = std::mem::take(&mut self.refused_by_type[i]);
            if refused > 0 {
                emit(EventsDropped {
                    data_type,
                    count: refused,
                    reason: "stream_refused",
                });
            }
        }
        emit(PublisherState {
            in_flight: self.in_flight.len(),
            buffered: self.buffered(),
        });
    }
}

impl Publisher {
    /// After a failed publish: send again, split a batch the server cannot take whole, hold it for
    /// a refusing stream, or drop a single event too large (an overflow gap records it).
    pub(super) fn on_failure(&mut self, out: Outgoing, failure: Failure, error: &str) {
        emit(PublishFailed {
            subject: &out.subject,
            error,
        });
        let stream = stream_index(out.data_type);
        match failure {
            // A batch the server cannot take whole goes again event by event (each may fit).
            Failure::TooLarge if out.events > 1 => {
                self.holds.unsent(stream);
                self.stats.retries += 1;
                for piece in out.split().into_iter().rev() {
                    self.pending.push_front(piece);
                }
                self.coalescer
                    .fit_max_payload(self.client.server_info().max_payload);
                return;
            }
            Failure::TooLarge => {
                tracing::error!(subject = %out.subject, error, "event larger than the server's max_payload; dropped (an overflow gap records it)");
                self.holds.unsent(stream);
                self.stats.dropped += 1;
                self.too_large_by_type[out.data_type as usize] += 1;
                match serde_json::from_slice::<Event>(&out.payload) {
                    Ok(event) => self.overflow.record(&event),
                    Err(e) => {
                        tracing::error!(subject = %out.subject, error = %e, "dropped event does not read back: no gap for it")
                    }
                }
                return;
            }
            Failure::Refused => {
                self.stats.retries += 1;
                let now = Instant::now();
                // Held one event per message: a probe that can fit, counted in events.
                for piece in out.split().into_iter().rev() {
                    if self.holds.refused(stream, piece, error, now, STALL_PAUSE) {
                        emit(StreamRefusing {
                            stream: self.stream_name(stream),
                            error,
                        });
                        self.reported_ready = None;
                    }
                }
                return;
            }
            Failure::NoStream => self.streams_ready = false,
            Failure::Retry => {}
        }
        self.holds.unsent(stream);
        self.stats.retries += 1;
        self.pending.push_front(out);
        self.paused_until = Instant::now() + RETRY_PAUSE;
    }
}

#[cfg(test)]
mod tests {
    use crate::publish::run_nats_output_fenced;
    use marketprism_config::NatsConfig;
    use marketprism_model::synthetic::synthetic_events;
    use marketprism_telemetry::Health;
    use std::time::Duration;
    use tokio::sync::{mpsc, watch};
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn a_lost_lock_drops_what_was_buffered_and_sends_nothing_after() {
        // Nothing listens there: every event stays buffered.
        let config = NatsConfig {
            url: "nats://127.0.0.1:1".into(),
            drain_timeout_ms: 60_000,
            ..NatsConfig::default()
        };
        let health = Health::new();
        let (lock_tx, lock) = watch::channel(true);
        let (tx, rx) = mpsc::channel(64);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_nats_output_fenced(
            config,
            rx,
            health.clone(),
            crate::lease::Fence::from_verdict(lock),
            shutdown.clone(),
        ));
        let events = synthetic_events(3, 55);
        for e in &events[..50] {
            tx.send(e.clone()).await.unwrap();
        }
        let buffered = || {
            health
                .snapshot()
                .get("nats")
                .is_some_and(|s| s.reason.contains("50 events buffered"))
        };
        for _ in 0..200 {
            if buffered() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(buffered(), "{:?}", health.snapshot());
        lock_tx.send_replace(false);
        for e in &events[50..] {
            tx.send(e.clone()).await.unwrap();
        }
        shutdown.cancel();
        drop(tx);
        // Shutdown does not wait out the drain timeout for events it may not send anyway.
        let stats = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("ends at once: nothing left it may send")
            .unwrap()
            .unwrap();
        assert_eq!(
            (stats.fenced, stats.acked, stats.dropped),
            (55, 0, 0),
            "{stats:?}"
        );
    }
}
