//! Market regime, active vs quiet, from the trade rate (`seed-systems.md` §B, "Regime").
//!
//! `rate = trades with ts in (now − window, now] / window_s` (trades per second; window 60 s),
//! `now` the latest `ts_ms` seen (event time). Active when `rate ≥ active_tps` (default 1.0 tps,
//! see [`crate::SignalsConfig::active_tps`]), quiet otherwise. *Choice:* the divisor is always the
//! full window, so the first minute after a reset under-counts and starts quiet.

use std::collections::VecDeque;

/// Active or quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Regime {
    /// Trade rate below the threshold.
    Quiet,
    /// Trade rate at or above the threshold.
    Active,
}

impl Regime {
    /// `quiet` / `active`.
    pub fn as_str(self) -> &'static str {
        match self {
            Regime::Quiet => "quiet",
            Regime::Active => "active",
        }
    }
}

/// Sliding-window trade counter of one symbol.
#[derive(Debug, Clone)]
pub(crate) struct RegimeTracker {
    window_ms: i64,
    active_tps: f64,
    trades: VecDeque<i64>,
    now: Option<i64>,
}

impl RegimeTracker {
    /// Window in ms (> 0) and threshold in trades per second.
    pub fn new(window_ms: i64, active_tps: f64) -> Self {
        Self {
            window_ms,
            active_tps,
            trades: VecDeque::new(),
            now: None,
        }
    }

    /// Forgets every trade.
    pub fn reset(&mut self) {
        self.trades.clear();
        self.now = None;
    }

    /// Counts a trade at `ts_ms`.
    pub fn on_trade(&mut self, ts_ms: i64) {
        self.advance(ts_ms);
        self.trades.push_back(ts_ms);
    }

    /// Moves the clock to `ts_ms` (never backwards) and drops trades that left the window.
    pub fn advance(&mut self, ts_ms: i64) {
        let now = self.now.map_or(ts_ms, |n| n.max(ts_ms));
        self.now = Some(now);
        let cutoff = now.saturating_sub(self.window_ms);
        while self.trades.front().is_some_and(|t| *t <= cutoff) {
            self.trades.pop_front();
        }
    }

    /// Trades per second over the window.
    pub fn rate_tps(&self) -> f64 {
        self.trades.len() as f64 * 1000.0 / self.window_ms as f64
    }

    /// The regime at the current clock.
    pub fn regime(&self) -> Regime {
        if self.rate_tps() >= self.active_tps {
            Regime::Active
        } else {
            Regime::Quiet
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_on_the_trade_rate() {
        // window 10 s, threshold 1 tps: 10 trades in the window are needed.
        let mut r = RegimeTracker::new(10_000, 1.0);
        for i in 0..9 {
            r.on_trade(i * 100);
        }
        assert_eq!((r.rate_tps(), r.regime()), (0.9, Regime::Quiet));
        r.on_trade(900);
        assert_eq!((r.rate_tps(), r.regime()), (1.0, Regime::Active));
        // at t = 10 000 the trade at 0 leaves (0 ≤ 10 000 − 10 000): 9 left → quiet
        r.advance(10_000);
        assert_eq!(r.regime(), Regime::Quiet);
        // late (out-of-order) time does not move the clock back
        r.advance(5_000);
        assert_eq!(r.rate_tps(), 0.9);
        r.reset();
        assert_eq!(r.rate_tps(), 0.0);
    }
}
