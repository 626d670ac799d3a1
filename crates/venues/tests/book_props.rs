//! Property tests of the book sync on random diff sequences: the book equals a simple model, is never
//! left crossed, and a missing diff is always detected, for every venue rule.

use marketprism_model::{Decimal, GapCause};
use marketprism_venues::book::{BookSnapshot, BookSync, BookUpdate, SyncOutcome, SyncRule};
use proptest::prelude::*;
use std::collections::BTreeMap;

const RULES: [SyncRule; 4] = [
    SyncRule::BinanceFutures,
    SyncRule::BinanceSpot,
    SyncRule::OkxWsSnapshot,
    SyncRule::Deribit,
];
const SNAP_ID: i64 = 1_000;

type Diff = (Vec<(u32, u32)>, Vec<(u32, u32)>, u8);

fn level(price_cents: u32, size: u32) -> (Decimal, Decimal) {
    (Decimal::new(i64::from(price_cents), 2), Decimal::from(size))
}

/// Turn raw diffs into a contiguous update sequence for `rule`, starting right after the snapshot.
fn sequence(rule: SyncRule, diffs: &[Diff]) -> Vec<BookUpdate> {
    let mut last = SNAP_ID;
    diffs
        .iter()
        .enumerate()
        .map(|(i, (bids, asks, width))| {
            let width = i64::from(*width % 3) + 1;
            let (first, end) = match rule {
                // The first USD-M event must straddle lastUpdateId: U <= L <= u.
                SyncRule::BinanceFutures if i == 0 => (last - 1, last + width),
                SyncRule::BinanceFutures | SyncRule::BinanceSpot => (last + 1, last + width),
                _ => (last + width, last + width),
            };
            let prev = match rule {
                SyncRule::BinanceSpot => None,
                _ => Some(last),
            };
            last = end;
            BookUpdate {
                first_id: first,
                last_id: end,
                prev_id: prev,
                ts_ms: i64::try_from(i).unwrap(),
                bids: bids.iter().map(|&(p, q)| level(p, q)).collect(),
                asks: asks.iter().map(|&(p, q)| level(p, q)).collect(),
                checksum: None,
            }
        })
        .collect()
}

fn snapshot(bids: &[(u32, u32)], asks: &[(u32, u32)]) -> BookSnapshot {
    BookSnapshot {
        last_id: SNAP_ID,
        ts_ms: Some(0),
        bids: bids.iter().map(|&(p, q)| level(p, q)).collect(),
        asks: asks.iter().map(|&(p, q)| level(p, q)).collect(),
        checksum: None,
    }
}

fn apply_model(side: &mut BTreeMap<Decimal, Decimal>, levels: &[(Decimal, Decimal)]) {
    for &(p, q) in levels {
        if q.is_zero() {
            side.remove(&p);
        } else {
            side.insert(p, q);
        }
    }
}

/// Bids strictly below asks: 1.00..99.99 and 100.00..199.99 (sizes 0 = delete).
fn uncrossed_diff() -> impl Strategy<Value = Diff> {
    (
        prop::collection::vec((100u32..10_000, 0u32..4), 0..8),
        prop::collection::vec((10_000u32..20_000, 0u32..4), 0..8),
        any::<u8>(),
    )
}

fn any_diff() -> impl Strategy<Value = Diff> {
    (
        prop::collection::vec((100u32..300, 0u32..3), 0..6),
        prop::collection::vec((100u32..300, 0u32..3), 0..6),
        any::<u8>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn book_equals_model_and_is_never_crossed(
        rule_i in 0usize..4,
        snap_bids in prop::collection::vec((100u32..10_000, 1u32..4), 0..20),
        snap_asks in prop::collection::vec((10_000u32..20_000, 1u32..4), 0..20),
        diffs in prop::collection::vec(uncrossed_diff(), 1..40),
    ) {
        let rule = RULES[rule_i];
        let mut sync = BookSync::new(rule, 10_000, false);
        let snap = snapshot(&snap_bids, &snap_asks);
        let (mut mb, mut ma) = (BTreeMap::new(), BTreeMap::new());
        apply_model(&mut mb, &snap.bids);
        apply_model(&mut ma, &snap.asks);
        sync.on_snapshot(snap);
        for u in sequence(rule, &diffs) {
            apply_model(&mut mb, &u.bids);
            apply_model(&mut ma, &u.asks);
            let outcome = sync.on_update(u);
            prop_assert!(matches!(outcome, SyncOutcome::Applied | SyncOutcome::Synced { .. }), "{:?}", outcome);
            prop_assert!(!sync.book().is_crossed());
            let top = sync.book().top(10_000);
            let bids: Vec<_> = mb.iter().rev().map(|(p, q)| (*p, *q)).collect();
            let asks: Vec<_> = ma.iter().map(|(p, q)| (*p, *q)).collect();
            prop_assert_eq!(top.bids.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>(), bids);
            prop_assert_eq!(top.asks.iter().map(|l| (l.0, l.1)).collect::<Vec<_>>(), asks);
            prop_assert!(sync.book().bids.is_sorted() && sync.book().asks.is_sorted());
        }
    }

    #[test]
    fn a_dropped_diff_is_always_detected(
        rule_i in 0usize..4,
        diffs in prop::collection::vec(uncrossed_diff(), 3..30),
        drop_at in any::<prop::sample::Index>(),
    ) {
        let rule = RULES[rule_i];
        let updates = sequence(rule, &diffs);
        // Drop one diff after the first (the first bridges the snapshot), never the last.
        let k = 1 + drop_at.index(updates.len() - 2);
        let mut sync = BookSync::new(rule, 10_000, false);
        sync.on_snapshot(snapshot(&[(100, 1)], &[(20_000, 1)]));
        for (i, u) in updates.into_iter().enumerate() {
            if i == k {
                continue;
            }
            let outcome = sync.on_update(u);
            if i == k + 1 {
                prop_assert!(matches!(&outcome, SyncOutcome::Resync(d) if d.cause == GapCause::SequenceGap), "{:?}", outcome);
                prop_assert!(!sync.is_live());
                prop_assert_eq!(sync.buffered(), 1, "the offending diff is kept for the next snapshot");
                break;
            }
            prop_assert!(matches!(outcome, SyncOutcome::Applied | SyncOutcome::Synced { .. }), "{:?}", outcome);
        }
    }

    #[test]
    fn a_live_book_is_never_crossed(
        rule_i in 0usize..4,
        diffs in prop::collection::vec(any_diff(), 1..40),
    ) {
        let rule = RULES[rule_i];
        let mut sync = BookSync::new(rule, 10_000, false);
        sync.on_snapshot(snapshot(&[(100, 1)], &[(299, 1)]));
        let mut integrity_resyncs = 0;
        for u in sequence(rule, &diffs) {
            if let SyncOutcome::Resync(d) = sync.on_update(u) {
                prop_assert_eq!(d.cause, GapCause::Integrity);
                integrity_resyncs += 1;
                break;
            }
            prop_assert!(sync.is_live() && !sync.book().is_crossed());
        }
        prop_assert!(integrity_resyncs <= 1);
    }
}
