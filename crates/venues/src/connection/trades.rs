//! Trade id bookkeeping of one connection, pure: a trade sent twice is dropped, and where the venue's
//! ids are contiguous (Binance trade `t` and aggregate `a` ids) a hole is recorded as a trades gap —
//! a lost or unparsable trade frame must not pass unnoticed.
//!
//! Reorder window: frames can arrive swapped (ids 44 then 43 after 42). A hole is therefore held for
//! at most [`REORDER_WINDOW`] or [`REORDER_TRADES`] later trades of the symbol, whichever comes first;
//! ids that arrive within it fill it, and only what is still missing then becomes a `sequence_gap`.
//! A hole wider than [`REORDER_MAX_IDS`] cannot be a reordering and is declared at once.

use super::backoff::RecentIds;
use marketprism_model::{DataType, Event, Exchange, Gap, GapCause, MarketType, Payload, Symbol};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::time::Duration;
use tokio::time::Instant;

/// Ids remembered per connection to recognise a repeated trade (covers out-of-order arrivals too).
const RECENT_TRADES: usize = 4_096;
/// How long a hole in trade ids waits for late ids before it is declared a gap.
pub(crate) const REORDER_WINDOW: Duration = Duration::from_millis(1_000);
/// How many later trades of the symbol a hole waits for late ids.
pub(crate) const REORDER_TRADES: u32 = 100;
/// Wider holes are declared at once (a swap moves a frame by a few ids, not thousands).
pub(crate) const REORDER_MAX_IDS: u64 = 1_000;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TradeVerdict {
    Keep,
    Duplicate,
}

/// Ids missing between two trades, waiting for late arrivals.
#[derive(Debug, Clone)]
struct Hole {
    missing: BTreeSet<u64>,
    /// Exchange times of the trades on either side (the gap's interval).
    start_ms: i64,
    end_ms: i64,
    opened: Instant,
    trades_since: u32,
    market_type: MarketType,
    exchange: Exchange,
    recv_ts_ms: i64,
    /// The ids on either side, for the detail.
    before: u64,
    after: u64,
}

pub(crate) struct TradeIds {
    contiguous: bool,
    recent: RecentIds,
    /// Highest numeric id and its exchange time, per symbol.
    last: HashMap<Symbol, (u64, i64)>,
    holes: HashMap<Symbol, Vec<Hole>>,
    /// The `symbol:trade id` being checked (reused: no allocation for a trade seen before).
    key: String,
}

impl TradeIds {
    pub fn new(exchange: Exchange) -> TradeIds {
        TradeIds {
            contiguous: matches!(
                exchange,
                Exchange::BinanceSpot | Exchange::BinanceDerivatives
            ),
            recent: RecentIds::new(RECENT_TRADES),
            last: HashMap::new(),
            holes: HashMap::new(),
            key: String::new(),
        }
    }

    /// True when a lost trade shows up as a jump in ids (so a skipped frame needs no gap of its own).
    pub fn detects_loss(&self) -> bool {
        self.contiguous
    }

    /// Judge one event (non-trades pass); `now` is the local clock of its arrival.
    pub fn check(&mut self, e: &Event, now: Instant) -> TradeVerdict {
        let Payload::Trade(t) = &e.payload else {
            return TradeVerdict::Keep;
        };
        self.key.clear();
        let _ = write!(self.key, "{}:{}", e.symbol, t.trade_id);
        if !self.recent.insert(&self.key) {
            return TradeVerdict::Duplicate;
        }
        let Ok(id) = t.trade_id.parse::<u64>() else {
            return TradeVerdict::Keep;
        };
        if !self.contiguous {
            return TradeVerdict::Keep;
        }
        let holes = self.holes.entry(e.symbol.clone()).or_default();
        for h in holes.iter_mut() {
            h.missing.remove(&id);
            h.trades_since += 1;
        }
        holes.retain(|h| !h.missing.is_empty());
        match self.last.get(&e.symbol).copied() {
            Some((last, _)) if id <= last => {} // late, after a reordering: filled its hole above
            Some((last, last_ts)) if id > last + 1 => {
                holes.push(Hole {
                    missing: (last + 1..id.min(last + 1 + REORDER_MAX_IDS)).collect(),
                    start_ms: last_ts,
                    end_ms: e.ts_ms.max(last_ts),
                    // A hole too wide to be a reordering is due at once.
                    opened: if id - last - 1 > REORDER_MAX_IDS {
                        now.checked_sub(REORDER_WINDOW).unwrap_or(now)
                    } else {
                        now
                    },
                    trades_since: 0,
                    market_type: e.market_type,
                    exchange: e.exchange,
                    recv_ts_ms: e.recv_ts_ms,
                    before: last,
                    after: id,
                });
                self.last.insert(e.symbol.clone(), (id, e.ts_ms));
            }
            _ => {
                self.last.insert(e.symbol.clone(), (id, e.ts_ms));
            }
        }
        TradeVerdict::Keep
    }

    /// When the oldest open hole is due (for the session's timer).
    pub fn next_due(&self) -> Option<Instant> {
        self.holes
            .values()
            .flatten()
            .map(|h| h.opened + REORDER_WINDOW)
            .min()
    }

    /// Holes whose window has passed (by time or by count): one `sequence_gap` trades event each.
    /// `flush` declares every open hole (the session is ending).
    pub fn due_gaps(&mut self, now: Instant, flush: bool) -> Vec<Event> {
        let mut out = Vec::new();
        for (symbol, holes) in &mut self.holes {
            holes.retain(|h| {
                let due =
                    flush || now >= h.opened + REORDER_WINDOW || h.trades_since >= REORDER_TRADES;
                if due {
                    out.push(hole_gap(symbol, h));
                }
                !due
            });
        }
        self.holes.retain(|_, v| !v.is_empty());
        out
    }
}

fn hole_gap(symbol: &Symbol, h: &Hole) -> Event {
    let first = h.missing.first().copied().unwrap_or_default();
    let last = h.missing.last().copied().unwrap_or_default();
    Event {
        exchange: h.exchange,
        market_type: h.market_type,
        symbol: symbol.clone(),
        ts_ms: h.start_ms,
        recv_ts_ms: h.recv_ts_ms,
        payload: Payload::Gap(Gap {
            data_type: DataType::Trades,
            start_ms: h.start_ms,
            end_ms: h.end_ms,
            cause: GapCause::SequenceGap,
            detail: format!(
                "trade ids jump {} -> {}: {} id(s) missing ({first}..={last}) after the reorder window",
                h.before,
                h.after,
                h.missing.len()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::{Side, Trade};

    fn trade(id: &str, ts: i64) -> Event {
        Event {
            exchange: Exchange::BinanceSpot,
            market_type: MarketType::Spot,
            symbol: Symbol::new("BTC-USDT").unwrap(),
            ts_ms: ts,
            recv_ts_ms: ts,
            payload: Payload::Trade(Trade {
                trade_id: id.into(),
                price: 1.into(),
                quantity: 1.into(),
                raw_quantity: 1.into(),
                quantity_unit: marketprism_model::QuantityUnit::Base,
                side: Side::Buy,
            }),
        }
    }

    #[test]
    fn duplicates_dropped_and_a_hole_that_stays_open_is_a_gap() {
        let t0 = Instant::now();
        let mut t = TradeIds::new(Exchange::BinanceSpot);
        assert_eq!(t.check(&trade("10", 1), t0), TradeVerdict::Keep);
        assert_eq!(t.check(&trade("11", 2), t0), TradeVerdict::Keep);
        assert_eq!(t.check(&trade("11", 2), t0), TradeVerdict::Duplicate);
        assert_eq!(t.check(&trade("14", 5), t0), TradeVerdict::Keep);
        assert!(t.due_gaps(t0, false).is_empty(), "inside the window");
        assert_eq!(t.next_due(), Some(t0 + REORDER_WINDOW));
        assert_eq!(t.check(&trade("12", 3), t0), TradeVerdict::Keep, "late");
        assert_eq!(t.check(&trade("12", 3), t0), TradeVerdict::Duplicate);
        let gaps = t.due_gaps(t0 + REORDER_WINDOW, false);
        let [
            Event {
                payload: Payload::Gap(g),
                ..
            },
        ] = &gaps[..]
        else {
            panic!("{gaps:?}")
        };
        assert_eq!(
            (g.data_type, g.cause, g.start_ms, g.end_ms),
            (DataType::Trades, GapCause::SequenceGap, 2, 5)
        );
        assert!(
            g.detail.contains("1 id(s) missing (13..=13)"),
            "{}",
            g.detail
        );
        assert_eq!(t.next_due(), None);
        assert_eq!(t.check(&trade("15", 6), t0), TradeVerdict::Keep);
        assert!(t.due_gaps(t0 + REORDER_WINDOW * 2, false).is_empty());
    }

    #[test]
    fn swapped_trades_fill_their_hole_and_leave_no_gap() {
        let t0 = Instant::now();
        let mut t = TradeIds::new(Exchange::BinanceDerivatives);
        for (id, ts) in [("42", 1), ("44", 3), ("43", 2), ("45", 4)] {
            assert_eq!(t.check(&trade(id, ts), t0), TradeVerdict::Keep);
        }
        assert_eq!(t.next_due(), None, "hole filled");
        assert!(t.due_gaps(t0 + REORDER_WINDOW * 10, true).is_empty());
    }

    #[test]
    fn the_window_is_bounded_by_count_and_width_too() {
        let t0 = Instant::now();
        let mut t = TradeIds::new(Exchange::BinanceSpot);
        t.check(&trade("1", 1), t0);
        t.check(&trade("3", 3), t0);
        for id in 4..(4 + u64::from(REORDER_TRADES)) {
            t.check(&trade(&id.to_string(), 4), t0);
        }
        assert_eq!(t.due_gaps(t0, false).len(), 1, "due by count");
        let mut t = TradeIds::new(Exchange::BinanceSpot);
        t.check(&trade("1", 1), t0);
        t.check(&trade("5000", 2), t0);
        assert_eq!(t.due_gaps(t0, false).len(), 1, "too wide to wait for");
        let mut t = TradeIds::new(Exchange::BinanceSpot);
        t.check(&trade("1", 1), t0);
        t.check(&trade("3", 2), t0);
        assert_eq!(t.due_gaps(t0, true).len(), 1, "flushed at session end");
    }

    #[test]
    fn aggregated_ids_are_only_deduplicated() {
        let t0 = Instant::now();
        let mut t = TradeIds::new(Exchange::OkxSpot);
        assert_eq!(t.check(&trade("100", 1), t0), TradeVerdict::Keep);
        assert_eq!(t.check(&trade("103", 2), t0), TradeVerdict::Keep);
        assert_eq!(t.check(&trade("103", 2), t0), TradeVerdict::Duplicate);
        assert!(t.due_gaps(t0, true).is_empty());
    }
}
