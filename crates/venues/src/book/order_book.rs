//! A local L2 book: two sorted vectors with the best level at the end.
//!
//! Why a sorted `Vec` rather than a `BTreeMap`: nearly all activity is near the top, and with the best
//! level last an insert or delete there moves few elements; a 400-level snapshot load is one sort.
//! `benches/parsers.rs` (`book/*`) measures both the diff apply and the snapshot load.

use marketprism_model::{Decimal, Level, OrderBookSnapshot};
use std::cmp::Ordering;

/// One side of the book. `bids` ascend (best = highest, last); `asks` descend (best = lowest, last).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BookSide {
    levels: Vec<(Decimal, Decimal)>,
    is_bid: bool,
}

impl BookSide {
    fn new(is_bid: bool) -> BookSide {
        BookSide {
            levels: Vec::new(),
            is_bid,
        }
    }

    /// Order such that the best price sorts last.
    fn cmp(&self, a: &Decimal, b: &Decimal) -> Ordering {
        if self.is_bid { a.cmp(b) } else { b.cmp(a) }
    }

    /// Set a level to an absolute size; size 0 removes it (removing an unknown level is normal).
    pub fn set(&mut self, price: Decimal, size: Decimal) {
        let is_bid = self.is_bid;
        let found = self.levels.binary_search_by(
            |(p, _)| {
                if is_bid { p.cmp(&price) } else { price.cmp(p) }
            },
        );
        match (found, size.is_zero()) {
            (Ok(i), true) => {
                self.levels.remove(i);
            }
            (Ok(i), false) => self.levels[i] = (price, size),
            (Err(_), true) => {}
            (Err(i), false) => self.levels.insert(i, (price, size)),
        }
    }

    /// Replace the whole side (snapshot load): keep positive sizes, sort, drop duplicates (last wins).
    fn load(&mut self, levels: &[(Decimal, Decimal)]) {
        self.levels.clear();
        self.levels
            .extend(levels.iter().copied().filter(|(_, q)| !q.is_zero()));
        let is_bid = self.is_bid;
        // Venues send best first: reversing makes it (nearly) sorted for the stable sort.
        self.levels.reverse();
        self.levels
            .sort_by(|a, b| if is_bid { a.0.cmp(&b.0) } else { b.0.cmp(&a.0) });
        // After the reverse, the venue's last copy of a price sorts first; dedup keeps the first.
        self.levels.dedup_by(|next, kept| next.0 == kept.0);
    }

    /// Keep the best `keep` levels once the side holds more than `over` (amortizes the memmove).
    fn trim(&mut self, keep: usize, over: usize) {
        if self.levels.len() > over {
            let excess = self.levels.len() - keep;
            self.levels.drain(..excess);
        }
    }

    pub fn best(&self) -> Option<(Decimal, Decimal)> {
        self.levels.last().copied()
    }

    pub fn len(&self) -> usize {
        self.levels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Levels best first.
    pub fn iter_best_first(&self) -> impl Iterator<Item = &(Decimal, Decimal)> {
        self.levels.iter().rev()
    }

    /// True when the side is strictly sorted with the best level last (a test invariant).
    pub fn is_sorted(&self) -> bool {
        self.levels
            .windows(2)
            .all(|w| self.cmp(&w[0].0, &w[1].0) == Ordering::Less)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBook {
    pub bids: BookSide,
    pub asks: BookSide,
    /// Levels per side kept (worse levels are trimmed).
    pub depth: usize,
    /// The venue id of the last update applied (or of the snapshot).
    pub last_id: i64,
    /// Exchange time of the last update applied.
    pub ts_ms: i64,
}

impl OrderBook {
    pub fn new(depth: usize) -> OrderBook {
        OrderBook {
            bids: BookSide::new(true),
            asks: BookSide::new(false),
            depth: depth.max(1),
            last_id: 0,
            ts_ms: 0,
        }
    }

    pub fn clear(&mut self) {
        self.bids.levels.clear();
        self.asks.levels.clear();
        self.last_id = 0;
        self.ts_ms = 0;
    }

    pub fn load(
        &mut self,
        bids: &[(Decimal, Decimal)],
        asks: &[(Decimal, Decimal)],
        last_id: i64,
        ts_ms: i64,
    ) {
        self.bids.load(bids);
        self.asks.load(asks);
        self.bids.trim(self.depth, self.depth);
        self.asks.trim(self.depth, self.depth);
        self.last_id = last_id;
        self.ts_ms = ts_ms;
    }

    pub fn apply(
        &mut self,
        bids: &[(Decimal, Decimal)],
        asks: &[(Decimal, Decimal)],
        last_id: i64,
        ts_ms: i64,
    ) {
        for &(p, q) in bids {
            self.bids.set(p, q);
        }
        for &(p, q) in asks {
            self.asks.set(p, q);
        }
        let over = self.depth.saturating_mul(2);
        self.bids.trim(self.depth, over);
        self.asks.trim(self.depth, over);
        self.last_id = last_id;
        self.ts_ms = ts_ms;
    }

    /// Best bid at or above best ask: the book is wrong and must be rebuilt.
    pub fn is_crossed(&self) -> bool {
        match (self.bids.best(), self.asks.best()) {
            (Some((b, _)), Some((a, _))) => b >= a,
            _ => false,
        }
    }

    /// The top `n` levels per side, best first, for publishing.
    pub fn top(&self, n: usize) -> OrderBookSnapshot {
        let take = |s: &BookSide| {
            s.iter_best_first()
                .take(n)
                .map(|&(p, q)| Level(p, q))
                .collect()
        };
        OrderBookSnapshot {
            last_update_id: self.last_id,
            bids: take(&self.bids),
            asks: take(&self.asks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn set_inserts_updates_and_deletes_keeping_best_last() {
        let mut b = OrderBook::new(400);
        b.apply(
            &[(d("10"), d("1")), (d("12"), d("2")), (d("11"), d("3"))],
            &[(d("14"), d("1")), (d("13"), d("2"))],
            1,
            1,
        );
        assert_eq!(b.bids.best(), Some((d("12"), d("2"))));
        assert_eq!(b.asks.best(), Some((d("13"), d("2"))));
        b.apply(
            &[(d("12"), d("0")), (d("11"), d("5")), (d("9"), d("0"))],
            &[],
            2,
            2,
        );
        assert_eq!(b.bids.best(), Some((d("11"), d("5"))));
        assert_eq!(b.bids.len(), 2, "deleting an unknown level is a no-op");
        assert!(b.bids.is_sorted() && b.asks.is_sorted());
        let top = b.top(1);
        assert_eq!(top.bids, vec![Level(d("11"), d("5"))]);
        assert_eq!(top.last_update_id, 2);
        assert!(!b.is_crossed());
        b.apply(&[(d("13"), d("1"))], &[], 3, 3);
        assert!(b.is_crossed());
    }

    #[test]
    fn load_sorts_drops_zero_and_dedups_last_wins() {
        let mut b = OrderBook::new(400);
        b.load(
            &[
                (d("10"), d("1")),
                (d("9"), d("0")),
                (d("10"), d("4")),
                (d("8"), d("1")),
            ],
            &[(d("11"), d("1")), (d("12"), d("1"))],
            7,
            0,
        );
        assert_eq!(b.bids.len(), 2);
        assert!(b.bids.is_sorted() && b.asks.is_sorted());
        assert_eq!(b.bids.best(), Some((d("10"), d("4"))));
        assert_eq!(b.asks.best(), Some((d("11"), d("1"))));
    }

    #[test]
    fn sides_are_trimmed_to_depth_keeping_the_best() {
        let mut b = OrderBook::new(3);
        let bids: Vec<_> = (1..=10).map(|i| (Decimal::from(i), d("1"))).collect();
        b.apply(&bids, &[], 1, 1);
        assert!(b.bids.len() <= 6);
        assert_eq!(b.bids.best().unwrap().0, Decimal::from(10));
        assert_eq!(b.top(3).bids.len(), 3);
    }
}
