//! OKX order-book crc32 (legacy; the venue sends `checksum: 0` since 2026-06-23).
//!
//! Rule (docs + both recorded fixtures): over the top 25 levels, interleave `bid:ask` per level as
//! `price:size`, colon-joined; when one side runs out continue with the other; crc32 as a signed i32.
//! The venue's strings are reproduced from the decimals as parsed, which keep the scale as sent
//! (`Decimal`'s display, written here from mantissa and scale: formatting was 78 % of the checksum).

use super::OrderBook;
use marketprism_model::Decimal;
use marketprism_model::decimal::Digits;

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
            push_decimal(buf, *p);
            buf.push(':');
            push_decimal(buf, *q);
        }
    }
}

/// Append `d` exactly as its `Display` writes it: every digit of the mantissa, the point `scale`
/// digits from the right, a leading `0.` and zeros when the mantissa is shorter than the scale.
fn push_decimal(buf: &mut String, d: Decimal) {
    let mantissa = d.mantissa();
    let scale = d.scale() as usize;
    if mantissa < 0 {
        buf.push('-');
    }
    let digits = Digits::of(mantissa.unsigned_abs());
    let digits = digits.as_str();
    if scale == 0 {
        buf.push_str(digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        buf.push_str(int);
        buf.push('.');
        buf.push_str(frac);
    } else {
        buf.push_str("0.");
        buf.extend(std::iter::repeat_n('0', scale - digits.len()));
        buf.push_str(digits);
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
    fn decimals_are_written_as_their_display() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut cases: Vec<Decimal> = [
            "0",
            "0.00",
            "0.001",
            "1",
            "10.50",
            "3366.1",
            "-0.5",
            "79228162514264337593543950335",
            "0.0000000000000000000000000001",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        for _ in 0..20_000 {
            let m = i64::try_from(next() >> (next() % 64)).unwrap_or(i64::MAX);
            cases.push(Decimal::new(m, (next() % 20) as u32));
        }
        for d in cases {
            let mut buf = String::new();
            push_decimal(&mut buf, d);
            assert_eq!(buf, d.to_string(), "{d:?}");
        }
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
