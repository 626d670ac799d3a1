//! OKX order-book crc32 (legacy; the venue sends `checksum: 0` since 2026-06-23).
//!
//! Rule (docs + both recorded fixtures): over the top 25 levels, interleave `bid:ask` per level as
//! `price:size`, colon-joined; when one side runs out continue with the other; crc32 as a signed i32.
//! The venue's strings are reproduced from `Decimal`'s display, which keeps the scale as sent.

use super::OrderBook;
use std::fmt::Write as _;

pub(crate) const CHECKSUM_LEVELS: usize = 25;

/// The string the checksum is computed over (exposed for tests and debugging).
pub(crate) fn checksum_string(book: &OrderBook, buf: &mut String) {
    buf.clear();
    let mut bids = book.bids.iter_best_first().take(CHECKSUM_LEVELS);
    let mut asks = book.asks.iter_best_first().take(CHECKSUM_LEVELS);
    loop {
        let (b, a) = (bids.next(), asks.next());
        if b.is_none() && a.is_none() {
            break;
        }
        for (p, q) in [b, a].into_iter().flatten() {
            if !buf.is_empty() {
                buf.push(':');
            }
            let _ = write!(buf, "{p}:{q}");
        }
    }
}

/// OKX's signed crc32 of the book's top 25 levels.
pub fn okx_checksum(book: &OrderBook) -> i32 {
    let mut buf = String::with_capacity(CHECKSUM_LEVELS * 2 * 24);
    checksum_string(book, &mut buf);
    crc32fast::hash(buf.as_bytes()) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::Decimal;

    fn lv(v: &[(&str, &str)]) -> Vec<(Decimal, Decimal)> {
        v.iter()
            .map(|(p, q)| (p.parse().unwrap(), q.parse().unwrap()))
            .collect()
    }

    #[test]
    fn doc_examples_build_the_documented_strings() {
        let mut b = OrderBook::new(400);
        let mut s = String::new();
        b.load(
            &lv(&[("3366.1", "7"), ("3366", "6")]),
            &lv(&[("3366.8", "9"), ("3368", "8")]),
            0,
            0,
        );
        checksum_string(&b, &mut s);
        assert_eq!(s, "3366.1:7:3366.8:9:3366:6:3368:8");
        b.load(
            &lv(&[("3366.1", "7")]),
            &lv(&[("3366.8", "9"), ("3368", "8"), ("3372", "8")]),
            0,
            0,
        );
        checksum_string(&b, &mut s);
        assert_eq!(s, "3366.1:7:3366.8:9:3368:8:3372:8");
    }
}
