//! Multi-level order-flow imbalance (OFI) per book change.
//!
//! **Level 1** — Cont, Kukanov & Stoikov (2014), "The Price Impact of Order Book Events",
//! J. Financial Econometrics 12(1), eq. (2), exactly as `seed-systems.md` §B writes it:
//!
//! ```text
//! e_n = I{Pb_n ≥ Pb_n-1}·qb_n − I{Pb_n ≤ Pb_n-1}·qb_n-1 − I{Pa_n ≤ Pa_n-1}·qa_n + I{Pa_n ≥ Pa_n-1}·qa_n-1
//! ```
//!
//! (a price move counts the new queue as arriving and the old one as leaving; unchanged prices
//! reduce to `Δqb − Δqa`).
//!
//! **Levels k ≥ 2** — `e_k = Δqb_k − Δqa_k`, the change of the quantity at the k-th best bid
//! minus that at the k-th best ask (by level *index*, not by price), as the reference defines.
//!
//! **OFI** `= Σ_k w_k · e_k` with the weights normalized to sum 1 (multi-level OFI: Xu, Gould &
//! Howison 2018, "Multi-Level Order-Flow Imbalance in a Limit Order Book"). Default weights
//! [0.40, 0.25, 0.20, 0.10, 0.05]. Units: base-asset quantity (same as the book's quantities).
//!
//! A level the book does not have (a thin side) is an empty queue: bid `(price −∞, qty 0)`,
//! ask `(price +∞, qty 0)`, so a level-1 queue that appears counts as arriving and one that
//! vanishes as leaving. The first book after a reset only becomes the previous state (no OFI).

/// One price level: price (quote currency) and quantity (base asset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    /// Price.
    pub price: f64,
    /// Quantity resting at that price.
    pub qty: f64,
}

impl Level {
    /// A level.
    pub const fn new(price: f64, qty: f64) -> Self {
        Self { price, qty }
    }
}

impl From<(f64, f64)> for Level {
    fn from((price, qty): (f64, f64)) -> Self {
        Self { price, qty }
    }
}

const MISSING_BID: Level = Level::new(f64::NEG_INFINITY, 0.0);
const MISSING_ASK: Level = Level::new(f64::INFINITY, 0.0);

/// The weights divided by their sum (the caller validated: non-negative, not all zero).
pub(crate) fn normalized_weights(weights: &[f64]) -> Vec<f64> {
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| w / sum).collect()
}

/// The level-1 Cont–Kukanov–Stoikov term `e_n` from the previous and the current best bid / ask.
pub(crate) fn level1_term(prev_bid: Level, bid: Level, prev_ask: Level, ask: Level) -> f64 {
    let ind = |c: bool| if c { 1.0 } else { 0.0 };
    ind(bid.price >= prev_bid.price) * bid.qty
        - ind(bid.price <= prev_bid.price) * prev_bid.qty
        - ind(ask.price <= prev_ask.price) * ask.qty
        + ind(ask.price >= prev_ask.price) * prev_ask.qty
}

/// OFI of successive book states of one symbol; keeps the previous top levels.
#[derive(Debug, Clone)]
pub struct OfiCalculator {
    weights: Vec<f64>,
    prev_bids: Vec<Level>,
    prev_asks: Vec<Level>,
    has_prev: bool,
}

impl OfiCalculator {
    /// Uses `weights.len()` levels; the weights are normalized here.
    pub fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        Self {
            weights: normalized_weights(weights),
            prev_bids: vec![MISSING_BID; n],
            prev_asks: vec![MISSING_ASK; n],
            has_prev: false,
        }
    }

    /// Number of levels used.
    pub fn levels(&self) -> usize {
        self.weights.len()
    }

    /// The normalized weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Forgets the previous book: the next one only becomes the reference.
    pub fn reset(&mut self) {
        self.has_prev = false;
    }

    /// OFI from the previous book to this one (`bids` best first = highest price, `asks` best
    /// first = lowest price; levels beyond [`OfiCalculator::levels`] are ignored).
    /// `None` for the first book after a reset, or when a used level is not finite / has a
    /// negative quantity (that book is skipped, the previous one stays the reference).
    pub fn update(&mut self, bids: &[Level], asks: &[Level]) -> Option<f64> {
        let n = self.levels();
        let bad = |l: &Level| !l.price.is_finite() || !l.qty.is_finite() || l.qty < 0.0;
        if bids.iter().take(n).any(bad) || asks.iter().take(n).any(bad) {
            return None;
        }
        let bid = |k: usize| bids.get(k).copied().unwrap_or(MISSING_BID);
        let ask = |k: usize| asks.get(k).copied().unwrap_or(MISSING_ASK);
        let ofi = if self.has_prev {
            let mut sum = 0.0;
            for k in 0..n {
                let (b, a) = (bid(k), ask(k));
                let (pb, pa) = (self.prev_bids[k], self.prev_asks[k]);
                let e = if k == 0 {
                    level1_term(pb, b, pa, a)
                } else {
                    (b.qty - pb.qty) - (a.qty - pa.qty)
                };
                sum += self.weights[k] * e;
            }
            Some(sum)
        } else {
            None
        };
        for k in 0..n {
            self.prev_bids[k] = bid(k);
            self.prev_asks[k] = ask(k);
        }
        self.has_prev = true;
        ofi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn l(price: f64, qty: f64) -> Level {
        Level::new(price, qty)
    }

    /// Level-1 OFI from book (bid 100 @ 5, ask 102 @ 4) to the given best bid / ask.
    fn one_level(bid: Level, ask: Level) -> f64 {
        let mut o = OfiCalculator::new(&[1.0]);
        assert_eq!(o.update(&[l(100.0, 5.0)], &[l(102.0, 4.0)]), None);
        o.update(&[bid], &[ask]).unwrap()
    }

    #[test]
    fn level1_bid_price_up_counts_the_new_queue() {
        // Pb 100→101: +qb_n = +3; ask unchanged 102, 4→6: −6 + 4. e = 3 − 6 + 4 = 1
        assert_eq!(one_level(l(101.0, 3.0), l(102.0, 6.0)), 1.0);
    }

    #[test]
    fn level1_bid_price_down_removes_the_old_queue() {
        // Pb 100→99: −qb_n-1 = −5; ask unchanged: −4 + 4. e = −5
        assert_eq!(one_level(l(99.0, 7.0), l(102.0, 4.0)), -5.0);
    }

    #[test]
    fn level1_ask_price_down_counts_the_new_queue_as_selling() {
        // Pa 102→101: −qa_n = −2; bid unchanged 100, 5→8: +8 − 5. e = 8 − 5 − 2 = 1
        assert_eq!(one_level(l(100.0, 8.0), l(101.0, 2.0)), 1.0);
    }

    #[test]
    fn level1_ask_price_up_removes_the_old_queue() {
        // Pa 102→103: +qa_n-1 = +4; bid unchanged 5→5: +5 − 5. e = 4
        assert_eq!(one_level(l(100.0, 5.0), l(103.0, 9.0)), 4.0);
    }

    #[test]
    fn level1_unchanged_prices_is_the_queue_change_difference() {
        // Δqb − Δqa = (8 − 5) − (6 − 4) = 1
        assert_eq!(one_level(l(100.0, 8.0), l(102.0, 6.0)), 1.0);
    }

    #[test]
    fn deeper_level_uses_quantity_changes_by_index() {
        let mut o = OfiCalculator::new(&[1.0, 1.0]); // normalized to 0.5 / 0.5
        o.update(
            &[l(100.0, 5.0), l(99.0, 10.0)],
            &[l(102.0, 4.0), l(103.0, 7.0)],
        );
        // level 1 unchanged: e1 = 0; level 2: Δqb = 13 − 10 = 3, Δqa = 5 − 7 = −2 → e2 = 5.
        // OFI = 0.5·0 + 0.5·5 = 2.5
        let ofi = o.update(
            &[l(100.0, 5.0), l(99.0, 13.0)],
            &[l(102.0, 4.0), l(103.0, 5.0)],
        );
        assert_eq!(ofi, Some(2.5));
    }

    #[test]
    fn five_levels_with_the_default_weights() {
        let mut o = OfiCalculator::new(&crate::config::DEFAULT_OFI_WEIGHTS);
        let bids = |q: [f64; 5]| {
            (0..5)
                .map(|k| l(100.0 - k as f64, q[k]))
                .collect::<Vec<_>>()
        };
        let asks = |q: [f64; 5]| {
            (0..5)
                .map(|k| l(101.0 + k as f64, q[k]))
                .collect::<Vec<_>>()
        };
        o.update(&bids([1.0, 2.0, 3.0, 4.0, 5.0]), &asks([1.0; 5]));
        // e1 = Δqb1 − Δqa1 = 1 − 0 (prices unchanged); e2 = 0 − 1 (ask level 2 +1);
        // e5 = 2 − 0 (bid level 5 +2): OFI = 0.40·1 − 0.25·1 + 0.05·2 = 0.25
        let ofi = o.update(
            &bids([2.0, 2.0, 3.0, 4.0, 7.0]),
            &asks([1.0, 2.0, 1.0, 1.0, 1.0]),
        );
        assert!((ofi.unwrap() - 0.25).abs() < 1e-12, "{ofi:?}");
    }

    #[test]
    fn weights_are_normalized() {
        assert_eq!(normalized_weights(&[2.0, 1.0, 1.0]), vec![0.5, 0.25, 0.25]);
        let w = normalized_weights(&crate::config::DEFAULT_OFI_WEIGHTS);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!((w[0] - 0.40).abs() < 1e-15 && (w[4] - 0.05).abs() < 1e-15);
        assert_eq!(OfiCalculator::new(&[0.0, 3.0]).weights(), &[0.0, 1.0]);
    }

    #[test]
    fn thin_book_and_bad_levels() {
        let mut o = OfiCalculator::new(&[1.0]);
        o.update(&[], &[l(102.0, 4.0)]);
        // A bid appears (from price −∞): +qb_n = +3; ask unchanged → 3
        assert_eq!(o.update(&[l(100.0, 3.0)], &[l(102.0, 4.0)]), Some(3.0));
        // The ask vanishes (to +∞): +qa_n-1 = +4
        assert_eq!(o.update(&[l(100.0, 3.0)], &[]), Some(4.0));
        assert_eq!(o.update(&[l(f64::NAN, 3.0)], &[]), None);
        assert_eq!(
            o.update(&[l(100.0, 3.0)], &[]),
            Some(0.0),
            "the bad book was skipped"
        );
        o.reset();
        assert_eq!(o.update(&[l(100.0, 3.0)], &[]), None);
    }

    /// Mirror a book: bids become asks and asks bids, prices negated, so every up-move becomes a
    /// down-move. OFI must change sign exactly.
    fn mirror(bids: &[Level], asks: &[Level]) -> (Vec<Level>, Vec<Level>) {
        let m = |v: &[Level]| v.iter().map(|x| l(-x.price, x.qty)).collect::<Vec<_>>();
        (m(asks), m(bids))
    }

    fn book() -> impl Strategy<Value = (Vec<Level>, Vec<Level>)> {
        let side = prop::collection::vec((1u32..20, 0u32..50), 0..6);
        (side.clone(), side).prop_map(|(b, a)| {
            let mut bp = 1000.0;
            let mut ap = 1001.0;
            let bids = b
                .iter()
                .map(|(step, q)| {
                    bp -= f64::from(*step);
                    l(bp, f64::from(*q))
                })
                .collect();
            let asks = a
                .iter()
                .map(|(step, q)| {
                    ap += f64::from(*step);
                    l(ap, f64::from(*q))
                })
                .collect();
            (bids, asks)
        })
    }

    proptest! {
        #[test]
        fn ofi_is_antisymmetric_under_mirroring(books in prop::collection::vec(book(), 2..8)) {
            let mut o = OfiCalculator::new(&crate::config::DEFAULT_OFI_WEIGHTS);
            let mut m = OfiCalculator::new(&crate::config::DEFAULT_OFI_WEIGHTS);
            for (bids, asks) in &books {
                let (mb, ma) = mirror(bids, asks);
                let x = o.update(bids, asks);
                let y = m.update(&mb, &ma);
                prop_assert_eq!(x.map(|v| -v), y);
            }
        }
    }
}
