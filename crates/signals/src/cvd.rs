//! Cumulative volume delta (CVD) per trade (`seed-systems.md` §B).
//!
//! `delta = +qty` for a buyer-initiated trade (the aggressor bought), `−qty` for a
//! seller-initiated one; `cvd = Σ delta` since the last reset. Units: base-asset quantity.
//!
//! The aggressor side comes from the venue (Binance `m` = buyer is maker ⇒ seller-initiated:
//! [`Side::from_buyer_is_maker`]). Only when it is unknown (`None`) does the **tick rule**
//! (Lee & Ready 1991) classify the trade: price above the previous trade's → buy, below → sell,
//! unchanged → the direction of the last price change (zero-tick rule). *Choices:* "previous
//! trade" is every trade since the reset, known side or not; the direction is that of the last
//! price *change*, not the last aggressor; an unknown-side trade with no price change since the
//! reset cannot be classified and gets `delta = 0` (it still updates the previous price).

/// Aggressor side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buyer-initiated (the taker bought).
    Buy,
    /// Seller-initiated (the taker sold).
    Sell,
}

impl Side {
    /// Binance `m` flag: the buyer is the maker ⇒ the seller was the aggressor.
    pub fn from_buyer_is_maker(buyer_is_maker: bool) -> Self {
        if buyer_is_maker {
            Side::Sell
        } else {
            Side::Buy
        }
    }

    /// `+1` for [`Side::Buy`], `−1` for [`Side::Sell`].
    pub fn sign(self) -> f64 {
        match self {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }

    /// `buy` / `sell`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// One CVD step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CvdStep {
    /// Signed quantity of this trade.
    pub delta: f64,
    /// CVD after it.
    pub cvd: f64,
    /// Side used (`None`: unclassifiable, delta 0).
    pub side: Option<Side>,
    /// The side came from the tick rule.
    pub inferred: bool,
}

/// Running CVD of one symbol.
#[derive(Debug, Clone, Default)]
pub struct Cvd {
    cvd: f64,
    last_price: Option<f64>,
    last_tick: Option<Side>,
}

impl Cvd {
    /// Zero, no price history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Back to zero, tick history forgotten.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Current CVD.
    pub fn value(&self) -> f64 {
        self.cvd
    }

    /// Applies one trade. `None` (and no change) for a non-finite price / quantity or a negative
    /// quantity.
    pub fn update(&mut self, price: f64, qty: f64, side: Option<Side>) -> Option<CvdStep> {
        if !price.is_finite() || !qty.is_finite() || qty < 0.0 {
            return None;
        }
        if let Some(prev) = self.last_price {
            if price > prev {
                self.last_tick = Some(Side::Buy);
            } else if price < prev {
                self.last_tick = Some(Side::Sell);
            }
        }
        self.last_price = Some(price);
        let (used, inferred) = match side {
            Some(s) => (Some(s), false),
            None => (self.last_tick, self.last_tick.is_some()),
        };
        let delta = used.map_or(0.0, |s| s.sign() * qty);
        self.cvd += delta;
        Some(CvdStep {
            delta,
            cvd: self.cvd,
            side: used,
            inferred,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_sides() {
        let mut c = Cvd::new();
        // +2 (buy) − 0.5 (sell, Binance m=true) + 1.25 (buy, m=false) = 2.75
        assert_eq!(c.update(100.0, 2.0, Some(Side::Buy)).unwrap().cvd, 2.0);
        let s = c
            .update(99.0, 0.5, Some(Side::from_buyer_is_maker(true)))
            .unwrap();
        assert_eq!((s.delta, s.cvd, s.inferred), (-0.5, 1.5, false));
        assert_eq!(
            c.update(98.0, 1.25, Some(Side::from_buyer_is_maker(false)))
                .unwrap()
                .cvd,
            2.75
        );
    }

    #[test]
    fn tick_rule_only_when_side_unknown() {
        let mut c = Cvd::new();
        // first trade, no history: unclassifiable, delta 0
        let s = c.update(100.0, 1.0, None).unwrap();
        assert_eq!((s.delta, s.side), (0.0, None));
        // up-tick → buy +2 (cvd 2)
        assert_eq!(c.update(101.0, 2.0, None).unwrap().delta, 2.0);
        // zero-tick keeps the last direction (buy) → +1 (cvd 3)
        let s = c.update(101.0, 1.0, None).unwrap();
        assert_eq!((s.delta, s.side, s.inferred), (1.0, Some(Side::Buy), true));
        // a known sell at an up-tick price stays a sell (venue side wins) → −4 (cvd −1)
        assert_eq!(c.update(102.0, 4.0, Some(Side::Sell)).unwrap().cvd, -1.0);
        // down-tick → sell −0.5 (cvd −1.5)
        assert_eq!(c.update(101.5, 0.5, None).unwrap().cvd, -1.5);
        // zero-tick after the down-tick → sell −1 (cvd −2.5)
        assert_eq!(c.update(101.5, 1.0, None).unwrap().cvd, -2.5);
    }

    #[test]
    fn bad_trades_and_reset() {
        let mut c = Cvd::new();
        c.update(100.0, 1.0, Some(Side::Buy));
        assert!(c.update(f64::NAN, 1.0, None).is_none());
        assert!(c.update(100.0, -1.0, Some(Side::Buy)).is_none());
        assert_eq!(c.value(), 1.0);
        c.reset();
        assert_eq!(c.value(), 0.0);
        assert_eq!(
            c.update(101.0, 1.0, None).unwrap().side,
            None,
            "tick history forgotten"
        );
    }
}
