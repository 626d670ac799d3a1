//! The sink loop. One task pulls from both consumers, decodes and batches per data type; inserts run
//! as their own tasks (one at a time per type, so a type's rows land in order) and ack their messages
//! when ClickHouse confirmed. A failed insert keeps its batch, unacked, and retries it with back-off;
//! meanwhile new messages of that type collect in the next batch, deduplicated against the held one.

use super::InsertReport;
use super::backoff::retry_delay;
use super::batch::{Admitted, Batch, HeldKeys};
use super::dead_letter::dead_letter;
use super::decode::{BadElement, Decoded, decode_message};
use super::setup::{PullConsumer, SinkParts};
use crate::error::{Error, Result};
use crate::internal_events::emit;
use crate::internal_events::sink::{
    AckFailed, BatchInserted, ConsumerLag, DeadLetterFailed, Deferred, DuplicatesFolded,
    InsertRetryScheduled, PullError, Redelivered,
};
use crate::publish::streams::{data_type_of_subject, is_connected};
use crate::store::ClickHouseWriter;
use async_nats::jetstream;
use async_nats::{Client, Subject};
use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use marketprism_config::{BatchConfig, SinkConfig};
use marketprism_model::{DataType, now_ms};
use marketprism_telemetry::{Health, ReadinessGuard};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

type Pulled = std::result::Result<jetstream::Message, String>;

/// The reply subject of a delivery: an empty message published to it acks the delivery. Kept
/// instead of an `Acker`, which clones the whole JetStream context per message.
type AckSubject = Subject;

/// Messages handled per wake-up before looking at timers and finished inserts again.
const PULL_BURST: usize = 1_024;
const LAG_EVERY: Duration = Duration::from_secs(5);

struct TypeState {
    config: BatchConfig,
    open: Batch<AckSubject>,
    /// Keys of the batch being inserted or held for retry.
    busy_keys: Option<HeldKeys>,
    running: bool,
    held: Option<Held>,
}

struct Held {
    batch: Batch<AckSubject>,
    attempt: u32,
    retry_at: Instant,
}

struct InsertDone {
    data_type: DataType,
    batch: Batch<AckSubject>,
    attempt: u32,
    result: std::result::Result<Duration, String>,
}

struct Runner {
    config: SinkConfig,
    writer: ClickHouseWriter,
    client: Client,
    js: jetstream::Context,
    types: Vec<TypeState>,
    inserts: JoinSet<InsertDone>,
    running_ids: HashMap<Id, DataType>,
    clickhouse_ready: ReadinessGuard,
    observer: Option<mpsc::UnboundedSender<InsertReport>>,
    redelivered: [u64; DataType::ALL.len()],
    folded: [u64; DataType::ALL.len()],
    deferred: [u64; DataType::ALL.len()],
}

pub(super) async fn run(
    config: SinkConfig,
    parts: SinkParts,
    _health: Health,
    shutdown: CancellationToken,
    observer: Option<mpsc::UnboundedSender<InsertReport>>,
) -> Result<()> {
    let SinkParts {
        client,
        js,
        consumers,
        writer,
        nats_ready,
        clickhouse_ready,
    } = parts;
    let watch_stop = shutdown.child_token();
    let watcher = tokio::spawn(watch_nats(
        client.clone(),
        consumers.clone(),
        nats_ready,
        watch_stop.clone(),
    ));
    let types = DataType::ALL
        .into_iter()
        .map(|d| TypeState {
            config: config.batch_for(d),
            open: Batch::new(d),
            busy_keys: None,
            running: false,
            held: None,
        })
        .collect();
    let mut runner = Runner {
        config,
        writer,
        client,
        js,
        types,
        inserts: JoinSet::new(),
        running_ids: HashMap::new(),
        clickhouse_ready,
        observer,
        redelivered: [0; DataType::ALL.len()],
        folded: [0; DataType::ALL.len()],
        deferred: [0; DataType::ALL.len()],
    };
    let result = runner.run(&consumers, shutdown).await;
    watch_stop.cancel();
    let _ = watcher.await;
    result
}

impl Runner {
    async fn run(&mut self, consumers: &[PullConsumer], shutdown: CancellationToken) -> Result<()> {
        let mut messages = Some(open_messages(consumers, self.config.fetch_batch).await?);
        let mut drain_deadline: Option<Instant> = None;
        let mut report = tokio::time::interval(Duration::from_secs(1));
        loop {
            let now = Instant::now();
            self.launch_due(now, drain_deadline.is_some());
            if let Some(deadline) = drain_deadline {
                if self.all_idle() {
                    return Ok(());
                }
                if now >= deadline {
                    let held: usize = self
                        .types
                        .iter()
                        .map(|t| {
                            t.open.messages() + t.held.as_ref().map_or(0, |h| h.batch.messages())
                        })
                        .sum();
                    tracing::error!(
                        unacked = held,
                        "sink drain timed out; these messages stay unacked and will be redelivered"
                    );
                    return Ok(());
                }
            }
            let wake = self.next_wake(now, drain_deadline);
            tokio::select! {
                biased;
                Some(done) = self.inserts.join_next_with_id(), if !self.inserts.is_empty() => {
                    self.on_insert_done(done);
                }
                pulled = next_pulled(&mut messages), if messages.is_some() => {
                    match pulled {
                        Some(first) => {
                            self.on_pulled(first).await;
                            for _ in 1..PULL_BURST {
                                match messages.as_mut().and_then(|m| m.next().now_or_never()) {
                                    Some(Some(p)) => self.on_pulled(p).await,
                                    _ => break,
                                }
                            }
                        }
                        None => {
                            // Both pull streams ended (consumer deleted, request limits): start over.
                            emit(PullError { error: "pull streams ended; re-opening" });
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            messages = Some(open_messages(consumers, self.config.fetch_batch).await?);
                        }
                    }
                }
                _ = shutdown.cancelled(), if drain_deadline.is_none() => {
                    // Stop pulling; what is held is flushed; anything delivered but not held is redelivered later.
                    messages = None;
                    drain_deadline = Some(Instant::now() + Duration::from_millis(self.config.nats.drain_timeout_ms));
                }
                _ = tokio::time::sleep_until(wake) => {}
                _ = report.tick() => self.report(),
            }
        }
    }

    fn all_idle(&self) -> bool {
        self.inserts.is_empty()
            && self
                .types
                .iter()
                .all(|t| t.open.is_empty() && t.held.is_none() && !t.running)
    }

    /// Start the inserts that are due: held batches whose back-off passed, then full or old batches.
    fn launch_due(&mut self, now: Instant, draining: bool) {
        for i in 0..self.types.len() {
            let t = &mut self.types[i];
            if t.running {
                continue;
            }
            if let Some(held) = t.held.take_if(|h| h.retry_at <= now) {
                self.spawn_insert(held.batch, held.attempt);
                continue;
            }
            if t.held.is_none()
                && (t.open.is_due(&t.config, now) || (draining && !t.open.is_empty()))
            {
                let (batch, keys) = t.open.take();
                t.busy_keys = Some(keys);
                self.spawn_insert(batch, 1);
            }
        }
    }

    fn next_wake(&self, now: Instant, drain_deadline: Option<Instant>) -> Instant {
        let mut wake = now + Duration::from_secs(1);
        for t in &self.types {
            if t.running {
                continue;
            }
            if let Some(h) = &t.held {
                wake = wake.min(h.retry_at);
            } else if let Some(d) = t.open.deadline(&t.config) {
                wake = wake.min(d);
            }
        }
        if let Some(d) = drain_deadline {
            wake = wake.min(d);
        }
        wake.max(now + Duration::from_millis(1))
    }

    fn spawn_insert(&mut self, batch: Batch<AckSubject>, attempt: u32) {
        let data_type = batch.data_type();
        self.types[data_type as usize].running = true;
        let writer = self.writer.clone();
        let client = self.client.clone();
        let observer = self.observer.clone();
        let handle = self.inserts.spawn(async move {
            let started = std::time::Instant::now();
            let result = match writer.insert_rows(&batch.rows).await {
                Ok(()) => {
                    let elapsed = started.elapsed();
                    if let Some(obs) = &observer {
                        let _ = obs.send(InsertReport {
                            data_type,
                            inserted_at_ms: now_ms(),
                            recv_ts_ms: batch.recv_ts_ms.clone(),
                        });
                    }
                    ack_all(&client, &batch.acks).await;
                    Ok(elapsed)
                }
                Err(e) => Err(e.to_string()),
            };
            InsertDone {
                data_type,
                batch,
                attempt,
                result,
            }
        });
        self.running_ids.insert(handle.id(), data_type);
    }

    fn on_insert_done(
        &mut self,
        done: std::result::Result<(Id, InsertDone), tokio::task::JoinError>,
    ) {
        let done = match done {
            Ok((id, done)) => {
                self.running_ids.remove(&id);
                done
            }
            Err(e) => {
                // The insert task panicked: its messages are unacked and will be redelivered.
                if let Some(dt) = self.running_ids.remove(&e.id()) {
                    let t = &mut self.types[dt as usize];
                    t.running = false;
                    t.busy_keys = None;
                }
                tracing::error!(error = %e, "sink insert task failed");
                return;
            }
        };
        let t = &mut self.types[done.data_type as usize];
        t.running = false;
        match done.result {
            Ok(insert_time) => {
                t.busy_keys = None;
                self.clickhouse_ready.ready();
                emit(BatchInserted {
                    data_type: done.data_type,
                    rows: done.batch.rows.len(),
                    messages: done.batch.messages(),
                    insert_time,
                    attempts: done.attempt,
                });
            }
            Err(error) => {
                let retry_in = retry_delay(done.attempt, rand::random());
                emit(InsertRetryScheduled {
                    data_type: done.data_type,
                    rows: done.batch.rows.len(),
                    attempt: done.attempt,
                    retry_in,
                    error: &error,
                });
                self.clickhouse_ready.not_ready(&format!(
                    "ClickHouse insert failing ({} rows of {} held unacked): {error}",
                    done.batch.rows.len(),
                    done.data_type
                ));
                t.held = Some(Held {
                    batch: done.batch,
                    attempt: done.attempt + 1,
                    retry_at: Instant::now() + retry_in,
                });
            }
        }
    }

    async fn on_pulled(&mut self, pulled: Pulled) {
        let message = match pulled {
            Ok(m) => m,
            Err(error) => {
                emit(PullError { error: &error });
                return;
            }
        };
        let (delivered, stream_seq) = match message.info() {
            Ok(i) => (i.delivered, i.stream_sequence),
            Err(e) => {
                emit(PullError {
                    error: &format!("message without JetStream metadata: {e}"),
                });
                return;
            }
        };
        let message = message.message;
        let Some(ack_subject) = message.reply.clone() else {
            emit(PullError {
                error: "message without a reply subject",
            });
            return;
        };
        let prefix = &self.config.nats.subject_prefix;
        let subject = message.subject.as_str();
        let items = match decode_message(prefix, subject, &message.payload) {
            Ok(items) => items,
            Err(e) => {
                let (kind, error) = (e.kind(), e.to_string());
                self.reject(subject, message.payload.clone(), kind, &error, ack_subject)
                    .await;
                return;
            }
        };
        // Every element names the subject's type (`decode_message` checks each against the subject).
        let Some(data_type) = data_type_of_subject(prefix, subject) else {
            return;
        };
        if delivered > 1 {
            self.redelivered[data_type as usize] += 1;
        }
        let now = Instant::now();
        let t = &mut self.types[data_type as usize];
        let empty = HeldKeys::default();
        let busy = t.busy_keys.as_ref().unwrap_or(&empty);
        if t.open.holds_message(stream_seq, busy) {
            return;
        }
        // Inserts of this type failing and its next batch full: leave the message unacked (it comes
        // back after ack_wait) rather than hold ever more rows (a message may carry hundreds).
        if t.held.is_some() && t.open.rows.len() >= t.config.max_rows {
            self.deferred[data_type as usize] += 1;
            return;
        }
        let mut bad = Vec::new();
        for item in items {
            match item {
                Ok(Decoded { event, msg_id, .. }) => {
                    match t.open.admit_event(&event, msg_id, busy, now) {
                        Ok(Admitted::Row) => {}
                        Ok(Admitted::Duplicate) => self.folded[data_type as usize] += 1,
                        // Decodable but not storable exactly (e.g. a decimal beyond the column's range).
                        Err(row_error) => bad.push((
                            serde_json::to_vec(&event).unwrap_or_default().into(),
                            "unstorable",
                            row_error.to_string(),
                        )),
                    }
                }
                Err(BadElement { json, error }) => {
                    bad.push((json, error.kind(), error.to_string()))
                }
            }
        }
        // The message is acked with its batch once its bad events are set aside; if one cannot be,
        // it stays unacked and comes back (its good events then fold as duplicates).
        let mut set_aside = true;
        for (json, kind, error) in bad {
            set_aside &= dead_letter(&self.js, prefix, subject, json, kind, &error).await;
        }
        if set_aside {
            self.types[data_type as usize]
                .open
                .add_ack(stream_seq, ack_subject, now);
        }
    }

    /// Dead-letter a message that can never be inserted, then ack it, so it blocks nothing.
    async fn reject(
        &self,
        subject: &str,
        payload: bytes::Bytes,
        kind: &'static str,
        error: &str,
        ack_subject: AckSubject,
    ) {
        let prefix = &self.config.nats.subject_prefix;
        if !dead_letter(&self.js, prefix, subject, payload, kind, error).await {
            return;
        }
        if let Err(e) = ack(&self.client, ack_subject).await {
            emit(DeadLetterFailed {
                subject,
                error: &format!("dead letter stored but ack failed: {e}"),
            });
        }
    }

    fn report(&mut self) {
        for (i, data_type) in DataType::ALL.into_iter().enumerate() {
            let count = std::mem::take(&mut self.redelivered[i]);
            if count > 0 {
                emit(Redelivered { data_type, count });
            }
            let count = std::mem::take(&mut self.folded[i]);
            if count > 0 {
                emit(DuplicatesFolded { data_type, count });
            }
            let count = std::mem::take(&mut self.deferred[i]);
            if count > 0 {
                emit(Deferred { data_type, count });
            }
        }
    }
}

/// Ack one delivery: an empty message to its reply subject.
async fn ack(client: &Client, subject: AckSubject) -> std::result::Result<(), String> {
    client
        .publish(subject, bytes::Bytes::new())
        .await
        .map_err(|e| e.to_string())
}

async fn ack_all(client: &Client, acks: &[AckSubject]) {
    let mut failed = 0;
    let mut last_error = String::new();
    for subject in acks {
        if let Err(e) = ack(client, subject.clone()).await {
            failed += 1;
            last_error = e;
        }
    }
    if failed > 0 {
        emit(AckFailed {
            count: failed,
            error: &last_error,
        });
    }
}

async fn next_pulled(messages: &mut Option<BoxStream<'static, Pulled>>) -> Option<Pulled> {
    match messages {
        Some(m) => m.next().await,
        None => std::future::pending().await,
    }
}

/// One merged stream of messages from every consumer (continuous pull with heartbeats; it
/// re-issues its pull requests by itself after a reconnect).
async fn open_messages(
    consumers: &[PullConsumer],
    fetch_batch: usize,
) -> Result<BoxStream<'static, Pulled>> {
    let mut all: SelectAll<BoxStream<'static, Pulled>> = SelectAll::new();
    for consumer in consumers {
        let stream = consumer
            .stream()
            .max_messages_per_batch(fetch_batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| Error::Nats(format!("cannot pull: {e}")))?;
        all.push(stream.map(|r| r.map_err(|e| e.to_string())).boxed());
    }
    Ok(all.boxed())
}

/// NATS readiness and consumer lag, sampled off the hot loop.
async fn watch_nats(
    client: async_nats::Client,
    consumers: Vec<PullConsumer>,
    ready: ReadinessGuard,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_lag = Instant::now() - LAG_EVERY;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if is_connected(&client) {
            ready.ready();
        } else {
            ready.not_ready("NATS unreachable: not consuming");
            continue;
        }
        if last_lag.elapsed() >= LAG_EVERY {
            last_lag = Instant::now();
            for consumer in &consumers {
                if let Ok(Ok(info)) =
                    tokio::time::timeout(Duration::from_secs(2), consumer.get_info()).await
                {
                    emit(ConsumerLag {
                        consumer: &info.name,
                        pending: info.num_pending,
                        ack_pending: info.num_ack_pending,
                    });
                }
            }
        }
    }
}
