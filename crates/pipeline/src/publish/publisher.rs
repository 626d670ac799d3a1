//! The publisher loop: events from the channel → JSON → JetStream, with a bounded window of acks in flight.
//!
//! Never awaits one ack before sending the next: up to `max_in_flight` publishes are outstanding and
//! their acks, all on one reply subscription ([`super::ack_window`]), are collected as they come. A
//! failed or timed-out ack puts the event back at the front of the buffer; its `Nats-Msg-Id` is
//! unchanged, so a retry of a publish that did land is dropped by the stream's duplicate window. While NATS is unreachable events are buffered up to
//! `buffer_capacity`; beyond that they are dropped, counted, and recorded as `overflow` gaps. A stream
//! that refuses publishes (full: `discard: new`) is handled the same way for its own events only
//! ([`super::holds`]): they are held, the publisher is not ready, and the other stream keeps flowing.
//!
//! Events of one subject arriving within `batch_linger_ms` go out as one batch message
//! ([`super::coalesce`]); counts (buffer, acked, dropped) are always in events.

use super::ack_window::{AckOutcome, AckWindow, parse_ack, token_of};
use super::coalesce::{Coalescer, Outgoing, Part, Pending};
use super::holds::{Admission, Holds, stream_index};
use super::overflow::OverflowTracker;
use super::streams::{connect, ensure_streams, is_connected, prefixed};
use crate::error::{Error, Result};
use crate::internal_events::emit;
use crate::internal_events::publish::{NatsConnection, OverflowGapsQueued, PublishFenced};
use crate::lease::Fence;
use async_nats::client::PublishErrorKind;
use async_nats::jetstream;
use async_nats::{HeaderMap, StatusCode, Subscriber};
use futures::{FutureExt, StreamExt};
use marketprism_config::NatsConfig;
use marketprism_model::wire::EVENTS_HEADER;
use marketprism_model::{DataType, Event, now_ms, subject_of_msg_id};
use marketprism_telemetry::{Health, ReadinessGuard};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Counts of one publisher run (returned at its end; the same figures are metrics while it runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PublishStats {
    pub received: u64,
    /// Acked by JetStream (stored, or recognized as a duplicate).
    pub acked: u64,
    pub duplicate_acks: u64,
    pub retries: u64,
    /// Dropped while NATS was unreachable and the buffer was full, or unsendable at shutdown.
    pub dropped: u64,
    pub overflow_gaps: u64,
    /// Dropped unsent because this instance lost (or never held) its shard lock.
    pub fenced: u64,
}

/// Why a publish has to be sent again (or, when it can never fit, dropped).
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Retry,
    /// The stream is gone (deleted, or the server lost its state): create it again, then retry.
    NoStream,
    /// Larger than the server's max_payload: retrying would block the buffer for ever.
    TooLarge,
    /// The stream answered with an error (full, out of storage): hold its events, probe later.
    Refused,
}

const TICK: Duration = Duration::from_millis(100);
/// Pause after a failed publish before sending again, so a server error cannot become a hot loop.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Events taken from the channel per wake-up.
const RECV_BATCH: usize = 512;
/// At start, how long the channel is left to push back while the first connection is made; only
/// after that does an unreachable NATS mean buffering and dropping (a fast source would otherwise
/// overflow the buffer in the milliseconds a healthy connection takes).
const INITIAL_CONNECT_GRACE: Duration = Duration::from_secs(5);
/// Bounds one send into the NATS client's queue: a queue that stays full while "connected" is a
/// dead connection the client has not noticed yet.
const SEND_TIMEOUT: Duration = Duration::from_millis(250);
/// After a send or an ack timed out while connected, NATS counts as unreachable this long (buffer,
/// not ready), then sending is tried again.
const STALL_PAUSE: Duration = Duration::from_secs(1);
/// The window may span (oldest unacked to newest sent) this many times `max_in_flight`: a publish
/// stuck at the front then stops sending until it times out, which bounds the window's memory.
const MAX_SPAN_FACTOR: usize = 8;

pub async fn run_nats_output(
    config: NatsConfig,
    rx: mpsc::Receiver<Event>,
    health: Health,
    shutdown: CancellationToken,
) -> Result<PublishStats> {
    run_nats_output_fenced(config, rx, health, Fence::open(), shutdown).await
}

/// [`run_nats_output`] that sends only while `fence` is open (the shard lock): when it closes,
/// everything buffered is dropped and counted (`fenced`), and so are events still arriving.
pub async fn run_nats_output_fenced(
    config: NatsConfig,
    rx: mpsc::Receiver<Event>,
    health: Health,
    fence: Fence,
    shutdown: CancellationToken,
) -> Result<PublishStats> {
    let readiness = health.register("nats");
    readiness.not_ready("connecting to NATS");
    let client = connect(&config, "marketprism-publisher").await?;
    let js = jetstream::ContextBuilder::new()
        .timeout(Duration::from_millis(config.ack_timeout_ms))
        .build(client.clone());
    let inbox = client.new_inbox();
    let acks = Some(subscribe_acks(&client, &inbox).await?);
    let coalescer = Coalescer::new(
        Duration::from_millis(config.batch_linger_ms),
        config.batch_max_events,
    );
    let mut publisher = Publisher {
        config,
        client,
        js,
        readiness,
        inbox,
        acks,
        pending: Pending::default(),
        coalescer,
        sealed: Vec::new(),
        in_flight: AckWindow::default(),
        holds: Holds::default(),
        fence,
        overflow: OverflowTracker::default(),
        streams_ready: false,
        next_stream_attempt: Instant::now(),
        paused_until: Instant::now(),
        stalled_until: None,
        stall_reason: String::new(),
        was_connected: false,
        reported_ready: None,
        acked_by_type: [0; DataType::ALL.len()],
        dups_by_type: [0; DataType::ALL.len()],
        dropped_by_type: [0; DataType::ALL.len()],
        refused_by_type: [0; DataType::ALL.len()],
        too_large_by_type: [0; DataType::ALL.len()],
        in_flight_events: 0,
        stats: PublishStats::default(),
    };
    publisher.run(rx, shutdown).await?;
    Ok(publisher.stats)
}

struct Publisher {
    config: NatsConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    readiness: ReadinessGuard,
    /// Reply subjects are `{inbox}.{token}`.
    inbox: String,
    /// `None` after the subscription ended; made again once the stall pause is over.
    acks: Option<Subscriber>,
    /// Sealed messages to send, oldest first.
    pending: Pending,
    /// Events lingering per subject before they are sealed into `pending`.
    coalescer: Coalescer,
    /// Scratch for what the coalescer seals.
    sealed: Vec<Outgoing>,
    in_flight: AckWindow<Outgoing>,
    /// Events of streams that refuse publishes, apart from `pending`.
    holds: Holds<Outgoing>,
    /// The shard lock: nothing is sent while it is closed.
    fence: Fence,
    overflow: OverflowTracker,
    streams_ready: bool,
    next_stream_attempt: Instant,
    paused_until: Instant,
    /// Connected but not taking publishes (see [`STALL_PAUSE`]).
    stalled_until: Option<Instant>,
    stall_reason: String,
    was_connected: bool,
    reported_ready: Option<bool>,
    acked_by_type: [u64; DataType::ALL.len()],
    dups_by_type: [u64; DataType::ALL.len()],
    dropped_by_type: [u64; DataType::ALL.len()],
    /// Dropped because their stream refused publishes and the buffer was full.
    refused_by_type: [u64; DataType::ALL.len()],
    /// Dropped because a single event exceeds the server's `max_payload`.
    too_large_by_type: [u64; DataType::ALL.len()],
    /// Events in the publishes of `in_flight`: bounded by `buffer_capacity` (or `max_in_flight`,
    /// the bound one event per publish always had), so batches do not multiply the window's memory.
    in_flight_events: usize,
    stats: PublishStats,
}

impl Publisher {
    async fn run(
        &mut self,
        mut rx: mpsc::Receiver<Event>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut input_open = true;
        let mut drain_deadline: Option<Instant> = None;
        let mut batch = Vec::with_capacity(RECV_BATCH);
        let grace_end = Instant::now() + INITIAL_CONNECT_GRACE;
        while !is_connected(&self.client) && Instant::now() < grace_end && !shutdown.is_cancelled()
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        loop {
            self.expire_acks();
            if input_open {
                self.coalescer.seal_due(Instant::now(), &mut self.sealed);
            } else {
                self.coalescer.seal_all(&mut self.sealed);
            }
            self.queue_sealed();
            if !self.fence.may_publish() {
                self.fence();
            }
            for probe in self.holds.probes(Instant::now()).into_iter().rev() {
                self.pending.push_front(probe);
            }
            let usable = self.usable().await;
            if usable {
                self.queue_overflow_gaps();
                self.fill_window().await;
            }
            if !input_open {
                let deadline = *drain_deadline.get_or_insert_with(|| {
                    Instant::now() + Duration::from_millis(self.config.drain_timeout_ms)
                });
                if self.pending.is_empty()
                    && self.in_flight.is_empty()
                    && self.overflow.is_empty()
                    && self.holds.is_empty()
                {
                    break;
                }
                if Instant::now() >= deadline {
                    self.give_up_at_shutdown();
                    break;
                }
            }
            // Connected: a full buffer pushes back on the channel. Unreachable or a stream refusing:
            // keep draining the channel and drop beyond the buffer, so the connectors never stall on us.
            let accept = input_open
                && (!usable
                    || !self.holds.all_open()
                    || self.buffered() < self.config.buffer_capacity);
            let next_seal = self.coalescer.next_due();
            tokio::select! {
                biased;
                ack = next_ack(&mut self.acks) => match ack {
                    Some(ack) => {
                        // Collect every ack already there before sending more.
                        let mut next = Some(ack);
                        while let Some(ack) = next {
                            self.on_ack(ack);
                            next = self.acks.as_mut().and_then(|a| a.next().now_or_never()).flatten();
                        }
                    }
                    None => {
                        self.acks = None;
                        self.stall("the publish-ack subscription ended");
                    }
                },
                n = rx.recv_many(&mut batch, RECV_BATCH), if accept => {
                    if n == 0 {
                        input_open = false;
                    }
                    for event in batch.drain(..) {
                        self.admit(event, usable);
                    }
                }
                _ = shutdown.cancelled(), if input_open && drain_deadline.is_none() => {
                    // Stop intake; what is already in the channel is still published.
                    rx.close();
                    drain_deadline = Some(Instant::now() + Duration::from_millis(self.config.drain_timeout_ms));
                }
                _ = tokio::time::sleep_until(next_seal.unwrap_or_else(Instant::now)), if next_seal.is_some() => {}
                _ = tick.tick() => self.report(),
            }
        }
        self.report();
        Ok(())
    }

    /// Connected and the streams exist; reports readiness as a side effect.
    async fn usable(&mut self) -> bool {
        let connected = is_connected(&self.client);
        if connected != self.was_connected {
            self.was_connected = connected;
            if connected {
                // Batches must fit the server's max_payload (1 MiB by default, often lowered).
                self.coalescer
                    .fit_max_payload(self.client.server_info().max_payload);
            }
            emit(NatsConnection {
                role: "publisher",
                state: if connected {
                    "connected"
                } else {
                    "disconnected"
                },
            });
        }
        if !connected {
            self.streams_ready = false;
            self.set_ready(false);
            return false;
        }
        if self.acks.is_none() && !self.is_stalled() {
            match subscribe_acks(&self.client, &self.inbox).await {
                Ok(acks) => self.acks = Some(acks),
                Err(e) => self.stall(&e.to_string()),
            }
        }
        if self.is_stalled() {
            self.set_ready(false);
            return false;
        }
        if !self.streams_ready && Instant::now() >= self.next_stream_attempt {
            match ensure_streams(&self.js, &self.config).await {
                Ok(()) => self.streams_ready = true,
                Err(e) => {
                    self.next_stream_attempt = Instant::now() + Duration::from_secs(1);
                    self.readiness.not_ready(&e.to_string());
                    self.reported_ready = Some(false);
                }
            }
        }
        if self.streams_ready {
            self.set_ready(self.holds.all_open());
        }
        self.streams_ready
    }

    /// Events waiting: lingering, sealed, and in the holds of refusing streams.
    fn buffered(&self) -> usize {
        self.unsent() + self.holds.len()
    }

    /// Events of open streams not sent yet: lingering or sealed.
    fn unsent(&self) -> usize {
        self.pending.events() + self.coalescer.len()
    }

    /// What the coalescer sealed goes to the back of the buffer.
    fn queue_sealed(&mut self) {
        for out in self.sealed.drain(..) {
            self.pending.push_back(out);
        }
    }

    fn stream_name(&self, stream: usize) -> &str {
        match stream {
            0 => &self.config.market_data_stream.name,
            _ => &self.config.orderbook_stream.name,
        }
    }

    fn is_stalled(&self) -> bool {
        self.stalled_until.is_some_and(|t| Instant::now() < t)
    }

    /// Treat NATS as unreachable for [`STALL_PAUSE`]: connected, yet sends or acks time out.
    fn stall(&mut self, why: &str) {
        if !self.is_stalled() {
            tracing::warn!(url = %self.config.url, why, "NATS is not taking publishes; buffering");
        }
        self.stalled_until = Some(Instant::now() + STALL_PAUSE);
        self.stall_reason = why.to_owned();
        self.reported_ready = None;
    }

    fn admit(&mut self, event: Event, usable: bool) {
        self.stats.received += 1;
        if !self.fence.may_publish() {
            self.stats.fenced += 1;
            emit(PublishFenced { events: 1 });
            return;
        }
        let stream = stream_index(event.data_type());
        // Connected with every stream open, a full buffer pushes back on the channel instead.
        let pushes_back = usable && self.holds.all_open();
        let admission = self.holds.admission(
            stream,
            self.unsent(),
            self.config.buffer_capacity,
            pushes_back,
        );
        if let Admission::Drop(reason) = admission {
            self.drop_event(&event, reason);
            return;
        }
        match self.serialize(&event) {
            Ok(part) if admission == Admission::Pending => {
                self.coalescer.add(part, Instant::now(), &mut self.sealed);
                self.queue_sealed();
            }
            Ok(part) => self.holds.hold(stream, Outgoing::single(part)),
            Err(e) => {
                tracing::error!(subject = %event.subject(), error = %e, "cannot serialize event");
                self.drop_event(&event, "unserializable");
            }
        }
    }

    fn drop_event(&mut self, event: &Event, reason: &'static str) {
        self.overflow.record(event);
        self.stats.dropped += 1;
        match reason {
            "stream_refused" => self.refused_by_type[event.data_type() as usize] += 1,
            _ => self.dropped_by_type[event.data_type() as usize] += 1,
        }
        if self.overflow.dropped() == 1 {
            tracing::warn!(
                reason,
                capacity = self.config.buffer_capacity,
                "publisher starts dropping events; they will be recorded as overflow gaps"
            );
        }
    }

    fn serialize(&self, event: &Event) -> Result<Part> {
        // The subject is the msg id's head: formatted once, not twice per event.
        let msg_id = event.msg_id();
        let subject = prefixed(&self.config.subject_prefix, subject_of_msg_id(&msg_id));
        Ok(Part {
            subject,
            msg_id,
            json: serde_json::to_vec(event)?,
            data_type: event.data_type(),
        })
    }

    /// Once there is room again, the losses go out first, as gap events.
    fn queue_overflow_gaps(&mut self) {
        if self.overflow.is_empty() || self.buffered() >= self.config.buffer_capacity {
            return;
        }
        let dropped = self.overflow.dropped();
        let gaps = self.overflow.take_gaps(now_ms());
        emit(OverflowGapsQueued {
            gaps: gaps.len(),
            dropped,
        });
        self.stats.overflow_gaps += gaps.len() as u64;
        for gap in gaps.iter().rev() {
            match self.serialize(gap) {
                Ok(part) => self.pending.push_front(Outgoing::single(part)),
                Err(e) => tracing::error!(error = %e, "cannot serialize overflow gap"),
            }
        }
    }

    /// Send until the window of unacked publishes is full.
    async fn fill_window(&mut self) {
        if Instant::now() < self.paused_until {
            return;
        }
        // Checked last thing before sending: a deposed holder publishes nothing.
        if !self.fence.may_publish() {
            self.fence();
            return;
        }
        let max_span = self.config.max_in_flight * MAX_SPAN_FACTOR;
        while self.in_flight.len() < self.config.max_in_flight
            && self.in_flight.span() < max_span
            && self.in_flight_events < self.config.buffer_capacity.max(self.config.max_in_flight)
        {
            let Some(out) = self.pending.pop_front() else {
                return;
            };
            let stream = stream_index(out.data_type);
            if !self.holds.may_send(stream) {
                if out.data_type == DataType::Gaps && out.events == 1 {
                    // A gap (the record of a loss) goes first: the next probe, never behind the hold.
                    self.holds.hold_first(stream, out);
                    continue;
                }
                // Held one event per message: a probe is one event, and the hold counts events.
                for piece in out.split() {
                    self.holds.hold(stream, piece);
                }
                continue;
            }
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", out.msg_id.as_str());
            if out.events > 1 {
                headers.insert(EVENTS_HEADER, out.events.to_string().as_str());
            }
            let (subject, payload) = (out.subject.clone(), out.payload.clone());
            let reply = format!("{}.{}", self.inbox, self.in_flight.next_token());
            // Bounded: the client's queue fills when the connection died unnoticed, and the loop must
            // go back to draining the channel (buffering, dropping with gaps) meanwhile.
            let sent = tokio::time::timeout(
                SEND_TIMEOUT.min(Duration::from_millis(self.config.ack_timeout_ms)),
                self.client
                    .publish_with_reply_and_headers(subject, reply, headers, payload),
            )
            .await;
            let (failure, error) = match sent {
                Ok(Ok(())) => {
                    // The ack clock starts once the publish is on its way.
                    self.in_flight_events += out.events;
                    self.in_flight.insert(out, Instant::now());
                    continue;
                }
                Ok(Err(e)) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    (Failure::TooLarge, e.to_string())
                }
                Ok(Err(e)) => (Failure::Retry, e.to_string()),
                Err(_) => {
                    let error = "the NATS client's queue stays full";
                    self.stall(error);
                    (Failure::Retry, error.to_owned())
                }
            };
            self.on_failure(out, failure, &error);
            return;
        }
    }

    fn on_ack(&mut self, ack: async_nats::Message) {
        // Unknown token: a late ack of a publish already sent again (whose own ack says duplicate).
        let Some(out) =
            token_of(&self.inbox, ack.subject.as_str()).and_then(|t| self.in_flight.remove(t))
        else {
            return;
        };
        self.in_flight_events -= out.events;
        match parse_ack(ack.status == Some(StatusCode::NO_RESPONDERS), &ack.payload) {
            AckOutcome::Stored { duplicate } => {
                // A stored probe opens its stream: what it held goes out first, oldest first.
                for held in self
                    .holds
                    .stored(stream_index(out.data_type))
                    .into_iter()
                    .rev()
                {
                    self.pending.push_front(held);
                }
                let events = out.events as u64;
                self.stats.acked += events;
                self.acked_by_type[out.data_type as usize] += events;
                if duplicate {
                    self.stats.duplicate_acks += events;
                    self.dups_by_type[out.data_type as usize] += events;
                }
            }
            AckOutcome::NoStream => {
                self.on_failure(out, Failure::NoStream, "no stream takes this subject")
            }
            AckOutcome::Refused(error) => self.on_failure(out, Failure::Refused, &error),
        }
    }

    /// Publishes without an ack after `ack_timeout_ms` are sent again (lost on a reconnect, or a
    /// server not taking them: then NATS counts as unreachable for a pause).
    fn expire_acks(&mut self) {
        let timeout = Duration::from_millis(self.config.ack_timeout_ms);
        let expired = self.in_flight.take_expired(Instant::now(), timeout);
        self.in_flight_events -= expired.iter().map(|o| o.events).sum::<usize>();
        if expired.is_empty() {
            return;
        }
        if is_connected(&self.client) {
            self.stall("no ack within ack_timeout_ms");
        }
        // Pushed to the front newest first, so they go out again oldest first.
        for out in expired.into_iter().rev() {
            self.on_failure(out, Failure::Retry, "no ack within ack_timeout_ms");
        }
    }
}

async fn next_ack(acks: &mut Option<Subscriber>) -> Option<async_nats::Message> {
    match acks {
        Some(acks) => acks.next().await,
        None => std::future::pending().await,
    }
}

async fn subscribe_acks(client: &async_nats::Client, inbox: &str) -> Result<Subscriber> {
    client
        .subscribe(format!("{inbox}.*"))
        .await
        .map_err(|e| Error::Nats(format!("cannot subscribe to publish acks: {e}")))
}

#[path = "publisher_state.rs"]
mod state;
