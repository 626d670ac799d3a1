//! Unit tests of [`super::BookHandover`]: what a rotation forwards, holds, drops and marks as a gap.

use super::*;
use marketprism_model::{Gap, MarketType, OrderBookSnapshot};

fn row(symbol: &str, id: i64) -> Event {
    Event {
        exchange: Exchange::GateSpot,
        market_type: MarketType::Spot,
        symbol: Symbol::new(symbol).unwrap(),
        ts_ms: 1_000 + id,
        recv_ts_ms: 1_000 + id,
        payload: Payload::Orderbook(OrderBookSnapshot {
            last_update_id: id,
            bids: vec![],
            asks: vec![],
        }),
    }
}

fn btc() -> Symbol {
    Symbol::new("BTC-USDT").unwrap()
}

/// `(symbol, update id)` of rows, `(symbol, -start)` of gaps: one readable list.
fn seen(v: &[Event]) -> Vec<(String, i64)> {
    v.iter()
        .map(|e| match &e.payload {
            Payload::Orderbook(b) => (e.symbol.to_string(), b.last_update_id),
            Payload::Gap(g) => (format!("gap {}", e.symbol), -g.start_ms),
            p => panic!("{p:?}"),
        })
        .collect()
}

fn forward_all(h: &mut BookHandover, rows: impl IntoIterator<Item = Event>) -> Vec<Event> {
    rows.into_iter().flat_map(|e| h.admitted(e)).collect()
}

#[test]
fn the_candidate_continues_after_the_last_forwarded_update() {
    let mut h = BookHandover::new([btc()]);
    forward_all(&mut h, [10, 11, 12].map(|id| row("BTC-USDT", id)));
    // The candidate synced at 11 and ran ahead to 14; ETH (an interval book) only it has seen.
    assert!(!h.ready(), "no candidate row yet");
    for id in [11, 12, 13, 14] {
        h.hold(row("BTC-USDT", id));
    }
    h.hold(row("ETH-USDT", 7));
    assert!(
        h.ready(),
        "the old session's 12 reached the candidate's first row, 11"
    );
    assert_eq!(
        seen(&h.release()),
        [
            ("BTC-USDT".to_owned(), 13),
            ("BTC-USDT".to_owned(), 14),
            ("ETH-USDT".to_owned(), 7)
        ]
    );
    assert!(h.release().is_empty(), "released once");
}

#[test]
fn the_swap_waits_for_the_old_session_and_a_behind_candidate_repeats_nothing() {
    let mut h = BookHandover::new([btc()]);
    forward_all(&mut h, [row("BTC-USDT", 10)]);
    h.hold(row("BTC-USDT", 13));
    assert!(!h.ready(), "updates 11 and 12 would be nobody's");
    forward_all(&mut h, [row("BTC-USDT", 12), row("BTC-USDT", 15)]);
    assert!(h.ready());
    assert!(
        h.release().is_empty(),
        "13 was published by the old session"
    );
    // The new session was behind: its 14 and 15 were published already, 16 is new.
    let out = forward_all(&mut h, [14, 15, 16].map(|id| row("BTC-USDT", id)));
    assert_eq!(seen(&out), [("BTC-USDT".to_owned(), 16)]);
    // Caught up: from now on its rows pass as they come, even smaller ids (a sequence reset).
    let out = forward_all(&mut h, [row("BTC-USDT", 3)]);
    assert_eq!(seen(&out), [("BTC-USDT".to_owned(), 3)]);
}

#[test]
fn interval_books_do_not_hold_the_swap() {
    let mut h = BookHandover::new([]);
    forward_all(&mut h, [row("BTC-USDT", 10)]);
    assert!(h.ready(), "no tick-by-tick book: nothing to wait for");
    h.hold(row("BTC-USDT", 30));
    assert_eq!(seen(&h.release()), [("BTC-USDT".to_owned(), 30)]);
}

#[test]
fn a_forced_swap_leaves_a_handover_gap_from_the_last_row_to_the_next() {
    let mut h = BookHandover::new([btc(), Symbol::new("ETH-USDT").unwrap()]);
    forward_all(&mut h, [row("BTC-USDT", 10), row("ETH-USDT", 50)]);
    // BTC: the candidate starts at 13, the old session stopped at 10. ETH: no candidate row yet.
    h.hold(row("BTC-USDT", 13));
    assert!(!h.ready());
    let out = h.release();
    assert_eq!(
        seen(&out),
        [
            ("gap BTC-USDT".to_owned(), -1_010),
            ("BTC-USDT".to_owned(), 13)
        ]
    );
    let Payload::Gap(Gap {
        cause,
        end_ms,
        data_type,
        ..
    }) = &out[0].payload
    else {
        panic!()
    };
    assert_eq!(
        (*cause, *end_ms, *data_type),
        (GapCause::Handover, 1_013, DataType::Orderbooks)
    );
    // ETH's gap closes at its first row from the new session.
    let out = forward_all(&mut h, [row("ETH-USDT", 58)]);
    assert_eq!(
        seen(&out),
        [
            ("gap ETH-USDT".to_owned(), -1_050),
            ("ETH-USDT".to_owned(), 58)
        ]
    );
    assert_eq!(seen(&forward_all(&mut h, [row("ETH-USDT", 59)])).len(), 1);
}

#[test]
fn a_failed_candidate_leaves_nothing() {
    let mut h = BookHandover::new([btc()]);
    forward_all(&mut h, [row("BTC-USDT", 20)]);
    h.hold(row("BTC-USDT", 25));
    h.discard_held();
    assert!(h.held.is_empty());
    assert!(!h.ready(), "the next candidate starts from nothing");
}
