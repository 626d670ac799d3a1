//! The book sync state machine, pure: updates and snapshots in, outcomes out; the connector does the I/O.
//!
//! Buffering: updates queue up while a snapshot is awaited. Once a snapshot is there, covered updates
//! are dropped, the first remaining one must bridge it ([`SyncRule::bridges`]), then the rest replay.
//! Live: each update must continue the sequence; a gap, a crossed book or a checksum mismatch drops the
//! book and returns to Buffering *keeping the offending update*, so a resync loses no buffered event.

use super::checksum::okx_checksum;
use super::rules::{Continuity, SyncRule};
use super::{BookSnapshot, BookUpdate, OrderBook};
use marketprism_model::{GapCause, OrderBookSnapshot};
use std::collections::VecDeque;

/// Buffered updates kept while waiting for a snapshot; older ones are dropped first (and the snapshot
/// age check then asks for a newer snapshot, so dropping cannot hide a gap).
pub(crate) const MAX_BUFFERED: usize = 10_000;

/// Live updates in a row at or below the last applied id before the book is resynced: a replayed frame
/// or two is a duplicate, a run of them means the venue's ids went backwards (a sequence reset after
/// maintenance), which would otherwise freeze the book while frames keep arriving.
pub(crate) const MAX_REPEATS: u32 = 20;

#[derive(Debug, Clone, PartialEq)]
pub enum SyncOutcome {
    /// Kept until a usable snapshot arrives.
    Buffered,
    /// Already in the book (covered by the snapshot or replayed): skipped.
    Ignored,
    /// Applied to the live book.
    Applied,
    /// A snapshot was loaded and `replayed` buffered updates applied: the book is live (publish it).
    Synced { replayed: usize },
    /// The snapshot cannot be used (too old, does not bridge the buffer): fetch another.
    NeedSnapshot { reason: &'static str },
    /// The venue reset its sequence (OKX `seqId < prevSeqId`) while the book waited for a snapshot:
    /// a snapshot requested before the reset carries an id of the old sequence, which would cover
    /// every new update and keep the book waiting for good. Discard it and fetch another.
    SequenceReset,
    /// The live book broke: record a gap, then fetch a snapshot (or resubscribe for in-stream snapshots).
    Resync(Desync),
}

/// The book's top after one replayed update (tick by tick), at that update's exchange time (ms).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayedTop {
    pub ts_ms: i64,
    pub top: OrderBookSnapshot,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desync {
    /// `SequenceGap` or `Integrity` (crossed book, checksum mismatch).
    pub cause: GapCause,
    /// Exchange time of the last good update and of the update that revealed the problem.
    pub last_good_ts_ms: i64,
    pub detected_ts_ms: i64,
    pub detail: String,
    /// Neither a sequence id nor a checksum can prove the update continues the book: it is withheld
    /// until the feed can be judged again (a resync would only meet the same frames).
    pub unprovable: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Buffering {
        buffer: VecDeque<BookUpdate>,
        first_marker: Option<i64>,
        snapshot: Option<BookSnapshot>,
    },
    Live,
}

#[derive(Debug, Clone)]
pub struct BookSync {
    rule: SyncRule,
    verify_checksum: bool,
    state: State,
    book: OrderBook,
    /// Live updates in a row judged duplicates (see [`MAX_REPEATS`]).
    repeats: u32,
    /// Tick by tick: `(levels, tops)`, the top `levels` after each buffered update replayed into a
    /// snapshot, so that no update's book is skipped ([`BookSync::keep_replay_tops`]).
    replay_tops: Option<(usize, Vec<ReplayedTop>)>,
}

impl BookSync {
    pub fn new(rule: SyncRule, depth: usize, verify_checksum: bool) -> BookSync {
        BookSync {
            rule,
            verify_checksum,
            state: State::Buffering {
                buffer: VecDeque::new(),
                first_marker: None,
                snapshot: None,
            },
            book: OrderBook::new(depth),
            repeats: 0,
            replay_tops: None,
        }
    }

    /// Keep the top `levels` of the book after every replayed update, for a book published after
    /// every update (tick by tick): replay applies many updates at once.
    pub fn keep_replay_tops(&mut self, levels: usize) {
        self.replay_tops = Some((levels, Vec::new()));
    }

    /// The tops kept during the last replay, oldest first (empty unless [`Self::keep_replay_tops`]).
    pub fn take_replay_tops(&mut self) -> Vec<ReplayedTop> {
        match &mut self.replay_tops {
            Some((_, tops)) => std::mem::take(tops),
            None => Vec::new(),
        }
    }

    fn record_replayed(&mut self) {
        if let Some((levels, tops)) = &mut self.replay_tops {
            tops.push(ReplayedTop {
                ts_ms: self.book.ts_ms,
                top: self.book.top(*levels),
            });
        }
    }

    pub fn rule(&self) -> SyncRule {
        self.rule
    }

    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    pub fn is_live(&self) -> bool {
        self.state == State::Live
    }

    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Buffering { buffer, .. } => buffer.len(),
            State::Live => 0,
        }
    }

    /// Forget everything (every reconnect): the next snapshot starts a fresh book.
    pub fn reset(&mut self) {
        self.book.clear();
        self.repeats = 0;
        self.state = State::Buffering {
            buffer: VecDeque::new(),
            first_marker: None,
            snapshot: None,
        };
    }

    /// A snapshot from REST, or pushed in the stream for venues whose snapshot comes that way.
    pub fn on_snapshot(&mut self, snap: BookSnapshot) -> SyncOutcome {
        if let State::Live = self.state {
            // A new snapshot on a live book (OKX/Deribit resubscribe): start over from it.
            self.reset();
        }
        if let State::Buffering {
            snapshot,
            first_marker,
            ..
        } = &mut self.state
        {
            // The age check compares with the first update buffered before this snapshot was taken.
            if self.rule.snapshot_too_old(snap.last_id, *first_marker) {
                return SyncOutcome::NeedSnapshot {
                    reason: "snapshot older than the first buffered update",
                };
            }
            *snapshot = Some(snap);
        }
        self.try_sync()
    }

    pub fn on_update(&mut self, update: BookUpdate) -> SyncOutcome {
        if self.is_live() && !self.provable(&update) {
            return self.unprovable(update);
        }
        match &mut self.state {
            State::Buffering {
                buffer,
                first_marker,
                snapshot,
            } => {
                // OKX sequence reset (`seqId < prevSeqId`): nothing buffered before it can bridge a
                // snapshot taken after it, and its old ids would make every such snapshot look too old.
                if update.prev_id.is_some_and(|p| update.last_id < p) {
                    buffer.clear();
                    *first_marker = None;
                    *snapshot = None;
                    return SyncOutcome::SequenceReset;
                }
                if buffer.is_empty() {
                    *first_marker = self.rule.first_marker(&update);
                }
                buffer.push_back(update);
                if buffer.len() > MAX_BUFFERED {
                    buffer.pop_front();
                    *first_marker = buffer.front().and_then(|u| self.rule.first_marker(u));
                }
                self.try_sync()
            }
            State::Live => match self.rule.continuity(&update, self.book.last_id) {
                Continuity::Duplicate if self.repeats + 1 < MAX_REPEATS => {
                    self.repeats += 1;
                    SyncOutcome::Ignored
                }
                Continuity::Duplicate => {
                    let detail = format!(
                        "{MAX_REPEATS} updates in a row at or below the last applied id {} (last got first={} last={}): the venue's ids went backwards",
                        self.book.last_id, update.first_id, update.last_id
                    );
                    self.desync(GapCause::SequenceGap, detail, update)
                }
                Continuity::Gap => {
                    let detail = format!(
                        "expected continuation of {}, got first={} last={} prev={:?}",
                        self.book.last_id, update.first_id, update.last_id, update.prev_id
                    );
                    self.desync(GapCause::SequenceGap, detail, update)
                }
                Continuity::Next => self.apply_live(update),
            },
        }
    }

    /// With a snapshot in hand, drop covered updates, check the bridge, load and replay.
    fn try_sync(&mut self) -> SyncOutcome {
        let State::Buffering {
            buffer, snapshot, ..
        } = &mut self.state
        else {
            return SyncOutcome::Applied;
        };
        let Some(snap) = snapshot.as_ref() else {
            return SyncOutcome::Buffered;
        };
        let rule = self.rule;
        while buffer
            .front()
            .is_some_and(|u| rule.covered_by_snapshot(u, snap.last_id))
        {
            buffer.pop_front();
        }
        match buffer.front() {
            // In-stream snapshots define the sequence start; REST ones wait for a bridging update.
            None if !rule.snapshot_in_stream() => return SyncOutcome::Buffered,
            Some(first) if !rule.bridges(first, snap.last_id) => {
                *snapshot = None;
                return SyncOutcome::NeedSnapshot {
                    reason: "first buffered update does not bridge the snapshot",
                };
            }
            _ => {}
        }
        let Some(snap) = snapshot.take() else {
            return SyncOutcome::Buffered;
        };
        let replay = std::mem::take(buffer);
        let ts = snap.ts_ms.unwrap_or(0);
        self.book.load(&snap.bids, &snap.asks, snap.last_id, ts);
        self.state = State::Live;
        if let Some(outcome) = self.check_integrity(snap.checksum, ts) {
            return outcome;
        }
        let replayed = replay.len();
        let mut replay = replay.into_iter();
        if let Some(first) = replay.next() {
            if !self.provable(&first) {
                return match self.unprovable(first) {
                    SyncOutcome::Resync(d) => self.requeue(d, replay),
                    other => other,
                };
            }
            // The bridge was checked above; apply it without the continuity rule.
            match self.apply_live(first) {
                SyncOutcome::Resync(d) => return self.requeue(d, replay),
                SyncOutcome::Applied => self.record_replayed(),
                _ => {}
            }
        }
        while let Some(u) = replay.next() {
            match self.on_update(u) {
                SyncOutcome::Resync(d) => return self.requeue(d, replay),
                SyncOutcome::Applied => self.record_replayed(),
                _ => {}
            }
        }
        SyncOutcome::Synced { replayed }
    }

    /// A resync during replay: keep the rest of the replay queued behind the offending update.
    fn requeue(&mut self, d: Desync, rest: impl Iterator<Item = BookUpdate>) -> SyncOutcome {
        let rule = self.rule;
        if let State::Buffering {
            buffer,
            first_marker,
            ..
        } = &mut self.state
        {
            buffer.extend(rest);
            if first_marker.is_none() {
                *first_marker = buffer.front().and_then(|u| rule.first_marker(u));
            }
        }
        SyncOutcome::Resync(d)
    }

    fn apply_live(&mut self, u: BookUpdate) -> SyncOutcome {
        self.repeats = 0;
        self.book.apply(&u.bids, &u.asks, u.last_id, u.ts_ms);
        match self.check_integrity(u.checksum, u.ts_ms) {
            Some(outcome) => outcome,
            None => SyncOutcome::Applied,
        }
    }

    /// Crossed book or checksum mismatch → drop the book (nothing to requeue: the update is in it).
    fn check_integrity(&mut self, checksum: Option<i32>, ts_ms: i64) -> Option<SyncOutcome> {
        let detail = if self.book.is_crossed() {
            format!(
                "crossed book at id {}: bid {:?} >= ask {:?}",
                self.book.last_id,
                self.book.bids.best().map(|l| l.0),
                self.book.asks.best().map(|l| l.0)
            )
        } else {
            let expected = checksum.filter(|c| self.verify_checksum && *c != 0)?;
            let actual = okx_checksum(&self.book);
            if actual == expected {
                return None;
            }
            format!(
                "checksum mismatch at id {}: venue {expected}, local {actual}",
                self.book.last_id
            )
        };
        let last_good = self.book.ts_ms;
        self.reset();
        Some(SyncOutcome::Resync(Desync {
            cause: GapCause::Integrity,
            last_good_ts_ms: last_good,
            detected_ts_ms: ts_ms,
            detail,
            unprovable: false,
        }))
    }

    /// OKX updates without `prevSeqId` (older feeds, some mirrors) continue the book only if a
    /// non-zero checksum is verified; otherwise nothing can prove that no update was lost.
    fn provable(&self, u: &BookUpdate) -> bool {
        let okx = matches!(
            self.rule,
            SyncRule::OkxRestSnapshot | SyncRule::OkxWsSnapshot
        );
        !okx || u.prev_id.is_some() || (self.verify_checksum && u.checksum.is_some_and(|c| c != 0))
    }

    fn unprovable(&mut self, offending: BookUpdate) -> SyncOutcome {
        let detail = format!(
            "continuity unprovable after id {}: update without prevSeqId and no checksum verified (checksum {:?}, verify {}); book withheld",
            self.book.last_id, offending.checksum, self.verify_checksum
        );
        match self.desync(GapCause::Integrity, detail, offending) {
            SyncOutcome::Resync(mut d) => {
                d.unprovable = true;
                SyncOutcome::Resync(d)
            }
            other => other,
        }
    }

    fn desync(&mut self, cause: GapCause, detail: String, offending: BookUpdate) -> SyncOutcome {
        let d = Desync {
            cause,
            last_good_ts_ms: self.book.ts_ms,
            detected_ts_ms: offending.ts_ms,
            detail,
            unprovable: false,
        };
        self.reset();
        if let State::Buffering {
            buffer,
            first_marker,
            ..
        } = &mut self.state
        {
            *first_marker = self.rule.first_marker(&offending);
            buffer.push_back(offending);
        }
        SyncOutcome::Resync(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::book::SyncRule;

    fn upd(prev: i64, last: i64) -> BookUpdate {
        BookUpdate {
            first_id: last,
            last_id: last,
            prev_id: Some(prev),
            ts_ms: last,
            bids: vec![],
            asks: vec![],
            checksum: None,
        }
    }

    #[test]
    fn okx_sequence_reset_while_buffering_does_not_stall_the_sync() {
        let mut s = BookSync::new(SyncRule::OkxRestSnapshot, 10, false);
        assert_eq!(s.on_update(upd(100, 101)), SyncOutcome::Buffered);
        assert_eq!(s.on_update(upd(101, 102)), SyncOutcome::Buffered);
        assert_eq!(
            s.on_update(upd(102, 3)),
            SyncOutcome::SequenceReset,
            "a snapshot asked for before the reset must not be used"
        );
        assert_eq!(s.on_update(upd(3, 4)), SyncOutcome::Buffered);
        let snap = BookSnapshot {
            last_id: 4,
            ts_ms: Some(4),
            bids: vec![],
            asks: vec![],
            checksum: None,
        };
        assert_eq!(s.on_snapshot(snap), SyncOutcome::Buffered, "not too old");
        assert_eq!(s.on_update(upd(4, 6)), SyncOutcome::Synced { replayed: 1 });
        assert!(s.is_live());
    }

    /// Gate: the venue's ids restart far below the book's (a reset): a replay or two is ignored, a run
    /// of them resyncs the book instead of freezing it while frames keep arriving.
    #[test]
    fn a_run_of_updates_below_the_book_resyncs_it() {
        let mut s = BookSync::new(SyncRule::Gate, 10, false);
        let u = |first: i64, last: i64| BookUpdate {
            first_id: first,
            last_id: last,
            prev_id: None,
            ts_ms: 1_700_000_000_000 + last,
            bids: vec![],
            asks: vec![],
            checksum: None,
        };
        s.on_update(u(1_000, 1_001));
        let snap = BookSnapshot {
            last_id: 1_000,
            ts_ms: Some(1),
            bids: vec![],
            asks: vec![],
            checksum: None,
        };
        assert!(matches!(s.on_snapshot(snap), SyncOutcome::Synced { .. }));
        assert_eq!(
            s.on_update(u(1_001, 1_001)),
            SyncOutcome::Ignored,
            "a replay"
        );
        assert_eq!(s.on_update(u(1_002, 1_003)), SyncOutcome::Applied);
        for i in 1..MAX_REPEATS as i64 {
            assert_eq!(s.on_update(u(i, i)), SyncOutcome::Ignored, "update {i}");
        }
        match s.on_update(u(99, 99)) {
            SyncOutcome::Resync(d) => {
                assert_eq!(d.cause, GapCause::SequenceGap);
                assert!(d.detail.contains("went backwards"), "{}", d.detail);
            }
            other => panic!("{other:?}"),
        }
        assert!(!s.is_live());
    }

    /// A snapshot of the old sequence held when the reset arrives is dropped, so the new sequence's
    /// updates are not all taken as covered by it (which kept the book waiting for good).
    #[test]
    fn okx_sequence_reset_drops_a_held_snapshot_of_the_old_sequence() {
        let mut s = BookSync::new(SyncRule::OkxRestSnapshot, 10, false);
        let snap = |id| BookSnapshot {
            last_id: id,
            ts_ms: Some(id),
            bids: vec![],
            asks: vec![],
            checksum: None,
        };
        assert_eq!(s.on_snapshot(snap(500)), SyncOutcome::Buffered);
        assert_eq!(s.on_update(upd(500, 7)), SyncOutcome::SequenceReset);
        assert_eq!(s.on_update(upd(7, 9)), SyncOutcome::Buffered);
        assert_eq!(s.on_snapshot(snap(7)), SyncOutcome::Synced { replayed: 1 });
        assert_eq!(s.book().last_id, 9);
    }

    fn no_seq(checksum: Option<i32>) -> BookUpdate {
        BookUpdate {
            first_id: 0,
            last_id: 0,
            prev_id: None,
            ts_ms: 7,
            bids: vec![],
            asks: vec![],
            checksum,
        }
    }

    #[test]
    fn okx_updates_without_prev_seq_id_need_a_verified_checksum() {
        let snap = BookSnapshot {
            last_id: 0,
            ts_ms: Some(5),
            bids: vec![(10.into(), 1.into())],
            asks: vec![(11.into(), 1.into())],
            checksum: None,
        };
        let mut s = BookSync::new(SyncRule::OkxWsSnapshot, 400, false);
        assert_eq!(
            s.on_snapshot(snap.clone()),
            SyncOutcome::Synced { replayed: 0 }
        );
        let SyncOutcome::Resync(d) = s.on_update(no_seq(Some(0))) else {
            panic!("zero checksum, no prevSeqId: unprovable")
        };
        assert!(d.unprovable && d.cause == GapCause::Integrity, "{d:?}");
        assert!(!s.is_live(), "withheld");
        // With verification on, the book's checksum judges the update instead.
        let mut s = BookSync::new(SyncRule::OkxWsSnapshot, 400, true);
        s.on_snapshot(snap);
        let empty = okx_checksum(s.book());
        assert_ne!(empty, 0);
        assert_eq!(s.on_update(no_seq(Some(empty))), SyncOutcome::Applied);
        let SyncOutcome::Resync(d) = s.on_update(no_seq(Some(empty ^ 1))) else {
            panic!("mismatch")
        };
        assert!(
            !d.unprovable && d.detail.contains("checksum mismatch"),
            "{d:?}"
        );
    }
}
