//! `Dec18`: an exact decimal as ClickHouse `Decimal(38,18)` carries it, an `i128` scaled by 10^18.
//!
//! Serde picks the form by the format, as `clickhouse::serde::uuid` does: compact formats (RowBinary)
//! get the raw `i128`; human-readable ones (JSON, serde_arrow's `Decimal128` builder) get the exact text.
//! `Decimal(38,18)` is used on both dialects: ClickHouse 18.16 reads it in RowBinary as 16 little-endian bytes,
//! and 20 integer digits + 18 fractional digits cover every price, size and ratio a venue sends.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Fractional digits of every decimal column.
pub const SCALE: u32 = 18;
/// Total digits of every decimal column.
pub const PRECISION: u32 = 38;
#[cfg(test)]
const ONE: i128 = 1_000_000_000_000_000_000;
/// Exclusive bound of a 38-digit value.
const LIMIT: i128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;

/// A decimal value scaled by 10^18 (`Decimal(38,18)` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dec18(pub i128);

/// A decimal that `Decimal(38,18)` cannot hold exactly: never truncated, always refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalRangeError {
    #[error("{0} has more than 18 fractional digits")]
    TooPrecise(String),
    #[error("{0} has more than 20 integer digits")]
    TooLarge(String),
}

impl Dec18 {
    pub fn from_decimal(d: Decimal) -> Result<Dec18, DecimalRangeError> {
        let n = d.normalize();
        let scale = n.scale();
        if scale > SCALE {
            return Err(DecimalRangeError::TooPrecise(d.to_string()));
        }
        let scaled = n
            .mantissa()
            .checked_mul(10_i128.pow(SCALE - scale))
            .filter(|v| v.abs() < LIMIT)
            .ok_or_else(|| DecimalRangeError::TooLarge(d.to_string()))?;
        Ok(Dec18(scaled))
    }

    /// Back to a `Decimal`, trailing zeros dropped (`0.00000001`, not `0.000000010000000000`).
    pub fn to_decimal(self) -> Result<Decimal, DecimalRangeError> {
        let (mut v, mut scale) = (self.0, SCALE);
        while scale > 0 && v % 10 == 0 {
            v /= 10;
            scale -= 1;
        }
        Decimal::try_from_i128_with_scale(v, scale)
            .map_err(|_| DecimalRangeError::TooLarge(self.to_string()))
    }
}

/// The decimal digits of an unsigned integer, on the stack: what every exact decimal writer
/// (`Dec18` text, the OKX book checksum) builds its text from, without `format!` or an allocation.
pub struct Digits {
    buf: [u8; 40],
    start: usize,
}

impl Digits {
    pub fn of(v: u128) -> Digits {
        // A u128 has at most 39 digits; written right to left.
        let mut buf = [0u8; 40];
        let mut at = buf.len();
        let mut wide = v;
        // 128-bit division is a library call: take the wide part down to 64 bits first.
        while wide > u128::from(u64::MAX) {
            at -= 1;
            buf[at] = b'0' + (wide % 10) as u8;
            wide /= 10;
        }
        let mut m = wide as u64;
        loop {
            at -= 1;
            buf[at] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        Digits { buf, start: at }
    }

    /// The digits, most significant first (`"0"` for zero).
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are written.
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or_default()
    }
}

/// Exact text of a `Dec18` value, trailing fractional zeros dropped: `42219.9`, `-0.00000001`, `5`.
fn write_text(v: i128, out: &mut impl fmt::Write) -> fmt::Result {
    if v < 0 {
        out.write_char('-')?;
    }
    let digits = Digits::of(v.unsigned_abs());
    let digits = digits.as_str();
    let scale = SCALE as usize;
    let (int, frac) = if digits.len() > scale {
        digits.split_at(digits.len() - scale)
    } else {
        ("0", digits)
    };
    out.write_str(int)?;
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        // Zeros between the point and a short mantissa's digits (`0.00000001`).
        let lead = if digits.len() > scale {
            0
        } else {
            scale - digits.len()
        };
        out.write_char('.')?;
        for _ in 0..lead {
            out.write_char('0')?;
        }
        out.write_str(frac)?;
    }
    Ok(())
}

/// The longest text of any `i128` scaled by 10^18: sign, 21 integer digits, point, 18 fractional digits.
const TEXT_MAX: usize = 41;

/// [`write_text`] into a stack buffer: the Parquet writer formats every decimal cell as text.
struct Text {
    buf: [u8; TEXT_MAX],
    len: usize,
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Text {
    fn of(v: i128) -> Text {
        let mut t = Text {
            buf: [0; TEXT_MAX],
            len: 0,
        };
        // At most TEXT_MAX bytes are ever written.
        let _ = write_text(v, &mut t);
        t
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, '-' and '.' are written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Display for Dec18 {
    /// Exact text, trailing fractional zeros dropped: `42219.9`, `-0.00000001`, `5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_text(self.0, f)
    }
}

impl FromStr for Dec18 {
    type Err = DecimalRangeError;
    fn from_str(s: &str) -> Result<Dec18, DecimalRangeError> {
        // Digit by digit, not via `Decimal`: a `Decimal(38,18)` value can have 38 digits, `Decimal` 28.
        let too_large = || DecimalRangeError::TooLarge(s.to_owned());
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let frac = frac.trim_end_matches('0');
        let digits_ok = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits_ok(int) || !digits_ok(frac) {
            return Err(too_large());
        }
        if frac.len() > SCALE as usize {
            return Err(DecimalRangeError::TooPrecise(s.to_owned()));
        }
        let mut v: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(b - b'0')))
                .ok_or_else(too_large)?;
        }
        v = v
            .checked_mul(10_i128.pow(SCALE - frac.len() as u32))
            .filter(|v| *v < LIMIT)
            .ok_or_else(too_large)?;
        Ok(Dec18(if negative { -v } else { v }))
    }
}

impl Serialize for Dec18 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(Text::of(self.0).as_str())
        } else {
            serializer.serialize_i128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Dec18 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dec18, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            i128::deserialize(deserializer).map(Dec18)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn exact_values_scale_by_1e18() {
        assert_eq!(
            Dec18::from_decimal(dec("0.00000001")).unwrap(),
            Dec18(10_000_000_000)
        );
        assert_eq!(Dec18::from_decimal(dec("1")).unwrap(), Dec18(ONE));
        assert_eq!(
            Dec18::from_decimal(dec("-42219.90")).unwrap(),
            Dec18(-42_219_900_000_000_000_000_000)
        );
        // The largest value with 20 integer digits and 18 fractional digits.
        let max = "99999999999999999999.999999999999999999";
        let d = Dec18::from_str(max).unwrap();
        assert_eq!(d.0, LIMIT - 1);
        assert_eq!(d.to_string(), max);
        assert!(
            d.to_decimal().is_err(),
            "38 digits do not fit a rust Decimal"
        );
        for bad in ["", "-", ".", "1e5", "1.2.3", "abc", "100000000000000000000"] {
            assert!(bad.parse::<Dec18>().is_err(), "{bad:?} accepted");
        }
        assert_eq!("-0.5".parse::<Dec18>().unwrap(), Dec18(-ONE / 2));
        assert_eq!("7.".parse::<Dec18>().unwrap(), Dec18(7 * ONE));
        let big = dec("79228162514264337593543950335"); // Decimal::MAX, 29 integer digits
        assert_eq!(
            Dec18::from_decimal(big),
            Err(DecimalRangeError::TooLarge(big.to_string()))
        );
    }

    #[test]
    fn overflow_and_excess_precision_are_errors() {
        assert!(matches!(
            Dec18::from_decimal(dec("100000000000000000000")),
            Err(DecimalRangeError::TooLarge(_))
        ));
        assert!(matches!(
            Dec18::from_decimal(dec("0.0000000000000000001")),
            Err(DecimalRangeError::TooPrecise(_))
        ));
        // Trailing zeros beyond 18 digits are not precision: accepted.
        assert_eq!(
            Dec18::from_decimal(dec("0.100000000000000000000")).unwrap(),
            Dec18(ONE / 10)
        );
    }

    #[test]
    fn round_trips_through_decimal_and_text() {
        for s in [
            "0.00000001",
            "42219.9",
            "-3.5",
            "0",
            "12345678901234567890.123456789",
        ] {
            let d = Dec18::from_decimal(dec(s)).unwrap();
            assert_eq!(d.to_decimal().unwrap(), dec(s), "{s}");
            assert_eq!(d.to_string().parse::<Dec18>().unwrap(), d, "{s}");
        }
        assert_eq!(
            serde_json::to_string(&Dec18::from_str("0.00000001").unwrap()).unwrap(),
            "\"0.00000001\""
        );
    }

    /// The text as the formatting machinery writes it: the reference for the stack-buffer writer.
    fn reference_text(v: i128) -> String {
        let sign = if v < 0 { "-" } else { "" };
        let abs = v.unsigned_abs();
        let (int, frac) = (abs / ONE as u128, abs % ONE as u128);
        if frac == 0 {
            return format!("{sign}{int}");
        }
        let digits = format!("{frac:018}");
        format!("{sign}{int}.{}", digits.trim_end_matches('0'))
    }

    #[test]
    fn text_matches_the_reference_at_the_edges() {
        for v in [
            0,
            1,
            -1,
            ONE,
            -ONE,
            ONE / 10,
            LIMIT - 1,
            -(LIMIT - 1),
            i128::MAX,
            i128::MIN,
            i128::MIN + 1,
            10_000_000_000,
            -42_219_900_000_000_000_000_000,
        ] {
            assert_eq!(Dec18(v).to_string(), reference_text(v), "{v}");
        }
    }

    proptest::proptest! {
        #[test]
        fn text_matches_the_reference(v in proptest::prelude::any::<i128>(), small in -10_i128.pow(24)..10_i128.pow(24)) {
            proptest::prop_assert_eq!(Dec18(v).to_string(), reference_text(v));
            proptest::prop_assert_eq!(Dec18(small).to_string(), reference_text(small));
            proptest::prop_assert_eq!(Dec18(small).to_string().parse::<Dec18>().unwrap(), Dec18(small));
        }
    }
}
