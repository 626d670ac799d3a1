//! Pieces every venue parser shares: the typed parse error, what a frame parses into, and
//! borrowed decimal/level helpers (prices are parsed from the venue's text, never through f64).

use crate::book::{BookSnapshot, BookUpdate};
use marketprism_model::decimal::Dec18;
use marketprism_model::instruments::{Instrument, InstrumentTable};
use marketprism_model::{DataType, Decimal, Event, MarketType, Quantity, Symbol};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

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
    /// A value the schema cannot hold exactly (more than 18 fractional or 20 integer digits): never rounded.
    OutOfRange,
    /// A time that is not plausible UTC milliseconds (another unit, or far from the receive time).
    BadTime,
    /// A binary frame that is not the venue's protobuf message (or a binary frame from a text venue).
    InvalidBinary,
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
            ParseErrorReason::OutOfRange => "out_of_range",
            ParseErrorReason::BadTime => "bad_time",
            ParseErrorReason::InvalidBinary => "invalid_binary",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", reason.as_str())]
pub struct ParseError {
    pub reason: ParseErrorReason,
    pub detail: String,
    /// The stream the rejected value belonged to, when the frame named it: its `rejected` gap goes there.
    pub stream: Option<RejectedStream>,
}

/// The stream of a rejected value, and the venue time of the rejected fact (receive time if unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedStream {
    pub data_type: DataType,
    pub symbol: Symbol,
    pub market_type: MarketType,
    pub at_ms: i64,
}

impl ParseError {
    pub fn new(reason: ParseErrorReason, detail: impl Into<String>) -> ParseError {
        ParseError {
            reason,
            detail: detail.into(),
            stream: None,
        }
    }

    /// Attribute the error to `data_type` of `instrument` (first attribution wins).
    pub fn on(mut self, data_type: DataType, instrument: &Instrument, at_ms: i64) -> ParseError {
        self.stream.get_or_insert(RejectedStream {
            data_type,
            symbol: instrument.symbol.clone(),
            market_type: instrument.market_type,
            at_ms,
        });
        self
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

pub(crate) type ParseResult<T> = Result<T, ParseError>;

/// The listed instrument a frame names (exact venue spelling); one hash lookup. A symbol the venue's
/// list does not have is `BadSymbol`: nothing is derived from its spelling.
pub fn listed<'t>(
    table: &'t InstrumentTable,
    venue_symbol: &str,
) -> ParseResult<&'t Arc<Instrument>> {
    table.by_venue(venue_symbol).ok_or_else(|| {
        ParseError::new(
            ParseErrorReason::BadSymbol,
            format!(
                "{} is not in the venue's instrument list",
                truncate(venue_symbol, 40)
            ),
        )
    })
}

/// The venue's size text → base quantity, raw size and unit (see [`Instrument::quantity`]).
pub fn quantity(instrument: &Instrument, raw: &str, price: Decimal) -> ParseResult<Quantity> {
    quantity_of(instrument, decimal(raw)?, price)
}

/// [`quantity`] of a size already read as a decimal (a venue sending integer sizes).
pub fn quantity_of(instrument: &Instrument, raw: Decimal, price: Decimal) -> ParseResult<Quantity> {
    let q = instrument
        .quantity(raw, price)
        .map_err(|e| ParseError::new(ParseErrorReason::OutOfRange, e.0))?;
    fits(q.base)?;
    Ok(q)
}

/// Earliest plausible venue time: 2010-01-01 UTC (every venue here started later).
const EARLIEST_MS: i64 = 1_262_304_000_000;
/// Latest plausible venue time after the receive time: one day (funding settlement times lie ahead,
/// by at most 8 h on every venue here).
const AHEAD_MS: i64 = 86_400_000;

/// A venue time field as UTC milliseconds, checked for plausibility against the receive time:
/// seconds, microseconds and nanoseconds are all outside `[2010, recv + 1 day]`, so a unit change is
/// rejected (`BadTime`), never stored 1000× off. `recv_ts_ms <= 0` (offline parsing) checks the range
/// up to 2100.
pub(crate) fn time_ms(raw: i64, recv_ts_ms: i64, field: &str) -> ParseResult<i64> {
    let latest = if recv_ts_ms > 0 {
        recv_ts_ms.saturating_add(AHEAD_MS)
    } else {
        4_102_444_800_000
    };
    if (EARLIEST_MS..=latest).contains(&raw) {
        return Ok(raw);
    }
    let unit = match raw.checked_abs().map(|v| v.to_string().len()) {
        Some(10) => "seconds?",
        Some(16) => "microseconds?",
        Some(19) => "nanoseconds?",
        _ => "out of range",
    };
    Err(ParseError::new(
        ParseErrorReason::BadTime,
        format!("{field}={raw} is not plausible UTC ms ({unit})"),
    ))
}

/// `t` when it is a plausible venue time, else `recv_ts_ms`: where a rejected fact's gap is placed
/// (a gap at an implausible time would itself land outside every partition).
pub(crate) fn at_or_recv(t: Option<i64>, recv_ts_ms: i64) -> i64 {
    t.filter(|t| time_ms(*t, recv_ts_ms, "").is_ok())
        .unwrap_or(recv_ts_ms)
}

/// [`time_ms`] for a time sent as a JSON string (OKX).
pub(crate) fn time_str(text: &str, recv_ts_ms: i64, field: &str) -> ParseResult<i64> {
    time_ms(int_str(text, field)?, recv_ts_ms, field)
}

/// `Ok` when `d` fits `Decimal(38,18)` exactly.
fn fits(d: Decimal) -> ParseResult<Decimal> {
    Dec18::from_decimal(d)
        .map(|_| d)
        .map_err(|e| ParseError::new(ParseErrorReason::OutOfRange, e.to_string()))
}

/// Control traffic a connector acts on (acks, keep-alive, shutdown notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// A subscribe (or other request) was accepted; `id` as the venue echoes it.
    Ack { id: String },
    /// Deribit `public/subscribe` answered with the channels it did subscribe: a channel it cannot
    /// serve is left out of `result` (`"result": []` for an unknown instrument, go-deribit#16).
    Subscribed { id: String, channels: Vec<String> },
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
    /// A frame of several facts some of which were rejected (Gate `futures.tickers` carries funding
    /// and open interest, `!markPrice@arr` many symbols): the good facts land, and each rejection is
    /// counted and becomes a `rejected` gap on its own stream, so one bad value costs only its fact.
    Partial(Vec<Event>, Vec<ParseError>),
    /// An incremental book update for the local book of `symbol`.
    BookUpdate(Symbol, BookUpdate),
    /// A full book carried in the stream (OKX legacy first push, Deribit `snapshot`).
    BookSnapshot(Symbol, BookSnapshot),
    Control(Control),
}

impl Parsed {
    /// The facts of a multi-fact frame parsed one by one: `Events` when none was rejected, the lone
    /// error when nothing was accepted and one fact rejected (the frame as a whole is bad), else `Partial`.
    pub fn from_facts(events: Vec<Event>, mut errors: Vec<ParseError>) -> ParseResult<Parsed> {
        match (events.is_empty(), errors.len()) {
            (_, 0) => Ok(Parsed::Events(events)),
            (true, 1) => Err(errors.remove(0)),
            _ => Ok(Parsed::Partial(events, errors)),
        }
    }
}

/// A decimal from the venue's text, keeping its scale (`"1.500"` stays `1.500`). Accepts `1e-5` style
/// too (some venues print small numbers so).
///
/// Every value must be held exactly: more than 18 significant fractional digits, more than 20
/// integer digits (the schema's `Decimal(38,18)`) or more than 28 significant digits in all (what
/// `Decimal` holds) is `OutOfRange`, never rounded. The general parser would round past 28 digits,
/// turning `0.000…0001` (30 places) into 0 and `12345678901234567890.000000000000000001` into
/// `…890`.
pub fn decimal(text: &str) -> ParseResult<Decimal> {
    if let Some(d) = plain_decimal(text) {
        // At most 18 digits in all: always fits.
        return Ok(d);
    }
    if let Some((_, frac)) = text.split_once('.')
        && frac.bytes().all(|b| b.is_ascii_digit())
        && frac.trim_end_matches('0').len() > 18
    {
        return Err(ParseError::new(
            ParseErrorReason::OutOfRange,
            format!("{} has more than 18 fractional digits", truncate(text, 60)),
        ));
    }
    if let Some(n) = significant_digits(text)
        && n > MAX_SIGNIFICANT_DIGITS
    {
        return Err(ParseError::new(
            ParseErrorReason::OutOfRange,
            format!(
                "{} has {n} significant digits (at most {MAX_SIGNIFICANT_DIGITS} are held exactly)",
                truncate(text, 60)
            ),
        ));
    }
    let d = Decimal::from_str(text)
        .or_else(|_| Decimal::from_scientific(text))
        .map_err(|_| ParseError::new(ParseErrorReason::BadDecimal, truncate(text, 40)))?;
    fits(d)
}

/// The most significant digits a `Decimal` holds for every value (its 96-bit mantissa has 28, and
/// some 29-digit values).
const MAX_SIGNIFICANT_DIGITS: usize = 28;

/// Significant digits of a plain `[-+]digits[.digits]` text: leading zeros and trailing fractional
/// zeros do not count (`0.0010` has 1, `100.5` has 4). `None` for any other form (`1e-5`).
fn significant_digits(text: &str) -> Option<usize> {
    let body = text
        .strip_prefix('-')
        .or_else(|| text.strip_prefix('+'))
        .unwrap_or(text);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let frac = frac.trim_end_matches('0');
    let digits = int.bytes().chain(frac.bytes());
    if !digits.clone().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.skip_while(|b| *b == b'0').count())
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
pub(crate) fn int_str(text: &str, field: &str) -> ParseResult<i64> {
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
    fn values_the_schema_cannot_hold_are_rejected_not_rounded() {
        let tiny = "0.000000000000000000000000000001";
        assert_eq!(
            decimal(tiny).unwrap_err().reason,
            ParseErrorReason::OutOfRange
        );
        let nineteen = "42219.1234567890123456789";
        assert_eq!(
            decimal(nineteen).unwrap_err().reason,
            ParseErrorReason::OutOfRange
        );
        assert_eq!(
            decimal("123456789012345678901.5").unwrap_err().reason,
            ParseErrorReason::OutOfRange
        );
        assert_eq!(
            decimal("1e-19").unwrap_err().reason,
            ParseErrorReason::OutOfRange
        );
        // Trailing zeros are the same value: kept.
        assert_eq!(
            decimal("1.500000000000000000000").unwrap(),
            Decimal::from_str("1.5").unwrap()
        );
        assert_eq!(
            decimal("0.000000000000000001").unwrap().to_string(),
            "0.000000000000000001"
        );
    }

    #[test]
    fn times_must_be_plausible_milliseconds() {
        let recv = 1_700_000_000_500;
        assert_eq!(
            time_ms(1_700_000_000_123, recv, "T").unwrap(),
            1_700_000_000_123
        );
        for (raw, hint) in [
            (1_700_000_000_123_456, "microseconds"),
            (1_700_000_000, "seconds"),
            (1_700_000_000_123_456_789, "nanoseconds"),
            (recv + 2 * 86_400_000, "out of range"),
        ] {
            let e = time_ms(raw, recv, "T").unwrap_err();
            assert_eq!(e.reason, ParseErrorReason::BadTime);
            assert!(e.detail.contains(hint), "{e}");
        }
        assert_eq!(
            time_str("1700000000123", 0, "ts").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(
            time_str("x", 0, "ts").unwrap_err().reason,
            ParseErrorReason::BadNumber
        );
    }

    #[test]
    fn more_significant_digits_than_a_decimal_holds_are_refused_not_rounded() {
        for text in [
            "12345678901234567890.000000000000000001",
            "99999999999999999999.999999999999999999",
            "-1000000000000.00000000000000001",
        ] {
            let e = decimal(text).unwrap_err();
            assert_eq!(e.reason, ParseErrorReason::OutOfRange, "{text}");
            assert!(e.detail.contains("significant digits"), "{e}");
        }
        // 28 significant digits, and zeros that are not significant, are exact.
        for text in [
            "12345678901234567890.12345678",
            "0.000000000000000001",
            "00012.3400000000000000000000000",
            "-0.100000000000000000000000000000",
        ] {
            let d = decimal(text).unwrap();
            assert_eq!(
                d.normalize(),
                Decimal::from_str(text).unwrap().normalize(),
                "{text}"
            );
        }
        assert_eq!(significant_digits("0.0010"), Some(1));
        assert_eq!(significant_digits("100.5"), Some(4));
        assert_eq!(significant_digits("1e-5"), None);
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
            decimal("12345678901234567890").unwrap().to_string(),
            "12345678901234567890"
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
