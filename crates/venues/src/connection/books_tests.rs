//! Unit tests of [`super::Books`]: sync, cadence, tick by tick, resync gaps.

use super::*;
use crate::book::SyncRule;
use marketprism_config::OrderBookConfig;
use marketprism_model::GapCause;

fn d(v: i64) -> Decimal {
    Decimal::from(v)
}

fn books(rule: SyncRule) -> (Books, Symbol) {
    let sym = Symbol::new("BTC-USDT").unwrap();
    let plan = BookPlan {
        rule,
        symbols: vec![sym.clone()],
        config: OrderBookConfig {
            snapshot_levels: 2,
            ..OrderBookConfig::default()
        },
    };
    (Books::new(Exchange::BinanceDerivatives, plan, &[]), sym)
}

/// Binance USDⓈ-M books of `symbols`, `tick` published after every update, the top 2 levels.
fn tick_books(symbols: &[&Symbol], tick: &Symbol) -> Books {
    let plan = BookPlan {
        rule: SyncRule::BinanceFutures,
        symbols: symbols.iter().map(|s| (*s).clone()).collect(),
        config: OrderBookConfig {
            snapshot_levels: 2,
            every_update_symbols: vec![tick.clone()],
            ..OrderBookConfig::default()
        },
    };
    Books::new(Exchange::BinanceDerivatives, plan, &[])
}

/// BTC at the interval, ETH tick by tick: `(books, BTC, ETH)`.
fn slow_and_tick_books() -> (Books, Symbol, Symbol) {
    let (slow, tick) = (
        Symbol::new("BTC-USDT").unwrap(),
        Symbol::new("ETH-USDT").unwrap(),
    );
    (tick_books(&[&slow, &tick], &tick), slow, tick)
}

/// A REST snapshot at update id 10.
fn snap10() -> BookSnapshot {
    BookSnapshot {
        last_id: 10,
        ts_ms: Some(900),
        bids: vec![(d(9), d(1))],
        asks: vec![(d(12), d(1))],
        checksum: None,
    }
}

fn upd(first: i64, last: i64, prev: i64, ts: i64) -> BookUpdate {
    BookUpdate {
        first_id: first,
        last_id: last,
        prev_id: Some(prev),
        ts_ms: ts,
        bids: vec![(d(10), d(1))],
        asks: vec![(d(11), d(1))],
        checksum: None,
    }
}

#[test]
fn tick_by_tick_symbols_publish_after_every_update_and_the_others_at_cadence() {
    let (mut b, slow, tick) = slow_and_tick_books();
    let snap = snap10();
    let mut out = Vec::new();
    for sym in [&slow, &tick] {
        b.on_update(sym, upd(5, 12, 4, 1_000), 0, &mut out);
        b.on_snapshot(sym, snap.clone(), true, 0, &mut out);
    }
    assert_eq!(out.len(), 2, "each book is published once synced: {out:?}");
    out.clear();
    // Three updates in the same exchange millisecond, the second one deep in the book.
    for (i, sym) in [
        (0, &slow),
        (0, &tick),
        (1, &slow),
        (1, &tick),
        (2, &slow),
        (2, &tick),
    ] {
        let mut u = upd(13 + 2 * i, 14 + 2 * i, 12 + 2 * i, 1_000);
        if i == 1 {
            u.bids = vec![(d(1), d(5))];
            u.asks = vec![];
        }
        b.on_update(sym, u, 0, &mut out);
    }
    let ids: Vec<(String, i64)> = out
        .iter()
        .map(|e| match &e.payload {
            Payload::Orderbook(o) => (e.symbol.to_string(), o.last_update_id),
            p => panic!("{p:?}"),
        })
        .collect();
    let t = |id| ("ETH-USDT".to_owned(), id);
    assert_eq!(
        ids,
        vec![t(14), t(16), t(18)],
        "every update of the tick-by-tick book, none of the other within its interval"
    );
    out.clear();
    b.flush(10_000_000, &mut out);
    assert!(
        matches!(&out[..], [e] if e.symbol == slow),
        "only the interval book had unpublished changes: {out:?}"
    );
}

#[test]
fn sync_publishes_a_snapshot_then_at_cadence_and_a_gap_on_resync() {
    let (mut b, sym) = books(SyncRule::BinanceFutures);
    assert_eq!(
        b.initial_actions(),
        vec![BookAction::FetchSnapshot(sym.clone())]
    );
    let mut out = Vec::new();
    assert_eq!(b.on_update(&sym, upd(5, 12, 4, 1_000), 0, &mut out), None);
    let snap = BookSnapshot {
        last_id: 10,
        ts_ms: Some(900),
        bids: vec![(d(9), d(1))],
        asks: vec![(d(12), d(1))],
        checksum: None,
    };
    assert_eq!(
        b.on_snapshot(&sym, snap.clone(), false, 0, &mut out),
        None,
        "in-stream snapshot ignored for REST venues"
    );
    assert!(out.is_empty());
    b.on_snapshot(&sym, snap, true, 0, &mut out);
    assert!(
        matches!(&out[..], [Event { payload: Payload::Orderbook(o), ts_ms: 1_000, .. }] if o.last_update_id == 12 && o.bids.len() == 2)
    );
    out.clear();
    b.on_update(&sym, upd(13, 14, 12, 1_500), 0, &mut out);
    assert!(out.is_empty(), "not due before the 1 s cadence");
    b.on_update(&sym, upd(15, 16, 14, 2_000), 0, &mut out);
    assert_eq!(out.len(), 1);
    out.clear();
    let action = b.on_update(&sym, upd(20, 22, 18, 2_100), 0, &mut out);
    assert_eq!(action, Some(BookAction::FetchSnapshot(sym.clone())));
    let [
        Event {
            payload: Payload::Gap(g),
            ..
        },
    ] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (g.data_type, g.cause, g.start_ms, g.end_ms),
        (DataType::Orderbooks, GapCause::SequenceGap, 2_000, 2_100)
    );
    assert!(!b.is_live(&sym));
}

#[test]
fn a_sync_restarts_from_scratch_with_a_fresh_snapshot_but_a_live_book_is_left_alone() {
    let (mut b, sym) = books(SyncRule::OkxRestSnapshot);
    let mut out = Vec::new();
    let snap = |id| BookSnapshot {
        last_id: id,
        ts_ms: Some(1),
        bids: vec![(d(9), d(1))],
        asks: vec![(d(12), d(1))],
        checksum: None,
    };
    b.on_snapshot(&sym, snap(1_000), true, 0, &mut out);
    assert_eq!(
        b.on_update(&sym, upd(5, 5, 4, 1), 0, &mut out),
        None,
        "covered"
    );
    assert_eq!(
        b.restart_sync(&sym),
        Some(BookAction::Refetch(sym.clone())),
        "a fetch on its way may bring the snapshot that did not bridge"
    );
    b.on_update(&sym, upd(6, 6, 5, 2), 0, &mut out);
    b.on_snapshot(&sym, snap(5), true, 0, &mut out);
    assert!(b.is_live(&sym), "the held snapshot 1000 was forgotten");
    assert_eq!(b.restart_sync(&sym), None);
    assert!(b.is_live(&sym));

    let (mut d, sym) = books(SyncRule::Deribit);
    assert_eq!(d.restart_sync(&sym), Some(BookAction::Resubscribe(sym)));
}

/// A book that changes and then goes quiet is published one interval after the change, not
/// held back until the next change (which may never come while the market is still).
#[test]
fn a_quiet_books_last_change_is_flushed_after_one_interval() {
    let (mut b, sym) = books(SyncRule::BinanceFutures);
    let mut out = Vec::new();
    b.on_update(&sym, upd(5, 12, 4, 1_000), 0, &mut out);
    let snap = BookSnapshot {
        last_id: 10,
        ts_ms: Some(900),
        bids: vec![(d(9), d(1))],
        asks: vec![(d(12), d(1))],
        checksum: None,
    };
    b.on_snapshot(&sym, snap, true, 50_000, &mut out);
    assert_eq!(out.len(), 1, "published at sync");
    out.clear();
    b.on_update(&sym, upd(13, 14, 12, 1_200), 50_100, &mut out);
    assert!(out.is_empty(), "not due yet by exchange time");
    assert_eq!(b.next_flush_ms(), Some(51_100));
    b.flush(51_099, &mut out);
    assert!(out.is_empty(), "not before one interval of quiet");
    b.flush(51_100, &mut out);
    let [
        Event {
            payload: Payload::Orderbook(o),
            ts_ms: 1_200,
            ..
        },
    ] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        o.last_update_id, 14,
        "the latest state, stamped with its exchange time"
    );
    assert_eq!(b.next_flush_ms(), None);
    out.clear();
    b.flush(99_000, &mut out);
    assert!(out.is_empty(), "flushed once");
}

#[test]
fn in_stream_venues_resubscribe_on_gap() {
    let (mut b, sym) = books(SyncRule::Deribit);
    assert!(b.initial_actions().is_empty());
    let mut out = Vec::new();
    let snap = BookSnapshot {
        last_id: 10,
        ts_ms: Some(1),
        bids: vec![],
        asks: vec![],
        checksum: None,
    };
    b.on_snapshot(&sym, snap, false, 0, &mut out);
    assert!(b.is_live(&sym));
    assert_eq!(
        b.on_update(&sym, upd(12, 12, 11, 5), 0, &mut out),
        Some(BookAction::Resubscribe(sym.clone()))
    );
}

fn ids(out: &[Event]) -> Vec<(String, i64, i64)> {
    out.iter()
        .map(|e| match &e.payload {
            Payload::Orderbook(o) => (e.symbol.to_string(), o.last_update_id, e.ts_ms),
            p => panic!("{p:?}"),
        })
        .collect()
}

#[test]
fn a_tick_by_tick_book_publishes_every_update_replayed_into_its_snapshot() {
    let (mut b, slow, tick) = slow_and_tick_books();
    let snap = snap10();
    let mut out = Vec::new();
    for sym in [&slow, &tick] {
        // Three updates arrive before the snapshot: the bridge and two more.
        b.on_update(sym, upd(5, 12, 4, 1_000), 0, &mut out);
        b.on_update(sym, upd(13, 14, 12, 1_001), 0, &mut out);
        let before = out.len();
        b.on_update(sym, upd(15, 16, 14, 1_002), 0, &mut out);
        assert_eq!(out.len(), before, "nothing before the snapshot: {out:?}");
        b.on_snapshot(sym, snap.clone(), true, 5_000, &mut out);
    }
    let t = |id, ts| ("ETH-USDT".to_owned(), id, ts);
    assert_eq!(
        ids(&out),
        vec![
            ("BTC-USDT".to_owned(), 16, 1_002),
            t(12, 1_000),
            t(14, 1_001),
            t(16, 1_002)
        ],
        "the interval book once, the tick-by-tick book after each replayed update"
    );
    assert!(out.iter().all(|e| e.recv_ts_ms == 5_000));
}

#[test]
fn a_resync_inside_the_replay_still_publishes_the_good_updates_before_its_gap() {
    let tick = Symbol::new("ETH-USDT").unwrap();
    let mut b = tick_books(&[&tick], &tick);
    let snap = snap10();
    let mut out = Vec::new();
    b.on_update(&tick, upd(5, 12, 4, 1_000), 0, &mut out);
    b.on_update(&tick, upd(13, 14, 12, 1_001), 0, &mut out);
    // `pu` 20 does not continue 14: the chain breaks inside the replay.
    b.on_update(&tick, upd(21, 22, 20, 1_002), 0, &mut out);
    let action = b.on_snapshot(&tick, snap, true, 5_000, &mut out);
    assert_eq!(action, Some(BookAction::FetchSnapshot(tick.clone())));
    let books: Vec<i64> = out
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Orderbook(o) => Some(o.last_update_id),
            _ => None,
        })
        .collect();
    assert_eq!(books, [12, 14], "the updates applied before the break");
    let Payload::Gap(g) = &out.last().expect("a gap").payload else {
        panic!("the gap comes last: {out:?}")
    };
    assert_eq!((g.cause, g.start_ms), (GapCause::SequenceGap, 1_001));
}
