//! What a source observed of one stream over the report's range: rows per minute, exact latencies,
//! duplicates by natural key and the stream's gap rows. Pure: the sources ([`crate::source`]) fill it,
//! [`crate::evaluate`] judges it.

use marketprism_model::DataType;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// One minute in ms.
pub(crate) const MINUTE_MS: i64 = 60_000;

/// A stream: one data type of one instrument, as stored (`exchange`, `market_type`, `symbol` columns).
/// An expected stream taken from a config has an empty `market_type` (the venue decides it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct StreamId {
    pub exchange: String,
    pub market_type: String,
    pub data_type: DataType,
    pub symbol: String,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let market_type = if self.market_type.is_empty() {
            "*"
        } else {
            &self.market_type
        };
        write!(
            f,
            "{}/{market_type}/{}/{}",
            self.exchange, self.data_type, self.symbol
        )
    }
}

/// The half-open time range `[from_ms, to_ms)` a report covers (UTC ms, exchange time `ts_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub from_ms: i64,
    pub to_ms: i64,
}

impl Range {
    /// Whole minutes inside the range, as minute numbers (`ts_ms / 60000`): partial minutes at
    /// either end are left out, so a range that starts at :59 does not count an empty first minute.
    pub fn whole_minutes(&self) -> std::ops::Range<i64> {
        let first =
            self.from_ms.div_euclid(MINUTE_MS) + i64::from(self.from_ms.rem_euclid(MINUTE_MS) != 0);
        let end = self.to_ms.div_euclid(MINUTE_MS);
        first..end.max(first)
    }

    pub fn contains(&self, ts_ms: i64) -> bool {
        (self.from_ms..self.to_ms).contains(&ts_ms)
    }

    pub fn duration_ms(&self) -> i64 {
        (self.to_ms - self.from_ms).max(0)
    }
}

/// A gap row of the stream (`gaps` table: `start_ms`, `end_ms`, `cause`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Gap {
    pub start_ms: i64,
    pub end_ms: i64,
    pub cause: String,
}

/// What was observed of one stream. Rows outside the range must not be added.
#[derive(Debug, Clone, Default)]
pub struct StreamStats {
    /// Rows per minute number (`ts_ms / 60000`).
    pub minutes: BTreeMap<i64, u64>,
    /// Exact latency (`recv_ts_ms − ts_ms`, ms) → rows.
    pub latency_ms: BTreeMap<i64, u64>,
    /// Rows whose natural key an earlier row of the range already had.
    pub duplicates: u64,
    /// Gap rows by their own key (start, cause) → end: a gap redelivered or written by both of two
    /// overlapping pods is one gap.
    pub gaps: BTreeMap<(i64, String), i64>,
}

impl StreamStats {
    pub fn rows(&self) -> u64 {
        self.minutes.values().sum()
    }

    /// Adds `count` rows of exchange time `ts_ms` and latency `latency_ms`.
    pub fn add_rows(&mut self, ts_ms: i64, latency_ms: i64, count: u64) {
        *self.minutes.entry(ts_ms.div_euclid(MINUTE_MS)).or_default() += count;
        *self.latency_ms.entry(latency_ms).or_default() += count;
    }

    /// Adds `count` rows in minute number `minute` (`ts_ms / 60000`), latencies added separately.
    pub fn add_minute(&mut self, minute: i64, count: u64) {
        *self.minutes.entry(minute).or_default() += count;
    }

    /// Adds `count` rows of latency `latency_ms`, their minutes added separately.
    pub fn add_latency(&mut self, latency_ms: i64, count: u64) {
        *self.latency_ms.entry(latency_ms).or_default() += count;
    }

    /// Adds one gap row; a second row with the same key (start, cause) is the same gap.
    pub fn add_gap(&mut self, gap: Gap) {
        let end = self
            .gaps
            .entry((gap.start_ms, gap.cause))
            .or_insert(gap.end_ms);
        *end = (*end).max(gap.end_ms);
    }

    /// The gap rows in start order.
    pub fn gap_list(&self) -> Vec<Gap> {
        self.gaps
            .iter()
            .map(|((start_ms, cause), &end_ms)| Gap {
                start_ms: *start_ms,
                end_ms,
                cause: cause.clone(),
            })
            .collect()
    }
}

/// Every stream a source saw.
pub type Observed = BTreeMap<StreamId, StreamStats>;

/// Counts rows whose natural key was seen before, per stream, without keeping the keys themselves:
/// a 64-bit hash per row (8 bytes; a collision needs ~4·10^9 rows of one stream to be likely).
#[derive(Debug, Default)]
pub(crate) struct KeySeen {
    seen: HashSet<u64, foldhash::fast::FixedState>,
}

impl KeySeen {
    /// True when `key_hash` was seen before (a duplicate).
    pub fn repeat(&mut self, key_hash: u64) -> bool {
        !self.seen.insert(key_hash)
    }
}

/// The exact quantile `q` (0..=1) of a latency distribution by nearest rank (`ceil(q·n)`-th value).
pub(crate) fn quantile(latency_ms: &BTreeMap<i64, u64>, q: f64) -> Option<i64> {
    let n: u64 = latency_ms.values().sum();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for (&value, &count) in latency_ms {
        seen += count;
        if seen >= rank {
            return Some(value);
        }
    }
    latency_ms.keys().next_back().copied()
}

/// Total time of the union of `gaps` clipped to `range` (overlapping gaps count once), ms.
pub(crate) fn gap_time_ms(gaps: &[Gap], range: Range) -> i64 {
    let mut spans: Vec<(i64, i64)> = gaps
        .iter()
        .map(|g| (g.start_ms.max(range.from_ms), g.end_ms.min(range.to_ms)))
        .filter(|(s, e)| e > s)
        .collect();
    spans.sort_unstable();
    let mut total = 0;
    let mut current: Option<(i64, i64)> = None;
    for (s, e) in spans {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    total + current.map_or(0, |(s, e)| e - s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_minutes_leave_out_partial_ends() {
        let r = Range {
            from_ms: 59_000,
            to_ms: 180_500,
        };
        assert_eq!(r.whole_minutes(), 1..3);
        let aligned = Range {
            from_ms: 60_000,
            to_ms: 180_000,
        };
        assert_eq!(aligned.whole_minutes(), 1..3);
        let short = Range {
            from_ms: 61_000,
            to_ms: 62_000,
        };
        assert_eq!(short.whole_minutes().count(), 0);
    }

    #[test]
    fn nearest_rank_quantiles() {
        // 1..=100 once each: p50 = 50, p99 = 99, p100 = 100.
        let lat: BTreeMap<i64, u64> = (1..=100).map(|v| (v, 1)).collect();
        assert_eq!(quantile(&lat, 0.5), Some(50));
        assert_eq!(quantile(&lat, 0.99), Some(99));
        assert_eq!(quantile(&lat, 1.0), Some(100));
        let skewed = BTreeMap::from([(5, 98), (500, 2)]);
        assert_eq!(quantile(&skewed, 0.98), Some(5));
        assert_eq!(quantile(&skewed, 0.99), Some(500));
        assert_eq!(quantile(&BTreeMap::new(), 0.5), None);
    }

    #[test]
    fn gap_time_is_the_clipped_union() {
        let g = |s, e| Gap {
            start_ms: s,
            end_ms: e,
            cause: "disconnect".into(),
        };
        let range = Range {
            from_ms: 0,
            to_ms: 1_000,
        };
        assert_eq!(
            gap_time_ms(&[g(100, 200), g(150, 300), g(900, 1_500)], range),
            300
        );
        assert_eq!(gap_time_ms(&[g(-50, 10)], range), 10);
        assert_eq!(gap_time_ms(&[g(2_000, 3_000)], range), 0);
    }

    #[test]
    fn a_gap_written_twice_counts_once() {
        let mut s = StreamStats::default();
        let g = Gap {
            start_ms: 5,
            end_ms: 9,
            cause: "disconnect".into(),
        };
        s.add_gap(g.clone());
        s.add_gap(g);
        s.add_gap(Gap {
            start_ms: 5,
            end_ms: 9,
            cause: "sequence".into(),
        });
        assert_eq!(s.gap_list().len(), 2);
    }

    #[test]
    fn keys_seen_twice_are_duplicates() {
        let mut k = KeySeen::default();
        assert!(!k.repeat(7));
        assert!(k.repeat(7));
        assert!(!k.repeat(8));
    }
}
