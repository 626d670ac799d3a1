//! Pieces every venue parser shares: the typed parse error, what a frame parses into, and
//! borrowed decimal/level helpers (prices are parsed from the venue's text, never through f64).

use crate::book::{BookSnapshot, BookUpdate};
use crate::model::{Decimal, Event, Symbol};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::fmt;
use std::str::FromStr;

/// Why a frame was rejected; the label of the `marketprism_exchange_bad_frames_total` counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseErrorReason {
    /// Not JSON, or JSON of the wrong shape for its declared type.
    InvalidJson,
    /// Valid JSON, but no message type this parser knows.
    UnknownMessage,
    /// A required field is absent.
    MissingField,
    /// A price, size or rate that is not a decimal number.
    BadDecimal,
    /// A venue instrument name that does not map to `BASE-QUOTE`.
    BadSymbol,
    /// A side other than buy/sell.
    BadSide,
    /// A number out of range (negative id, timestamp that does not fit).
    BadNumber,
    /// A well-formed reply in which the venue reports an error (`code != "0"`).
    VenueError,
}

impl ParseErrorReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ParseErrorReason::InvalidJson => "invalid_json",
            ParseErrorReason::UnknownMessage => "unknown_message",
            ParseErrorReason::MissingField => "missing_field",
            ParseErrorReason::BadDecimal => "bad_decimal",
            ParseErrorReason::BadSymbol => "bad_symbol",
            ParseErrorReason::BadSide => "bad_side",
            ParseErrorReason::BadNumber => "bad_number",
            ParseErrorReason::VenueError => "venue_error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct ParseError {
    pub reason: ParseErrorReason,
    pub detail: String,
}

impl ParseError {
    pub fn new(reason: ParseErrorReason, detail: impl Into<String>) -> ParseError {
        ParseError {
            reason,
            detail: detail.into(),
        }
    }
    pub fn missing(field: &str) -> ParseError {
        ParseError::new(ParseErrorReason::MissingField, field)
    }
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> ParseError {
        ParseError::new(ParseErrorReason::InvalidJson, e.to_string())
    }
}

pub type ParseResult<T> = Result<T, ParseError>;

/// Control traffic a connector acts on (acks, keep-alive, shutdown notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A subscribe (or other request) was accepted; `id` as the venue echoes it.
    Ack { id: String },
    /// A request was refused.
    Error {
        id: Option<String>,
        code: String,
        msg: String,
    },
    /// OKX text `pong`.
    Pong,
    /// Deribit `heartbeat`: nothing to do.
    Heartbeat,
    /// Deribit `test_request`: answer with `public/test` now or be disconnected.
    TestRequest,
    /// Binance spot `serverShutdown`: reconnect at once.
    ServerShutdown { ts_ms: i64 },
}

/// What one frame parses into.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Event(Event),
    /// Frames that carry several facts (`!markPrice@arr`, OKX `data` arrays).
    Events(Vec<Event>),
    /// An incremental book update for the local book of `symbol`.
    BookUpdate(Symbol, BookUpdate),
    /// A full book carried in the stream (OKX legacy first push, Deribit `snapshot`).
    BookSnapshot(Symbol, BookSnapshot),
    Control(Control),
}

/// A decimal from the venue's text, keeping its scale (`"1.500"` stays `1.500`). Accepts `1e-5` style
/// too (some venues print small numbers so).
pub fn decimal(text: &str) -> ParseResult<Decimal> {
    if let Some(d) = plain_decimal(text) {
        return Ok(d);
    }
    Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|_| ParseError::new(ParseErrorReason::BadDecimal, truncate(text, 40)))
}

/// Fast path for the common `-?digits[.digits]` with at most 18 digits (fits an i64 mantissa):
/// several times faster than the general parser, which handles everything else.
fn plain_decimal(text: &str) -> Option<Decimal> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut mantissa: i64 = 0;
    let mut scale: Option<u32> = None;
    let mut count = 0;
    for (i, &b) in digits.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + i64::from(b - b'0');
                count += 1;
                if let Some(s) = scale.as_mut() {
                    *s += 1;
                }
            }
            // A point needs digits on both sides, as in "0.5" (not ".5" or "5.").
            b'.' if scale.is_none() && i > 0 && i + 1 < digits.len() => scale = Some(0),
            _ => return None,
        }
    }
    if count > 18 {
        return None;
    }
    let mut d = Decimal::new(mantissa, scale.unwrap_or(0));
    // "-0" is zero: rust_decimal's own parser drops the sign, and so must we.
    d.set_sign_negative(negative && !d.is_zero());
    Some(d)
}

/// An integer carried as a JSON string (OKX `ts`, Binance LSR `timestamp`).
pub fn int_str(text: &str, field: &str) -> ParseResult<i64> {
    text.parse::<i64>().map_err(|_| {
        ParseError::new(
            ParseErrorReason::BadNumber,
            format!("{field}={}", truncate(text, 40)),
        )
    })
}

/// `Some(x)` or a `MissingField` error naming the field.
pub fn need<T>(value: Option<T>, field: &str) -> ParseResult<T> {
    value.ok_or_else(|| ParseError::missing(field))
}

/// A prefix of `text` at most `max` bytes long, cut on a char boundary (for log samples).
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A price level as sent: `["price","size", ...]`; extra elements (OKX's deprecated and order-count
/// fields) are skipped. Borrows the strings from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLevel<'a>(pub &'a str, pub &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for RawLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [price, size, ...] array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let price: &'de str = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let size: &'de str = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawLevel(price, size))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// Parse borrowed levels into `(price, size)` decimals, appending to `out`.
pub fn levels(raw: &[RawLevel<'_>], out: &mut Vec<(Decimal, Decimal)>) -> ParseResult<()> {
    out.reserve(raw.len());
    for RawLevel(p, q) in raw {
        out.push((decimal(p)?, decimal(q)?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_text_and_reject_garbage() {
        assert_eq!(decimal("0.00006547").unwrap().to_string(), "0.00006547");
        assert_eq!(decimal("30244").unwrap().to_string(), "30244");
        assert_eq!(decimal("1e-5").unwrap(), Decimal::new(1, 5));
        for bad in ["", "abc", "1.2.3", "NaN"] {
            assert_eq!(
                decimal(bad).unwrap_err().reason,
                ParseErrorReason::BadDecimal
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn fast_path_equals_the_general_parser(int in "-?[0-9]{1,12}", frac in proptest::option::of("[0-9]{1,10}")) {
            let text = match frac { Some(f) => format!("{int}.{f}"), None => int };
            let fast = decimal(&text).unwrap();
            let general = Decimal::from_str(&text).unwrap();
            proptest::prop_assert_eq!(fast, general);
            proptest::prop_assert_eq!(fast.to_string(), general.to_string(), "same scale");
        }
    }

    #[test]
    fn fast_path_declines_what_it_cannot_parse() {
        for t in [
            ".5",
            "5.",
            "1.2.3",
            "+1",
            "1e5",
            "",
            "-",
            "1234567890123456789012",
        ] {
            assert_eq!(plain_decimal(t), None, "{t}");
        }
        assert_eq!(
            decimal("1234567890123456789012").unwrap().to_string(),
            "1234567890123456789012"
        );
        assert_eq!(
            decimal("-0.00").unwrap(),
            Decimal::from_str("-0.00").unwrap()
        );
        assert_eq!(decimal("-12.50").unwrap().to_string(), "-12.50");
    }

    #[test]
    fn raw_levels_take_two_strings_and_skip_the_rest() {
        let v: Vec<RawLevel> = serde_json::from_str(r#"[["1.5","2","0","3"],["2","0"]]"#).unwrap();
        assert_eq!(v, vec![RawLevel("1.5", "2"), RawLevel("2", "0")]);
        assert!(serde_json::from_str::<Vec<RawLevel>>(r#"[["1.5"]]"#).is_err());
        assert!(serde_json::from_str::<Vec<RawLevel>>(r#"[[1.5,2]]"#).is_err());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
