//! The simulated "true" order book in integer ticks/lots, its text formats and the OKX crc32.

use std::collections::BTreeMap;

/// Price and quantity scales of one instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scale {
    pub price_decimals: u32,
    pub qty_decimals: u32,
}

/// `value / 10^decimals` as text with trailing zeros trimmed ("3366.10" → "3366.1", "3366.0" → "3366").
pub fn fmt_trimmed(value: i64, decimals: u32) -> String {
    let s = fmt_fixed(value, decimals);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// `value / 10^decimals` with exactly `decimals` fraction digits (Binance style "4.00000000").
pub fn fmt_fixed(value: i64, decimals: u32) -> String {
    let neg = value < 0;
    let v = value.unsigned_abs();
    let p = 10u64.pow(decimals);
    let body = if decimals == 0 {
        v.to_string()
    } else {
        format!("{}.{:0width$}", v / p, v % p, width = decimals as usize)
    };
    if neg { format!("-{body}") } else { body }
}

/// One side of a book change: price, new absolute quantity (0 = delete), and whether the level existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LevelChange {
    pub price: i64,
    pub qty: i64,
    pub existed: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Book {
    /// price ticks → quantity lots; bids are iterated in reverse.
    pub bids: BTreeMap<i64, i64>,
    pub asks: BTreeMap<i64, i64>,
}

impl Book {
    /// Set a level (qty 0 deletes) and describe the change.
    pub(crate) fn set(&mut self, is_bid: bool, price: i64, qty: i64) -> LevelChange {
        let side = if is_bid {
            &mut self.bids
        } else {
            &mut self.asks
        };
        let existed = if qty == 0 {
            side.remove(&price).is_some()
        } else {
            side.insert(price, qty).is_some()
        };
        LevelChange {
            price,
            qty,
            existed,
        }
    }

    pub(crate) fn top_bids(&self, n: usize) -> Vec<(i64, i64)> {
        self.bids
            .iter()
            .rev()
            .take(n)
            .map(|(p, q)| (*p, *q))
            .collect()
    }

    pub(crate) fn top_asks(&self, n: usize) -> Vec<(i64, i64)> {
        self.asks.iter().take(n).map(|(p, q)| (*p, *q)).collect()
    }

    pub(crate) fn best_bid(&self) -> Option<(i64, i64)> {
        self.bids.iter().next_back().map(|(p, q)| (*p, *q))
    }

    pub(crate) fn best_ask(&self) -> Option<(i64, i64)> {
        self.asks.iter().next().map(|(p, q)| (*p, *q))
    }

    /// OKX crc32 of the top 25 levels, with prices/sizes formatted the way this simulator sends them to OKX clients.
    pub(crate) fn okx_checksum(&self, scale: Scale) -> i32 {
        let f = |levels: Vec<(i64, i64)>| -> Vec<(String, String)> {
            levels
                .into_iter()
                .map(|(p, q)| {
                    (
                        fmt_trimmed(p, scale.price_decimals),
                        fmt_trimmed(q, scale.qty_decimals),
                    )
                })
                .collect()
        };
        okx_checksum(&f(self.top_bids(25)), &f(self.top_asks(25)))
    }
}

/// The OKX book checksum: interleave `bid:ask` per level over the first 25 of each side (`price:size`, raw strings,
/// a shorter side just stops contributing), colon-joined, CRC32, as a signed 32-bit integer.
pub fn okx_checksum(bids: &[(String, String)], asks: &[(String, String)]) -> i32 {
    let mut parts: Vec<&str> = Vec::with_capacity(100);
    for i in 0..25 {
        if let Some((p, q)) = bids.get(i) {
            parts.push(p);
            parts.push(q);
        }
        if let Some((p, q)) = asks.get(i) {
            parts.push(p);
            parts.push(q);
        }
    }
    crc32fast::hash(parts.join(":").as_bytes()) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(p, q)| (p.to_string(), q.to_string()))
            .collect()
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_trimmed(33661, 1), "3366.1");
        assert_eq!(fmt_trimmed(33660, 1), "3366");
        assert_eq!(fmt_trimmed(5, 3), "0.005");
        assert_eq!(fmt_fixed(400_000_000, 8), "4.00000000");
        assert_eq!(fmt_fixed(-15, 1), "-1.5");
        assert_eq!(fmt_trimmed(12, 0), "12");
    }

    #[test]
    fn okx_checksum_matches_the_doc_strings() {
        let a = okx_checksum(
            &levels(&[("3366.1", "7"), ("3366", "6")]),
            &levels(&[("3366.8", "9"), ("3368", "8")]),
        );
        assert_eq!(
            a,
            crc32fast::hash(b"3366.1:7:3366.8:9:3366:6:3368:8") as i32
        );
        let b = okx_checksum(
            &levels(&[("3366.1", "7")]),
            &levels(&[("3366.8", "9"), ("3368", "8"), ("3372", "8")]),
        );
        assert_eq!(
            b,
            crc32fast::hash(b"3366.1:7:3366.8:9:3368:8:3372:8") as i32
        );
    }

    #[test]
    fn book_set_reports_existence() {
        let mut b = Book::default();
        assert!(!b.set(true, 10, 5).existed);
        assert!(b.set(true, 10, 6).existed);
        assert!(b.set(true, 10, 0).existed);
        assert!(
            !b.set(true, 10, 0).existed,
            "deleting a missing level is a no-op"
        );
        b.set(true, 9, 1);
        b.set(true, 8, 1);
        b.set(false, 11, 1);
        assert_eq!(b.top_bids(1), vec![(9, 1)]);
        assert_eq!(b.best_ask(), Some((11, 1)));
    }
}
