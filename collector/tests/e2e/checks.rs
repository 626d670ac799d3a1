//! Invariants over a run's events, true whatever faults were injected: books never crossed, no trade
//! emitted twice, and every hole in a trade id sequence covered by a trades gap event.

use marketprism_model::{DataType, Event, Exchange, Payload};
use std::collections::{BTreeMap, HashSet};

/// Slack between exchange timestamps and the local times a gap is stamped with.
const GAP_SLACK_MS: i64 = 1_000;

pub fn assert_books_never_crossed(events: &[Event]) {
    for e in events {
        let Payload::Orderbook(b) = &e.payload else {
            continue;
        };
        if let (Some(bid), Some(ask)) = (b.bids.first(), b.asks.first()) {
            assert!(
                bid.0 < ask.0,
                "crossed book published: {} {} id {}: bid {} >= ask {}",
                e.exchange,
                e.symbol,
                b.last_update_id,
                bid.0,
                ask.0
            );
        }
        let sorted = |levels: &[marketprism_model::Level], desc: bool| {
            levels.windows(2).all(|w| {
                if desc {
                    w[0].0 > w[1].0
                } else {
                    w[0].0 < w[1].0
                }
            })
        };
        assert!(
            sorted(&b.bids, true) && sorted(&b.asks, false),
            "unsorted levels: {e:?}"
        );
    }
}

/// `(exchange, symbol) -> [(trade id, ts)]` in arrival order.
fn trades_by_stream(events: &[Event]) -> BTreeMap<(Exchange, String), Vec<(u64, i64)>> {
    let mut out: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for e in events {
        if let Payload::Trade(t) = &e.payload {
            let id = t
                .trade_id
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("numeric trade id expected: {e:?}"));
            out.entry((e.exchange, e.symbol.to_string()))
                .or_default()
                .push((id, e.ts_ms));
        }
    }
    out
}

pub fn assert_no_duplicate_trades(events: &[Event]) {
    for ((exchange, symbol), ids) in trades_by_stream(events) {
        let mut seen = HashSet::new();
        for (id, _) in ids {
            assert!(
                seen.insert(id),
                "trade {id} of {exchange} {symbol} emitted twice"
            );
        }
    }
}

/// Venues whose trade ids are per fill and contiguous (OKX `tradeId` is the last fill of an aggregate;
/// MEXC spot deals carry no id (ours is a hash), MEXC contract ids are not per instrument).
fn contiguous_ids(exchange: Exchange) -> bool {
    !matches!(
        exchange,
        Exchange::OkxSpot
            | Exchange::OkxDerivatives
            | Exchange::MexcSpot
            | Exchange::MexcDerivatives
    )
}

/// Every hole in the id sequence lies within a trades gap event of the same stream; returns holes seen.
pub fn assert_trade_holes_covered(events: &[Event]) -> usize {
    let mut holes = 0;
    for ((exchange, symbol), mut ids) in trades_by_stream(events) {
        if !contiguous_ids(exchange) {
            continue;
        }
        ids.sort_unstable();
        ids.dedup_by_key(|(id, _)| *id);
        for w in ids.windows(2) {
            let ((a, ta), (b, tb)) = (w[0], w[1]);
            if b == a + 1 {
                continue;
            }
            holes += 1;
            let covered = events.iter().any(|e| {
                matches!(&e.payload, Payload::Gap(g)
                    if e.exchange == exchange && e.symbol.as_str() == symbol
                        && g.data_type == DataType::Trades
                        && g.start_ms <= tb + GAP_SLACK_MS && g.end_ms >= ta - GAP_SLACK_MS)
            });
            assert!(
                covered,
                "{exchange} {symbol}: trade ids jump {a} -> {b} ({ta}..{tb} ms) without a trades gap event"
            );
        }
    }
    holes
}

/// All three invariants.
pub fn assert_invariants(events: &[Event]) {
    assert_books_never_crossed(events);
    assert_no_duplicate_trades(events);
    assert_trade_holes_covered(events);
}
