//! The venues' documented sequence rules as pure predicates (exchange-protocols.md §1.5, §2.3, §3.3, §4).
//!
//! | rule | covered by snapshot `L` | first event after `L` | then, after last id `p` |
//! |---|---|---|---|
//! | Binance USD-M | `u < L` | `U <= L <= u` | `pu == p` |
//! | Binance spot | `u <= L` (snapshot too old if `L < first U`) | `U <= L+1 <= u` | `U <= p+1` (`U > p+1` = gap) |
//! | OKX, REST snapshot | `seqId <= L` (too old if `L < first prevSeqId`) | `prevSeqId <= L < seqId` | `prevSeqId == p` |
//! | OKX, WS snapshot | `seqId <= L` | `prevSeqId == L` | `prevSeqId == p` |
//! | Deribit | `change_id <= L` | `prev_change_id == L` | `prev_change_id == p` |
//! | Gate (spot, USDT futures) | `u < L+1` (too old if `L+1 < first U`) | `U <= L+1 <= u` | `U == p+1` (`u <= p` replay) |
//! | MEXC spot | `toVersion <= L` (too old if `L < first fromVersion`) | `fromVersion <= L+1 < toVersion+1` | `fromVersion == p+1` |
//! | MEXC contracts | `version <= L` (too old if `L+1 < first version`) | `version == L+1` | `version == p+1` |
//!
//! MEXC from its docs: spot "How to Properly Maintain a Local Copy of the Order Book" (steps 4-7),
//! contracts "How is depth information maintained" (step 6); both strict: any other `fromVersion`
//! (spot) or `version` (contracts) above the last is a gap.
//!
//! OKX exceptions fall out of `prevSeqId == p`: a keep-alive has `seqId == prevSeqId == p`, and a
//! post-maintenance reset has `seqId < prevSeqId == p`; both continue the sequence.

use super::BookUpdate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncRule {
    BinanceFutures,
    BinanceSpot,
    /// Legacy OKX: the first push of the subscription is the snapshot.
    OkxWsSnapshot,
    /// OKX after the WS snapshot's removal: snapshot from REST `/api/v5/market/books` carrying `seqId`.
    OkxRestSnapshot,
    Deribit,
    /// Gate v4 `order_book_update`: REST snapshot `id` (`with_id=true`), updates `U`..`u`.
    Gate,
    /// MEXC spot `spot@public.aggre.depth`: `fromVersion`/`toVersion` (first/last id).
    MexcSpot,
    /// MEXC contracts `push.depth`: one `version` per update (first = last id).
    MexcFutures,
}

/// How an update relates to the last id applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continuity {
    /// Applies directly on top.
    Next,
    /// Already applied (a replay): skip.
    Duplicate,
    /// Something was missed: rebuild.
    Gap,
}

impl SyncRule {
    /// The snapshot arrives in the stream (subscribe again to get a new one) rather than over REST.
    pub fn snapshot_in_stream(self) -> bool {
        matches!(self, SyncRule::OkxWsSnapshot | SyncRule::Deribit)
    }

    /// The buffered update is already contained in the snapshot with id `snap`.
    pub fn covered_by_snapshot(self, u: &BookUpdate, snap: i64) -> bool {
        match self {
            SyncRule::BinanceFutures => u.last_id < snap,
            SyncRule::BinanceSpot
            | SyncRule::OkxRestSnapshot
            | SyncRule::OkxWsSnapshot
            | SyncRule::Deribit
            | SyncRule::Gate
            | SyncRule::MexcSpot
            | SyncRule::MexcFutures => u.last_id <= snap,
        }
    }

    /// What to remember of the first buffered update to judge a REST snapshot's age.
    pub fn first_marker(self, u: &BookUpdate) -> Option<i64> {
        match self {
            SyncRule::BinanceSpot | SyncRule::Gate | SyncRule::MexcSpot | SyncRule::MexcFutures => {
                Some(u.first_id)
            }
            SyncRule::OkxRestSnapshot => u.prev_id,
            _ => None,
        }
    }

    /// The snapshot predates the buffered stream: fetch another.
    pub fn snapshot_too_old(self, snap: i64, first_marker: Option<i64>) -> bool {
        match (self, first_marker) {
            (
                SyncRule::BinanceSpot | SyncRule::OkxRestSnapshot | SyncRule::MexcSpot,
                Some(first),
            ) => snap < first,
            (SyncRule::Gate | SyncRule::MexcFutures, Some(first)) => snap.saturating_add(1) < first,
            _ => false,
        }
    }

    /// The first update not covered by the snapshot connects to it.
    pub fn bridges(self, u: &BookUpdate, snap: i64) -> bool {
        match self {
            SyncRule::BinanceFutures => u.first_id <= snap && snap <= u.last_id,
            SyncRule::BinanceSpot | SyncRule::Gate | SyncRule::MexcSpot => {
                u.first_id <= snap.saturating_add(1) && snap < u.last_id
            }
            SyncRule::MexcFutures => u.first_id == snap.saturating_add(1),
            SyncRule::OkxRestSnapshot => match u.prev_id {
                Some(prev) => prev <= snap && snap < u.last_id,
                None => true,
            },
            SyncRule::OkxWsSnapshot | SyncRule::Deribit => {
                self.continuity(u, snap) == Continuity::Next
            }
        }
    }

    /// How `u` relates to the last applied id `last`.
    pub fn continuity(self, u: &BookUpdate, last: i64) -> Continuity {
        match self {
            SyncRule::BinanceFutures => {
                if u.last_id <= last {
                    Continuity::Duplicate
                } else if u.prev_id == Some(last) {
                    Continuity::Next
                } else {
                    Continuity::Gap
                }
            }
            SyncRule::BinanceSpot => {
                if u.last_id <= last {
                    Continuity::Duplicate
                } else if u.first_id > last.saturating_add(1) {
                    Continuity::Gap
                } else {
                    Continuity::Next
                }
            }
            SyncRule::OkxWsSnapshot | SyncRule::OkxRestSnapshot => match u.prev_id {
                // Recordings from before seqId existed: only the checksum can judge them.
                None => Continuity::Next,
                Some(prev) if prev == last => Continuity::Next,
                Some(prev) if prev < last && u.last_id <= last && u.last_id > prev => {
                    Continuity::Duplicate
                }
                Some(_) => Continuity::Gap,
            },
            SyncRule::Deribit => match u.prev_id {
                Some(prev) if prev == last => Continuity::Next,
                _ if u.last_id <= last => Continuity::Duplicate,
                _ => Continuity::Gap,
            },
            // Strict `U == p + 1`: an overlap is a gap, not a partial replay.
            SyncRule::Gate | SyncRule::MexcSpot | SyncRule::MexcFutures => {
                if u.last_id <= last {
                    Continuity::Duplicate
                } else if u.first_id == last.saturating_add(1) {
                    Continuity::Next
                } else {
                    Continuity::Gap
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(first: i64, last: i64, prev: Option<i64>) -> BookUpdate {
        BookUpdate {
            first_id: first,
            last_id: last,
            prev_id: prev,
            ts_ms: 0,
            bids: vec![],
            asks: vec![],
            checksum: None,
        }
    }

    #[test]
    fn binance_futures_rules() {
        let r = SyncRule::BinanceFutures;
        assert!(r.covered_by_snapshot(&up(150, 159, Some(140)), 160));
        assert!(!r.covered_by_snapshot(&up(157, 160, Some(149)), 160));
        assert!(r.bridges(&up(157, 160, Some(149)), 160));
        assert!(r.bridges(&up(157, 165, Some(149)), 160));
        assert!(
            !r.bridges(&up(161, 165, Some(160)), 160),
            "U > lastUpdateId: snapshot too old"
        );
        assert_eq!(
            r.continuity(&up(170, 175, Some(165)), 165),
            Continuity::Next
        );
        assert_eq!(r.continuity(&up(170, 175, Some(164)), 165), Continuity::Gap);
        assert_eq!(
            r.continuity(&up(160, 165, Some(150)), 165),
            Continuity::Duplicate
        );
    }

    #[test]
    fn binance_spot_rules() {
        let r = SyncRule::BinanceSpot;
        assert!(r.snapshot_too_old(99, Some(100)));
        assert!(!r.snapshot_too_old(100, Some(100)));
        assert!(r.covered_by_snapshot(&up(95, 100, None), 100));
        assert!(r.bridges(&up(101, 105, None), 100));
        assert!(r.bridges(&up(98, 105, None), 100));
        assert!(!r.bridges(&up(102, 105, None), 100));
        assert_eq!(r.continuity(&up(106, 110, None), 105), Continuity::Next);
        assert_eq!(r.continuity(&up(107, 110, None), 105), Continuity::Gap);
        assert_eq!(
            r.continuity(&up(101, 105, None), 105),
            Continuity::Duplicate
        );
    }

    #[test]
    fn okx_documented_sequence_including_keepalive_and_reset() {
        let r = SyncRule::OkxWsSnapshot;
        // docs: snap(-1→10), upd(10→15), upd(15→15, no change), upd(15→3, reset), upd(3→5)
        let mut last = 10;
        for (prev, seq) in [(10, 15), (15, 15), (15, 3), (3, 5)] {
            assert_eq!(
                r.continuity(&up(seq, seq, Some(prev)), last),
                Continuity::Next
            );
            last = seq;
        }
        assert_eq!(r.continuity(&up(9, 9, Some(6)), 5), Continuity::Gap);
        assert_eq!(r.continuity(&up(5, 5, Some(3)), 5), Continuity::Duplicate);
        let rest = SyncRule::OkxRestSnapshot;
        assert!(rest.snapshot_too_old(9, Some(10)));
        assert!(rest.bridges(&up(12, 12, Some(8)), 10));
        assert!(!rest.bridges(&up(12, 12, Some(11)), 10));
    }

    #[test]
    fn gate_rules_need_exact_continuation() {
        let r = SyncRule::Gate;
        // Recorded BTC_USDC: snapshot id 13035634, updates 13035633 and 13035634 are both covered.
        assert!(r.covered_by_snapshot(&up(13_035_633, 13_035_633, None), 13_035_634));
        assert!(r.covered_by_snapshot(&up(13_035_634, 13_035_634, None), 13_035_634));
        assert!(r.bridges(&up(101, 105, None), 100));
        assert!(r.bridges(&up(98, 101, None), 100));
        assert!(!r.bridges(&up(102, 105, None), 100), "id+1 < U");
        assert!(!r.snapshot_too_old(100, Some(101)));
        assert!(r.snapshot_too_old(100, Some(102)));
        assert_eq!(r.continuity(&up(106, 110, None), 105), Continuity::Next);
        assert_eq!(r.continuity(&up(107, 110, None), 105), Continuity::Gap);
        assert_eq!(
            r.continuity(&up(104, 110, None), 105),
            Continuity::Gap,
            "an overlap is not U == u+1"
        );
        assert_eq!(
            r.continuity(&up(101, 105, None), 105),
            Continuity::Duplicate
        );
    }

    #[test]
    fn mexc_spot_rules_follow_the_documented_steps() {
        let r = SyncRule::MexcSpot;
        // Step 4: a snapshot older than the first buffered fromVersion is fetched again.
        assert!(r.snapshot_too_old(99, Some(100)));
        assert!(!r.snapshot_too_old(100, Some(100)));
        // Step 5: toVersion <= lastUpdateId is dropped.
        assert!(r.covered_by_snapshot(&up(95, 100, None), 100));
        assert!(!r.covered_by_snapshot(&up(95, 101, None), 100));
        // Step 6: the first remaining one must not start after lastUpdateId + 1.
        assert!(r.bridges(&up(101, 105, None), 100));
        assert!(r.bridges(&up(98, 105, None), 100));
        assert!(!r.bridges(&up(102, 105, None), 100));
        // Step 7: strictly fromVersion == previous toVersion + 1.
        assert_eq!(r.continuity(&up(106, 110, None), 105), Continuity::Next);
        assert_eq!(r.continuity(&up(107, 110, None), 105), Continuity::Gap);
        assert_eq!(
            r.continuity(&up(104, 110, None), 105),
            Continuity::Gap,
            "an overlap is not the documented continuation"
        );
        assert_eq!(
            r.continuity(&up(101, 105, None), 105),
            Continuity::Duplicate
        );
    }

    #[test]
    fn mexc_contract_versions_step_by_one() {
        let r = SyncRule::MexcFutures;
        assert!(r.covered_by_snapshot(&up(100, 100, None), 100));
        assert!(r.bridges(&up(101, 101, None), 100));
        assert!(!r.bridges(&up(102, 102, None), 100));
        assert!(r.snapshot_too_old(98, Some(100)));
        assert!(!r.snapshot_too_old(99, Some(100)));
        assert_eq!(r.continuity(&up(101, 101, None), 100), Continuity::Next);
        assert_eq!(r.continuity(&up(103, 103, None), 100), Continuity::Gap);
        assert_eq!(r.continuity(&up(99, 99, None), 100), Continuity::Duplicate);
    }

    #[test]
    fn deribit_rules() {
        let r = SyncRule::Deribit;
        assert_eq!(r.continuity(&up(5, 5, Some(4)), 4), Continuity::Next);
        assert_eq!(r.continuity(&up(6, 6, Some(5)), 4), Continuity::Gap);
        assert_eq!(r.continuity(&up(4, 4, Some(3)), 4), Continuity::Duplicate);
        assert_eq!(r.continuity(&up(9, 9, None), 4), Continuity::Gap);
    }
}
