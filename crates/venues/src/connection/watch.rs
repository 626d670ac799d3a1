//! The per-stream silence watchdog of one connection, pure. Each stream has its own expected cadence
//! (`Stream::max_silence`; `None` for streams that may legitimately stay quiet). A silent stream is
//! that stream's problem; the connection is dead only when every watched stream has been silent for
//! twice its cadence at once (no data at all, and a quiet book's check had time to clear it), which
//! the session treats as a dead socket.

use crate::plan::Stream;
use marketprism_model::{DataType, Symbol};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

pub type StreamKey = (DataType, Symbol);

#[derive(Debug, Clone)]
struct Entry {
    seen: Instant,
    seen_ms: i64,
    max: Duration,
    /// Reported silent; not reported again until data resumes.
    stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Fine,
    /// Every watched stream is past its cadence: nothing arrives at all.
    Dead {
        detail: String,
    },
    /// These streams went silent (newly): `(stream, last data ms, allowed silence)`.
    Silent(Vec<(StreamKey, i64, Duration)>),
}

#[derive(Debug, Clone, Default)]
pub struct Watch {
    entries: HashMap<StreamKey, Entry>,
}

impl Watch {
    /// Start watching every stream that has a cadence.
    pub fn arm(&mut self, streams: &[Stream], now: Instant, now_ms: i64) {
        for s in streams {
            if let Some(max) = s.max_silence {
                self.entries.insert(
                    (s.data_type, s.symbol.clone()),
                    Entry {
                        seen: now,
                        seen_ms: now_ms,
                        max,
                        stale: false,
                    },
                );
            }
        }
    }

    /// Data for `key`; true when the stream had been reported silent (it is back).
    pub fn seen(&mut self, key: &StreamKey, now: Instant, now_ms: i64) -> bool {
        match self.entries.get_mut(key) {
            Some(e) => {
                e.seen = now;
                e.seen_ms = now_ms;
                std::mem::replace(&mut e.stale, false)
            }
            None => false,
        }
    }

    /// Stop watching (a refused stream will never send).
    pub fn remove(&mut self, key: &StreamKey) {
        self.entries.remove(key);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn poll(&mut self, now: Instant) -> Verdict {
        if self.entries.is_empty() {
            return Verdict::Fine;
        }
        if self.entries.values().all(|e| now >= e.seen + e.max * 2) {
            let longest = self
                .entries
                .values()
                .map(|e| e.max)
                .max()
                .unwrap_or_default();
            return Verdict::Dead {
                detail: format!(
                    "no data on any of {} watched streams (cadence up to {longest:?})",
                    self.entries.len()
                ),
            };
        }
        let mut silent: Vec<_> = self
            .entries
            .iter_mut()
            .filter(|(_, e)| !e.stale && now >= e.seen + e.max)
            .map(|(k, e)| {
                e.stale = true;
                (k.clone(), e.seen_ms, e.max)
            })
            .collect();
        silent.sort_by(|a, b| a.0.cmp(&b.0));
        if silent.is_empty() {
            Verdict::Fine
        } else {
            Verdict::Silent(silent)
        }
    }

    /// When [`Watch::poll`] next has something to say: a stream reaching its cadence, or the moment
    /// every stream has been silent for twice its cadence.
    pub fn next_wake(&self) -> Option<Instant> {
        let silent = self
            .entries
            .values()
            .filter(|e| !e.stale)
            .map(|e| e.seen + e.max)
            .min();
        let dead = self.entries.values().map(|e| e.seen + e.max * 2).max();
        match (silent, dead) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::MarketType;

    fn stream(dt: DataType, sym: &str, max: Option<u64>) -> Stream {
        Stream {
            data_type: dt,
            symbol: Symbol::new(sym).unwrap(),
            market_type: MarketType::Spot,
            max_silence: max.map(Duration::from_secs),
        }
    }

    #[test]
    fn one_silent_stream_is_its_own_all_silent_is_dead() {
        let t0 = Instant::now();
        let mut w = Watch::default();
        let streams = [
            stream(DataType::Orderbooks, "BTC-USDT", Some(1)),
            stream(DataType::Orderbooks, "ETH-USDT", Some(1)),
            stream(DataType::Trades, "BTC-USDT", None),
        ];
        w.arm(&streams, t0, 1_000);
        let btc = (DataType::Orderbooks, Symbol::new("BTC-USDT").unwrap());
        let eth = (DataType::Orderbooks, Symbol::new("ETH-USDT").unwrap());
        let t1 = t0 + Duration::from_millis(900);
        assert!(!w.seen(&btc, t1, 1_900));
        let t2 = t0 + Duration::from_millis(1_100);
        assert_eq!(
            w.poll(t2),
            Verdict::Silent(vec![(eth.clone(), 1_000, Duration::from_secs(1))])
        );
        assert_eq!(w.poll(t2), Verdict::Fine, "reported once");
        assert!(w.seen(&eth, t2, 2_100), "back");
        let ms = Duration::from_millis;
        assert_eq!(w.next_wake(), Some(t0 + ms(1_900)), "BTC's cadence");
        assert_eq!(
            w.poll(t0 + ms(2_000)),
            Verdict::Silent(vec![(btc.clone(), 1_900, Duration::from_secs(1))])
        );
        assert_eq!(w.next_wake(), Some(t0 + ms(2_100)), "ETH's cadence");
        assert_eq!(
            w.poll(t0 + ms(2_200)),
            Verdict::Silent(vec![(eth.clone(), 2_100, Duration::from_secs(1))])
        );
        assert_eq!(w.next_wake(), Some(t0 + ms(3_100)), "both silent for 2x");
        assert_eq!(w.poll(t0 + ms(3_000)), Verdict::Fine, "not dead before 2x");
        let t3 = t0 + ms(3_100);
        assert!(matches!(w.poll(t3), Verdict::Dead { .. }));
        w.remove(&btc);
        w.remove(&eth);
        assert_eq!(w.poll(t3), Verdict::Fine, "nothing watched");
        assert!(w.is_empty());
    }
}
