//! A seeded synthetic market (random-walk mid, 5-level books, trades with known and unknown
//! sides, occasional gaps) for determinism tests, benchmarks and demos. Its own SplitMix64
//! generator: the same seed gives the same sequence on every platform.

use crate::cvd::Side;
use crate::engine::{Output, SignalEngine};
use crate::events::ResetReason;
use crate::ofi::Level;

/// One engine input.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A book change: top levels after it.
    Book {
        ts_ms: i64,
        bids: Vec<Level>,
        asks: Vec<Level>,
    },
    /// A trade.
    Trade {
        ts_ms: i64,
        price: f64,
        qty: f64,
        side: Option<Side>,
    },
    /// A hole reported by the caller.
    Gap { ts_ms: i64, reason: ResetReason },
}

impl SignalEngine {
    /// Feeds one [`Input`].
    pub fn apply(&mut self, input: &Input) -> Output {
        match input {
            Input::Book { ts_ms, bids, asks } => self.on_book(*ts_ms, bids, asks),
            Input::Trade {
                ts_ms,
                price,
                qty,
                side,
            } => self.on_trade(*ts_ms, *price, *qty, *side),
            Input::Gap { ts_ms, reason } => self.on_gap(*ts_ms, *reason),
        }
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// Generator of a synthetic market: a mid price in ticks of 0.1 around 30 000, 5 levels a side.
#[derive(Debug, Clone)]
pub struct SyntheticMarket {
    rng: SplitMix64,
    ts_ms: i64,
    mid_ticks: i64,
    gap_every: Option<u64>,
}

impl SyntheticMarket {
    /// Seeded; `gap_every`: on average one gap per that many inputs (`None`: never).
    pub fn new(seed: u64, gap_every: Option<u64>) -> Self {
        Self {
            rng: SplitMix64::new(seed),
            ts_ms: 1_700_000_000_000,
            mid_ticks: 300_000,
            gap_every,
        }
    }

    /// The next input (time advances 0–40 ms per input; about one trade per three inputs).
    pub fn next_input(&mut self) -> Input {
        let r = &mut self.rng;
        self.ts_ms += r.below(41) as i64;
        if self.gap_every.is_some_and(|n| r.below(n) == 0) {
            let reason = [
                ResetReason::StreamGap,
                ResetReason::BookResync,
                ResetReason::Reconnect,
            ][r.below(3) as usize];
            return Input::Gap {
                ts_ms: self.ts_ms,
                reason,
            };
        }
        match r.below(6) {
            0 => self.mid_ticks += 1,
            1 => self.mid_ticks -= 1,
            _ => {}
        }
        let tick = 0.1;
        if r.below(3) == 0 {
            let up = r.below(2) == 0;
            let price = (self.mid_ticks + if up { 1 } else { -1 }) as f64 * tick;
            let qty = (1 + r.below(2000)) as f64 / 1000.0;
            let side = match r.below(10) {
                0 => None,
                _ if up => Some(Side::Buy),
                _ => Some(Side::Sell),
            };
            return Input::Trade {
                ts_ms: self.ts_ms,
                price,
                qty,
                side,
            };
        }
        let level = |k: i64, sign: i64, r: &mut SplitMix64| {
            Level::new(
                (self.mid_ticks + sign * (k + 1)) as f64 * tick,
                (1 + r.below(5000)) as f64 / 1000.0,
            )
        };
        let bids = (0..5).map(|k| level(k, -1, r)).collect();
        let asks = (0..5).map(|k| level(k, 1, r)).collect();
        Input::Book {
            ts_ms: self.ts_ms,
            bids,
            asks,
        }
    }

    /// `n` inputs.
    pub fn take(&mut self, n: usize) -> Vec<Input> {
        (0..n).map(|_| self.next_input()).collect()
    }
}
