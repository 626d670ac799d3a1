//! Publish batching: a subject's serialized events collect for at most `batch_linger_ms`, then go
//! out as one message (see [`marketprism_model::wire`]). Under load one message carries many events,
//! so NATS handles a fraction of the messages; an event alone in its linger goes out as itself.
//! Pure: time is passed in.
//!
//! A group is sealed when it holds `max_events` events, when the next event would take it past
//! `max_bytes`, or when its first event is `linger` old. Events of one subject stay in order.

use bytes::Bytes;
use foldhash::HashMap;
use marketprism_model::DataType;
use marketprism_model::wire::{batch_msg_id, batch_payload};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Ceiling of a batch payload, whatever the server allows.
pub(super) const MAX_BATCH_BYTES: usize = 512 * 1024;

/// One message waiting to be published: one event or a batch (serialized once, however often it is retried).
#[derive(Debug)]
pub(super) struct Outgoing {
    /// `String` shared by clones: cloned for every send.
    pub subject: async_nats::Subject,
    pub msg_id: String,
    pub payload: Bytes,
    pub data_type: DataType,
    /// Events in the payload: 1, or the length of a batch's array.
    pub events: usize,
}

/// One serialized event, before batching.
#[derive(Debug)]
pub(super) struct Part {
    pub subject: String,
    pub msg_id: String,
    pub json: Vec<u8>,
    pub data_type: DataType,
}

#[derive(Debug)]
struct Group {
    parts: Vec<Part>,
    bytes: usize,
    /// Tells this group from a later one of the same subject in `deadlines`.
    generation: u64,
}

/// The open groups, one per subject with events lingering.
#[derive(Debug)]
pub(super) struct Coalescer {
    linger: Duration,
    max_events: usize,
    max_bytes: usize,
    groups: HashMap<String, Group>,
    /// `(opened_at, subject, generation)` in opening order: the linger is one for all, so the
    /// front is the next group due. Entries of groups sealed early are skipped when reached.
    deadlines: VecDeque<(Instant, String, u64)>,
    next_generation: u64,
    events: usize,
}

impl Coalescer {
    /// `linger` zero: every event is sealed at once (no batching). Payloads stay within
    /// [`MAX_BATCH_BYTES`] until [`Coalescer::fit_max_payload`] learns the server's limit.
    pub fn new(linger: Duration, max_events: usize) -> Coalescer {
        Coalescer::with_max_bytes(linger, max_events, MAX_BATCH_BYTES)
    }

    fn with_max_bytes(linger: Duration, max_events: usize, max_bytes: usize) -> Coalescer {
        Coalescer {
            linger,
            max_events: max_events.max(1),
            max_bytes,
            groups: HashMap::default(),
            deadlines: VecDeque::new(),
            next_generation: 0,
            events: 0,
        }
    }

    /// Fit batches to the server's `max_payload` (learnt on connect, or from a refusal): half of
    /// it (headers, and a margin), at most [`MAX_BATCH_BYTES`].
    pub fn fit_max_payload(&mut self, max_payload: usize) {
        self.max_bytes = (max_payload / 2).clamp(1, MAX_BATCH_BYTES);
    }

    /// Events lingering in open groups.
    pub fn len(&self) -> usize {
        self.events
    }

    /// Add an event; returns what it sealed: its group's earlier events when it would not fit (bytes),
    /// and the group itself when now full, or the event alone when batching is off.
    pub fn add(&mut self, part: Part, now: Instant, sealed: &mut Vec<Outgoing>) {
        if self.linger.is_zero() || self.max_events == 1 {
            sealed.push(seal(vec![part]));
            return;
        }
        let size = part.json.len() + 1;
        if let Some(group) = self.groups.get(&part.subject)
            && group.bytes + size > self.max_bytes
        {
            let subject = part.subject.clone();
            self.seal_subject(&subject, sealed);
        }
        self.events += 1;
        let group = match self.groups.get_mut(&part.subject) {
            Some(group) => group,
            None => {
                let generation = self.next_generation;
                self.next_generation += 1;
                self.deadlines
                    .push_back((now, part.subject.clone(), generation));
                self.groups.entry(part.subject.clone()).or_insert(Group {
                    parts: Vec::new(),
                    bytes: 2,
                    generation,
                })
            }
        };
        group.bytes += size;
        group.parts.push(part);
        if group.parts.len() >= self.max_events {
            let subject = group.parts[0].subject.clone();
            self.seal_subject(&subject, sealed);
        }
    }

    /// Seal every group whose linger is over at `now`.
    pub fn seal_due(&mut self, now: Instant, sealed: &mut Vec<Outgoing>) {
        while let Some((opened_at, _, _)) = self.deadlines.front() {
            if now.duration_since(*opened_at) < self.linger {
                return;
            }
            let Some((_, subject, generation)) = self.deadlines.pop_front() else {
                return;
            };
            if self
                .groups
                .get(&subject)
                .is_some_and(|g| g.generation == generation)
            {
                self.seal_subject(&subject, sealed);
            }
        }
    }

    /// When the oldest open group is due, if any is open.
    pub fn next_due(&self) -> Option<Instant> {
        // A stale front entry (its group sealed early) only wakes the loop once too soon.
        self.deadlines.front().map(|(t, _, _)| *t + self.linger)
    }

    /// Seal everything (shutdown, or before dropping everything unsent).
    pub fn seal_all(&mut self, sealed: &mut Vec<Outgoing>) {
        self.deadlines.clear();
        let subjects: Vec<String> = self.groups.keys().cloned().collect();
        for subject in subjects {
            self.seal_subject(&subject, sealed);
        }
    }

    fn seal_subject(&mut self, subject: &str, sealed: &mut Vec<Outgoing>) {
        if let Some(group) = self.groups.remove(subject) {
            self.events -= group.parts.len();
            sealed.push(seal(group.parts));
        }
    }
}

/// Sealed messages waiting to be sent, oldest first, and how many events they hold.
#[derive(Debug, Default)]
pub(super) struct Pending {
    queue: VecDeque<Outgoing>,
    events: usize,
}

impl Pending {
    pub fn push_back(&mut self, out: Outgoing) {
        self.events += out.events;
        self.queue.push_back(out);
    }

    pub fn push_front(&mut self, out: Outgoing) {
        self.events += out.events;
        self.queue.push_front(out);
    }

    pub fn pop_front(&mut self) -> Option<Outgoing> {
        let out = self.queue.pop_front()?;
        self.events -= out.events;
        Some(out)
    }

    /// Events in the queued messages.
    pub fn events(&self) -> usize {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn drain(&mut self) -> impl Iterator<Item = Outgoing> + '_ {
        self.events = 0;
        self.queue.drain(..)
    }
}

impl Outgoing {
    /// One event as its own message.
    pub fn single(part: Part) -> Outgoing {
        seal(vec![part])
    }

    /// A batch back into one message per event, in order (a batch the server cannot take whole:
    /// over its `max_payload`, or refused by a full stream, where a single event may still fit).
    /// A single event, or a payload that does not read back, is returned as it is.
    pub fn split(self) -> Vec<Outgoing> {
        if self.events < 2 {
            return vec![self];
        }
        let Ok(elements) = marketprism_model::wire::batch_elements(&self.payload) else {
            return vec![self];
        };
        let mut out = Vec::with_capacity(elements.len());
        for raw in &elements {
            let Ok(event) = serde_json::from_str::<marketprism_model::Event>(raw.get()) else {
                return vec![self];
            };
            out.push(Outgoing {
                subject: self.subject.clone(),
                msg_id: event.msg_id(),
                payload: Bytes::copy_from_slice(raw.get().as_bytes()),
                data_type: self.data_type,
                events: 1,
            });
        }
        out
    }
}

/// One event as itself, several as a batch with the id of their msg ids.
fn seal(mut parts: Vec<Part>) -> Outgoing {
    if parts.len() == 1 {
        let part = parts.pop().expect("one part");
        return Outgoing {
            subject: part.subject.into(),
            msg_id: part.msg_id,
            payload: Bytes::from(part.json),
            data_type: part.data_type,
            events: 1,
        };
    }
    let msg_id = batch_msg_id(parts.iter().map(|p| p.msg_id.as_str()));
    let payload = Bytes::from(batch_payload(parts.iter().map(|p| p.json.as_slice())));
    let first = parts.swap_remove(0);
    Outgoing {
        subject: first.subject.into(),
        msg_id,
        payload,
        data_type: first.data_type,
        events: parts.len() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::Event;
    use marketprism_model::synthetic::synthetic_events;
    use marketprism_model::wire::{EVENTS_HEADER, decode};

    fn part(e: &Event) -> Part {
        let msg_id = e.msg_id();
        Part {
            subject: e.subject(),
            msg_id,
            json: serde_json::to_vec(e).unwrap(),
            data_type: e.data_type(),
        }
    }

    fn events_of(out: &[Outgoing]) -> Vec<Event> {
        out.iter()
            .flat_map(|o| decode(&o.payload).unwrap())
            .collect()
    }

    /// The trades of the busiest trade subject (trades carry no floats: they round-trip exactly).
    fn one_subjects_trades() -> Vec<Event> {
        let trades: Vec<Event> = synthetic_events(3, 4_000)
            .into_iter()
            .filter(|e| e.data_type() == marketprism_model::DataType::Trades)
            .collect();
        let subject = trades[0].subject();
        trades
            .into_iter()
            .filter(|e| e.subject() == subject)
            .collect()
    }

    #[test]
    fn a_subjects_events_within_the_linger_become_one_message_in_order() {
        let events = synthetic_events(11, 400);
        let t0 = Instant::now();
        let linger = Duration::from_millis(20);
        let mut c = Coalescer::with_max_bytes(linger, 1_000, 1 << 20);
        let mut sealed = Vec::new();
        for e in &events {
            c.add(part(e), t0, &mut sealed);
        }
        assert!(sealed.is_empty(), "nothing is due before the linger");
        assert_eq!(c.len(), 400);
        assert_eq!(c.next_due(), Some(t0 + linger));
        c.seal_due(t0 + linger - Duration::from_millis(1), &mut sealed);
        assert!(sealed.is_empty());
        c.seal_due(t0 + linger, &mut sealed);
        assert!(c.len() == 0 && c.next_due().is_none());
        let subjects: std::collections::BTreeSet<String> =
            events.iter().map(Event::subject).collect();
        assert_eq!(sealed.len(), subjects.len(), "one message per subject");
        for out in &sealed {
            let inside = decode(&out.payload).unwrap();
            assert_eq!(inside.len(), out.events);
            let expected: Vec<&Event> = events
                .iter()
                .filter(|e| e.subject() == out.subject.as_str())
                .collect();
            // By msg id: floats of the signal types do not round-trip JSON bit for bit.
            assert_eq!(
                inside.iter().map(Event::msg_id).collect::<Vec<_>>(),
                expected.iter().map(|e| e.msg_id()).collect::<Vec<_>>(),
                "all, in order"
            );
            if out.events > 1 {
                assert!(out.msg_id.contains(":batch:"), "{}", out.msg_id);
            } else {
                assert_eq!(out.msg_id, inside[0].msg_id(), "alone: its own id");
            }
        }
        assert!(sealed.iter().any(|o| o.events > 1));
        assert!(!EVENTS_HEADER.is_empty());
    }

    #[test]
    fn groups_seal_when_full_by_count_or_bytes_and_zero_linger_batches_nothing() {
        let trades = one_subjects_trades();
        assert!(trades.len() >= 10, "{}", trades.len());
        let t0 = Instant::now();
        let mut c = Coalescer::with_max_bytes(Duration::from_secs(1), 4, 1 << 20);
        let mut sealed = Vec::new();
        for e in &trades[..9] {
            c.add(part(e), t0, &mut sealed);
        }
        assert_eq!(
            sealed.iter().map(|o| o.events).collect::<Vec<_>>(),
            vec![4, 4]
        );
        assert_eq!(c.len(), 1);
        c.seal_all(&mut sealed);
        assert_eq!(events_of(&sealed), trades[..9].to_vec());

        // Bytes: room for two events only.
        let two = 2 + 2 * (serde_json::to_vec(&trades[0]).unwrap().len() + 8);
        let mut c = Coalescer::with_max_bytes(Duration::from_secs(1), 100, two);
        let mut sealed = Vec::new();
        for e in &trades[..5] {
            c.add(part(e), t0, &mut sealed);
        }
        c.seal_all(&mut sealed);
        assert!(sealed.iter().all(|o| o.payload.len() <= two), "bounded");
        assert!(sealed.len() >= 3);
        assert_eq!(events_of(&sealed), trades[..5].to_vec());

        let mut c = Coalescer::with_max_bytes(Duration::ZERO, 100, 1 << 20);
        let mut sealed = Vec::new();
        for e in &trades[..3] {
            c.add(part(e), t0, &mut sealed);
        }
        assert_eq!(sealed.len(), 3, "no linger: each event alone");
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn a_batch_splits_back_into_its_events_as_they_would_have_gone_alone() {
        let trades = one_subjects_trades();
        let mut c = Coalescer::with_max_bytes(Duration::from_secs(1), 100, 1 << 20);
        let mut sealed = Vec::new();
        for e in &trades[..5] {
            c.add(part(e), Instant::now(), &mut sealed);
        }
        c.seal_all(&mut sealed);
        let batch = sealed.pop().unwrap();
        assert_eq!(batch.events, 5);
        let alone: Vec<Outgoing> = trades[..5]
            .iter()
            .map(|e| Outgoing::single(part(e)))
            .collect();
        let pieces = batch.split();
        assert_eq!(pieces.len(), 5);
        for (piece, single) in pieces.iter().zip(&alone) {
            assert_eq!((&piece.msg_id, piece.events), (&single.msg_id, 1));
            assert_eq!(piece.payload, single.payload);
            assert_eq!(piece.subject, single.subject);
        }
        let one = Outgoing::single(part(&trades[0])).split();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn a_group_sealed_early_does_not_shorten_the_next_groups_linger() {
        let trades = one_subjects_trades();
        let t0 = Instant::now();
        let linger = Duration::from_millis(10);
        let mut c = Coalescer::with_max_bytes(linger, 2, 1 << 20);
        let mut sealed = Vec::new();
        c.add(part(&trades[0]), t0, &mut sealed);
        c.add(part(&trades[1]), t0, &mut sealed);
        assert_eq!(sealed.len(), 1, "full at two");
        let t1 = t0 + Duration::from_millis(5);
        c.add(part(&trades[2]), t1, &mut sealed);
        c.seal_due(t0 + linger, &mut sealed);
        assert_eq!(
            sealed.len(),
            1,
            "the new group opened at t1, due at t1 + linger"
        );
        c.seal_due(t1 + linger, &mut sealed);
        assert_eq!(sealed.len(), 2);
        assert_eq!(events_of(&sealed), trades[..3].to_vec());
    }
}
