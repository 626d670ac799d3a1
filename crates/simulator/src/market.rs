//! One simulated instrument: a random-walk mid, a true book, contiguous trade ids and slow data
//! (mark/funding, open interest, liquidations, DVOL). Every value is a pure function of (seed, venue, symbol, step).

use super::book::{Book, LevelChange, Scale};
use super::rng::SimRng;
use std::sync::Arc;
use tokio::sync::broadcast;

/// What a market publishes; each connection encodes it in its venue's wire format.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MarketEvent {
    Book(BookDiff),
    Trades(TradeBatch),
    Mark(MarkUpdate),
    OpenInterest {
        oi_lots: i64,
    },
    Liquidation(Liquidation),
    Dvol {
        volatility_bp: i64,
    },
    /// OKX keep-alive: no change, `seqId == prevSeqId`.
    BookKeepAlive {
        id: u64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stamped {
    pub symbol: Arc<str>,
    pub ts_ms: i64,
    pub event: MarketEvent,
}

/// A book change covering update ids `first_id..=last_id`; `prev_id` is the previous diff's `last_id`
/// (smaller than `first_id - 1` never; larger after an OKX sequence reset).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BookDiff {
    pub prev_id: u64,
    pub first_id: u64,
    pub last_id: u64,
    pub bids: Vec<LevelChange>,
    pub asks: Vec<LevelChange>,
    /// OKX crc32 of the book after this diff.
    pub okx_checksum: i32,
    pub best_bid: (i64, i64),
    pub best_ask: (i64, i64),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fill {
    pub id: u64,
    pub qty: i64,
}

/// Fills of one taker order at one price: trade ids contiguous, one aggregate id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TradeBatch {
    pub agg_id: u64,
    pub price: i64,
    pub taker_buy: bool,
    pub fills: Vec<Fill>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MarkUpdate {
    pub mark: i64,
    pub index: i64,
    /// Funding rate in 1e-8.
    pub funding_rate_e8: i64,
    pub funding_time_ms: i64,
    pub next_funding_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Liquidation {
    /// Side of the liquidation order: SELL closes a long.
    pub sell: bool,
    pub price: i64,
    pub qty: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarketKind {
    Instrument,
    /// A volatility index (Deribit DVOL): only `Dvol` events.
    VolIndex,
}

/// A consistent copy of the book at `last_id`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BookSnapshot {
    pub last_id: u64,
    pub bids: Vec<(i64, i64)>,
    pub asks: Vec<(i64, i64)>,
    pub okx_checksum: i32,
    pub ts_ms: i64,
}

pub(crate) struct Market {
    pub symbol: Arc<str>,
    pub kind: MarketKind,
    pub scale: Scale,
    rng: SimRng,
    /// Slow data draws from its own stream, so its wall-clock cadence cannot shift the book/trade sequence.
    slow_rng: SimRng,
    book: Book,
    levels: i64,
    mid: i64,
    last_id: u64,
    /// Book diffs made so far (each is pushed once to every subscribed connection).
    diffs: u64,
    next_trade_id: u64,
    next_agg_id: u64,
    funding_rate_e8: i64,
    oi_lots: i64,
    dvol_bp: i64,
    /// OKX sequence reset requested: the next diff restarts the ids.
    pub reset_pending: bool,
    /// A book frozen when a stale-snapshot fault was injected, served by REST `stale_serves` more times.
    pub frozen: Option<BookSnapshot>,
    pub stale_serves: u32,
    /// A quiet market: no book change and no trade until then (a fault; Binance then pushes nothing).
    pub quiet_until: Option<std::time::Instant>,
    /// Trades already pushed (time, batch), oldest first, served by the venues' trade-history endpoints.
    pub tape: std::collections::VecDeque<(i64, TradeBatch)>,
    pub tx: broadcast::Sender<Arc<Stamped>>,
}

/// Trade batches a market keeps for its history endpoints (about 6 MB per market; at the default
/// rate of 20 steps/s, 40 minutes). A venue keeps far more; a gap older than this is answered empty,
/// as a venue answers a request older than its retention.
pub(crate) const TAPE_CAPACITY: usize = 50_000;

/// Price/size scales and starting price from the symbol name, so BTC looks like BTC.
pub(crate) fn instrument_params(symbol: &str) -> (Scale, i64) {
    let up = symbol.to_ascii_uppercase();
    let (price_decimals, start) = if up.starts_with("BTC") {
        (1, 60_000)
    } else if up.starts_with("ETH") {
        (2, 3_000)
    } else {
        (3, 100)
    };
    let scale = Scale {
        price_decimals,
        qty_decimals: 3,
    };
    (scale, start * 10i64.pow(price_decimals))
}

impl Market {
    pub(crate) fn new(
        seed: u64,
        venue: &str,
        symbol: &str,
        kind: MarketKind,
        levels: usize,
    ) -> Market {
        let (scale, start) = instrument_params(symbol);
        let mut rng = SimRng::derive(seed, &[venue, symbol]);
        let levels = levels.max(5) as i64;
        let mut book = Book::default();
        for i in 0..levels {
            let bq = rng.range(1, 5_000);
            let aq = rng.range(1, 5_000);
            book.set(true, start - 1 - i, bq);
            book.set(false, start + 1 + i, aq);
        }
        let first_id = 1_000 + rng.range(0, 1_000_000) as u64;
        let (tx, _) = broadcast::channel(65_536);
        Market {
            symbol: symbol.into(),
            kind,
            scale,
            book,
            levels,
            mid: start,
            last_id: first_id,
            diffs: 0,
            next_trade_id: 100_000 + rng.range(0, 1_000_000) as u64,
            next_agg_id: 10_000 + rng.range(0, 1_000_000) as u64,
            funding_rate_e8: rng.range(-5_000, 20_000),
            oi_lots: rng.range(1_000_000, 50_000_000),
            dvol_bp: rng.range(4_000, 9_000),
            reset_pending: false,
            quiet_until: None,
            frozen: None,
            stale_serves: 0,
            tape: std::collections::VecDeque::new(),
            slow_rng: SimRng::derive(seed, &[venue, symbol, "slow"]),
            rng,
            tx,
        }
    }

    pub(crate) fn last_id(&self) -> u64 {
        self.last_id
    }

    pub(crate) fn diffs(&self) -> u64 {
        self.diffs
    }

    pub(crate) fn book(&self) -> &Book {
        &self.book
    }

    /// The REST snapshot: the frozen (stale) one while a stale-snapshot fault lasts, else the live book.
    pub(crate) fn rest_snapshot(&mut self, depth: usize, ts_ms: i64) -> BookSnapshot {
        if self.stale_serves > 0
            && let Some(frozen) = &self.frozen
        {
            self.stale_serves -= 1;
            let mut s = frozen.clone();
            s.bids.truncate(depth);
            s.asks.truncate(depth);
            return s;
        }
        self.snapshot(depth, ts_ms)
    }

    pub(crate) fn snapshot(&self, depth: usize, ts_ms: i64) -> BookSnapshot {
        BookSnapshot {
            last_id: self.last_id,
            bids: self.book.top_bids(depth),
            asks: self.book.top_asks(depth),
            okx_checksum: self.book.okx_checksum(self.scale),
            ts_ms,
        }
    }

    /// One book diff: maybe move the mid, delete crossing and far-away levels, change 1–4 levels near the top.
    pub(crate) fn step_book(&mut self) -> BookDiff {
        let mut bids = Vec::new();
        let mut asks = Vec::new();
        if self.rng.chance(20) {
            self.mid += self.rng.range(-1, 1);
        }
        let (mid, far) = (self.mid, self.levels * 2);
        let crossing_bids: Vec<i64> = self.book.bids.range(mid..).map(|(p, _)| *p).collect();
        let far_bids: Vec<i64> = self.book.bids.range(..mid - far).map(|(p, _)| *p).collect();
        for p in crossing_bids.into_iter().chain(far_bids) {
            bids.push(self.book.set(true, p, 0));
        }
        let crossing_asks: Vec<i64> = self.book.asks.range(..=mid).map(|(p, _)| *p).collect();
        let far_asks: Vec<i64> = self
            .book
            .asks
            .range(mid + far + 1..)
            .map(|(p, _)| *p)
            .collect();
        for p in crossing_asks.into_iter().chain(far_asks) {
            asks.push(self.book.set(false, p, 0));
        }
        let changes = self.rng.range(1, 4);
        for _ in 0..changes {
            let is_bid = self.rng.chance(50);
            let offset = self.rng.range(0, self.levels - 1);
            let qty = if self.rng.chance(25) {
                0
            } else {
                self.rng.range(1, 5_000)
            };
            let price = if is_bid {
                mid - 1 - offset
            } else {
                mid + 1 + offset
            };
            let change = self.book.set(is_bid, price, qty);
            // Keep at least one level per side so best bid/ask always exist.
            let side_empty = if is_bid {
                self.book.bids.is_empty()
            } else {
                self.book.asks.is_empty()
            };
            let change = if side_empty {
                self.book.set(is_bid, price, 1)
            } else {
                change
            };
            let list = if is_bid { &mut bids } else { &mut asks };
            list.retain(|c: &LevelChange| c.price != price);
            list.push(change);
        }
        let count = (bids.len() + asks.len()) as u64;
        let prev_id = self.last_id;
        self.last_id += count;
        self.diffs += 1;
        BookDiff {
            prev_id,
            first_id: prev_id + 1,
            last_id: self.last_id,
            bids,
            asks,
            okx_checksum: self.book.okx_checksum(self.scale),
            best_bid: self.book.best_bid().unwrap_or((0, 0)),
            best_ask: self.book.best_ask().unwrap_or((0, 0)),
        }
    }

    /// An OKX sequence reset: the next diff's id restarts below the previous one.
    pub(crate) fn reset_sequence(&mut self) {
        self.last_id = self.rng.range(1, 100) as u64;
    }

    /// Prepare a reset diff: `prev_id` is the old id, `first_id..=last_id` the restarted range.
    pub(crate) fn step_book_after_reset(&mut self) -> BookDiff {
        let old = self.last_id;
        self.reset_sequence();
        let mut diff = self.step_book();
        diff.prev_id = old;
        diff
    }

    pub(crate) fn step_trades(&mut self) -> TradeBatch {
        let taker_buy = self.rng.chance(50);
        let price = if taker_buy {
            self.book.best_ask().map_or(self.mid + 1, |l| l.0)
        } else {
            self.book.best_bid().map_or(self.mid - 1, |l| l.0)
        };
        let n = self.rng.range(1, 3);
        let fills = (0..n)
            .map(|_| {
                let id = self.next_trade_id;
                self.next_trade_id += 1;
                Fill {
                    id,
                    qty: self.rng.range(1, 2_000),
                }
            })
            .collect();
        let agg_id = self.next_agg_id;
        self.next_agg_id += 1;
        TradeBatch {
            agg_id,
            price,
            taker_buy,
            fills,
        }
    }

    /// Keep a pushed batch for the history endpoints (bounded by [`TAPE_CAPACITY`]).
    pub(crate) fn record_trades(&mut self, ts_ms: i64, batch: &TradeBatch) {
        if self.tape.len() == TAPE_CAPACITY {
            self.tape.pop_front();
        }
        self.tape.push_back((ts_ms, batch.clone()));
    }

    pub(crate) fn step_mark(&mut self, now_ms: i64) -> MarkUpdate {
        self.funding_rate_e8 += self.slow_rng.range(-50, 50);
        let eight_h = 8 * 3_600_000;
        let funding_time_ms = now_ms - now_ms.rem_euclid(eight_h);
        MarkUpdate {
            mark: self.mid,
            index: self.mid + self.slow_rng.range(-3, 3),
            funding_rate_e8: self.funding_rate_e8,
            funding_time_ms,
            next_funding_ms: funding_time_ms + eight_h,
        }
    }

    pub(crate) fn step_open_interest(&mut self) -> i64 {
        self.oi_lots = (self.oi_lots + self.slow_rng.range(-20_000, 20_000)).max(1);
        self.oi_lots
    }

    /// A liquidation on roughly one slow tick in three.
    pub(crate) fn step_liquidation(&mut self) -> Option<Liquidation> {
        if !self.slow_rng.chance(35) {
            return None;
        }
        let sell = self.slow_rng.chance(50);
        Some(Liquidation {
            sell,
            price: if sell {
                self.mid - self.slow_rng.range(1, 20)
            } else {
                self.mid + self.slow_rng.range(1, 20)
            },
            qty: self.slow_rng.range(1, 10_000),
        })
    }

    pub(crate) fn step_dvol(&mut self) -> i64 {
        self.dvol_bp = (self.dvol_bp + self.slow_rng.range(-30, 30)).clamp(1_000, 30_000);
        self.dvol_bp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_chain_and_rebuild_the_true_book() {
        let mut m = Market::new(9, "binance_spot", "BTCUSDT", MarketKind::Instrument, 20);
        let snap = m.snapshot(10_000, 0);
        let mut mirror = Book::default();
        for (p, q) in &snap.bids {
            mirror.set(true, *p, *q);
        }
        for (p, q) in &snap.asks {
            mirror.set(false, *p, *q);
        }
        let mut last = snap.last_id;
        for _ in 0..2_000 {
            let d = m.step_book();
            assert_eq!(d.prev_id, last);
            assert_eq!(d.first_id, last + 1);
            assert!(d.last_id >= d.first_id);
            last = d.last_id;
            for c in &d.bids {
                mirror.set(true, c.price, c.qty);
            }
            for c in &d.asks {
                mirror.set(false, c.price, c.qty);
            }
            let (b, a) = (m.book().best_bid().unwrap(), m.book().best_ask().unwrap());
            assert!(b.0 < a.0, "book never crosses");
        }
        assert_eq!(&mirror, m.book());
    }

    #[test]
    fn trade_ids_are_contiguous() {
        let mut m = Market::new(1, "okx_spot", "ETH-USDT", MarketKind::Instrument, 20);
        let mut next = None;
        for _ in 0..100 {
            let t = m.step_trades();
            for f in &t.fills {
                if let Some(n) = next {
                    assert_eq!(f.id, n);
                }
                next = Some(f.id + 1);
            }
        }
    }
}
