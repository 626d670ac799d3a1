//! Per data type batches of the sink: rows waiting for one INSERT, the acks to send once it succeeded,
//! and the natural keys already held, so a redelivery of a held message adds no second row.
//! A message (one event or a publish batch of several) is admitted as its events
//! ([`Batch::admit_event`]) and then its one ack ([`Batch::add_ack`]).
//! Acks are kept once per stream sequence: JetStream acks a message by its stream sequence whichever
//! delivery's reply subject is used, so a redelivery (same sequence) needs no second ack, while a copy
//! stored twice (another sequence, same natural key) does. That bounds memory during a long outage.
//! Pure: time is passed in.

use crate::store::{RowError, Rows};
use foldhash::HashSet;
use marketprism_config::BatchConfig;
use marketprism_model::{DataType, Event};
use std::time::Duration;
use tokio::time::Instant;

/// What became of an event offered to a batch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// A new row.
    Row,
    /// Its natural key is already held (here or in the batch being inserted): no second row.
    Duplicate,
}

/// Natural keys and stream sequences of a batch being inserted or held for retry.
#[derive(Debug, Default)]
pub(crate) struct HeldKeys {
    keys: HashSet<String>,
    seqs: HashSet<u64>,
}

/// Rows of one data type collected for one INSERT, with the acks of every message they came from.
#[derive(Debug)]
pub(crate) struct Batch<A> {
    pub rows: Rows,
    /// One ack per message, duplicates included: acked together after the INSERT succeeded.
    pub acks: Vec<A>,
    /// `recv_ts_ms` of each row, for the publish-to-row latency.
    pub recv_ts_ms: Vec<i64>,
    held: HeldKeys,
    opened_at: Option<Instant>,
}

impl<A> Batch<A> {
    pub fn new(data_type: DataType) -> Batch<A> {
        Batch {
            rows: Rows::new(data_type),
            acks: Vec::new(),
            recv_ts_ms: Vec::new(),
            held: HeldKeys::default(),
            opened_at: None,
        }
    }

    pub fn data_type(&self) -> DataType {
        self.rows.data_type()
    }

    /// Is the message stored at `stream_seq` already held, here or in `also_held` (the batch
    /// being inserted)? Then this delivery is a redelivery: nothing of it is kept again.
    pub fn holds_message(&self, stream_seq: u64, also_held: &HeldKeys) -> bool {
        self.held.seqs.contains(&stream_seq) || also_held.seqs.contains(&stream_seq)
    }

    /// Add one decoded event, `key` being its `msg_id`. A row error (the event cannot be stored)
    /// leaves the batch unchanged: the caller dead-letters the event.
    pub fn admit_event(
        &mut self,
        event: &Event,
        key: String,
        also_held: &HeldKeys,
        now: Instant,
    ) -> Result<Admitted, RowError> {
        if self.held.keys.contains(&key) || also_held.keys.contains(&key) {
            self.opened_at.get_or_insert(now);
            return Ok(Admitted::Duplicate);
        }
        self.rows.push(event)?;
        self.held.keys.insert(key);
        self.recv_ts_ms.push(event.recv_ts_ms);
        self.opened_at.get_or_insert(now);
        Ok(Admitted::Row)
    }

    /// Keep the ack of the message stored at `stream_seq` once its events were admitted: sent
    /// when the batch is inserted. One per stream sequence (see [`Batch::holds_message`]).
    pub fn add_ack(&mut self, stream_seq: u64, ack: A, now: Instant) {
        if self.held.seqs.insert(stream_seq) {
            self.acks.push(ack);
            self.opened_at.get_or_insert(now);
        }
    }

    /// Messages held (rows and duplicates).
    pub fn messages(&self) -> usize {
        self.acks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.acks.is_empty()
    }

    /// Full (`max_rows`) or old enough (`max_wait_ms` since its first message).
    pub fn is_due(&self, config: &BatchConfig, now: Instant) -> bool {
        match self.opened_at {
            None => false,
            Some(_) if self.rows.len() >= config.max_rows => true,
            Some(t) => now.duration_since(t) >= Duration::from_millis(config.max_wait_ms),
        }
    }

    /// When it becomes due by age, if it holds anything.
    pub fn deadline(&self, config: &BatchConfig) -> Option<Instant> {
        self.opened_at
            .map(|t| t + Duration::from_millis(config.max_wait_ms))
    }

    /// Take everything out for an insert; returns the keys separately (they stay with the sink
    /// to deduplicate redeliveries while the insert runs) and leaves an empty batch.
    pub fn take(&mut self) -> (Batch<A>, HeldKeys) {
        let data_type = self.data_type();
        let mut taken = std::mem::replace(self, Batch::new(data_type));
        let held = std::mem::take(&mut taken.held);
        (taken, held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::synthetic::synthetic_events;

    /// What happens to a message of one event, as the sink does it.
    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        Event(Admitted),
        Redelivery,
    }

    impl<A> Batch<A> {
        fn admit(
            &mut self,
            event: &Event,
            key: String,
            stream_seq: u64,
            ack: A,
            also_held: &HeldKeys,
            now: Instant,
        ) -> Result<Outcome, RowError> {
            if self.holds_message(stream_seq, also_held) {
                return Ok(Outcome::Redelivery);
            }
            let admitted = self.admit_event(event, key, also_held, now)?;
            self.add_ack(stream_seq, ack, now);
            Ok(Outcome::Event(admitted))
        }
    }

    fn config() -> BatchConfig {
        BatchConfig {
            max_rows: 3,
            max_wait_ms: 1_000,
        }
    }

    #[test]
    fn redeliveries_and_copies_add_no_row_and_acks_stay_one_per_stream_message() {
        let trades: Vec<Event> = synthetic_events(7, 40)
            .into_iter()
            .filter(|e| e.data_type() == DataType::Trades)
            .collect();
        assert!(trades.len() >= 3);
        let now = Instant::now();
        let none = HeldKeys::default();
        let mut in_flight: Batch<u32> = Batch::new(DataType::Trades);
        assert_eq!(
            in_flight.admit(&trades[1], trades[1].msg_id(), 20, 0, &none, now),
            Ok(Outcome::Event(Admitted::Row))
        );
        let (_, in_flight) = in_flight.take();

        let mut b: Batch<u32> = Batch::new(DataType::Trades);
        assert_eq!(
            b.admit(&trades[0], trades[0].msg_id(), 10, 1, &none, now),
            Ok(Outcome::Event(Admitted::Row))
        );
        // Redelivered (same stream sequence): neither a row nor another ack.
        assert_eq!(
            b.admit(&trades[0], trades[0].msg_id(), 10, 2, &none, now),
            Ok(Outcome::Redelivery)
        );
        // Stored twice (another sequence, same key): its own ack, no row.
        assert_eq!(
            b.admit(&trades[0], trades[0].msg_id(), 11, 3, &none, now),
            Ok(Outcome::Event(Admitted::Duplicate))
        );
        // Keys and sequences of the batch being inserted count too.
        assert_eq!(
            b.admit(&trades[1], trades[1].msg_id(), 20, 4, &in_flight, now),
            Ok(Outcome::Redelivery)
        );
        assert_eq!(
            b.admit(&trades[1], trades[1].msg_id(), 21, 5, &in_flight, now),
            Ok(Outcome::Event(Admitted::Duplicate))
        );
        assert_eq!((b.rows.len(), b.messages()), (1, 3));
        assert_eq!(b.recv_ts_ms, vec![trades[0].recv_ts_ms]);

        let (taken, held) = b.take();
        assert!(b.is_empty() && !b.is_due(&config(), now));
        assert_eq!(taken.acks, vec![1, 3, 5]);
        assert_eq!(
            held.keys,
            HashSet::from_iter([trades[0].msg_id()]),
            "keys of rows only"
        );
        assert_eq!(held.seqs, HashSet::from_iter([10, 11, 21]));
    }

    #[test]
    fn due_when_full_or_old() {
        let trades: Vec<Event> = synthetic_events(7, 60)
            .into_iter()
            .filter(|e| e.data_type() == DataType::Trades)
            .collect();
        let t0 = Instant::now();
        let mut b: Batch<()> = Batch::new(DataType::Trades);
        assert!(
            !b.is_due(&config(), t0 + Duration::from_secs(10)),
            "empty is never due"
        );
        assert_eq!(b.deadline(&config()), None);
        let none = HeldKeys::default();
        b.admit(&trades[0], trades[0].msg_id(), 1, (), &none, t0)
            .unwrap();
        assert!(!b.is_due(&config(), t0 + Duration::from_millis(999)));
        assert!(b.is_due(&config(), t0 + Duration::from_millis(1_000)));
        assert_eq!(b.deadline(&config()), Some(t0 + Duration::from_secs(1)));
        b.admit(&trades[1], trades[1].msg_id(), 2, (), &none, t0)
            .unwrap();
        b.admit(&trades[2], trades[2].msg_id(), 3, (), &none, t0)
            .unwrap();
        assert!(b.is_due(&config(), t0), "full is due at once");
    }

    #[test]
    fn an_event_of_another_type_is_refused_and_changes_nothing() {
        let events = synthetic_events(7, 20);
        let book = events
            .iter()
            .find(|e| e.data_type() == DataType::Orderbooks)
            .unwrap();
        let mut b: Batch<()> = Batch::new(DataType::Trades);
        assert!(
            b.admit(
                book,
                book.msg_id(),
                1,
                (),
                &HeldKeys::default(),
                Instant::now()
            )
            .is_err()
        );
        assert!(b.is_empty() && b.rows.is_empty());
    }
}
