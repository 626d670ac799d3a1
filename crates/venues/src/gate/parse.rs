//! Gate API v4 frames and REST replies → normalized events. Pure; borrows strings from the frame.
//!
//! | channel | `result` | `ts_ms` | sizes |
//! |---|---|---|---|
//! | `spot.trades` | one trade `{id, create_time_ms: "ms.frac", side, currency_pair, amount, price}` | `create_time_ms` (fraction dropped) | base |
//! | `futures.trades` | array `{id, create_time_ms: ms, contract, size, price}`; `size > 0` buyer taker, `< 0` seller | `create_time_ms` | contracts × `quanto_multiplier` |
//! | `spot.order_book_update` | `{t, s, U, u, b: [[p, s]], a}` | `t` (ms) | base |
//! | `futures.order_book_update` | `{t, s, U, u, b: [{p, s}], a}` | `t` (ms) | contracts × multiplier, stored in base |
//! | `futures.tickers` | array `{contract, funding_rate, funding_rate_indicative, mark_price, index_price, total_size}` | envelope `time_ms` (else `time` s × 1000) | `total_size` contracts |
//! | `futures.public_liquidates` | array `{contract, price, size, time_ms or time (ms)}`; `size < 0` a sell order (a long closed) | the order's time | contracts |
//!
//! Sizes and prices come as strings or numbers (`X-Gate-Size-Decimal` decides the size's type): both
//! are read from their text, never through f64. The ticker carries no settlement time: a funding row's
//! `funding_time_ms` is the push time, `next_funding_rate` the indicative rate. Sources: see [`super`].

use super::instruments::num_text;
use crate::book::{BookSnapshot, BookUpdate};
use crate::parse::{
    Control, ParseError, ParseErrorReason, ParseResult, Parsed, RawLevel, decimal, levels, listed,
    need, quantity, quantity_of, time_ms,
};
use marketprism_model::instruments::{Instrument, InstrumentTable};
use marketprism_model::{
    DataType, Decimal, Event, Exchange, FundingRate, Liquidation, OpenInterest, Payload, Side,
    Trade,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct RawMsg<'a> {
    #[serde(default)]
    time: Option<i64>,
    #[serde(default)]
    time_ms: Option<i64>,
    #[serde(default)]
    id: Option<i64>,
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow, default)]
    event: Option<&'a str>,
    #[serde(borrow, default)]
    error: Option<RawError<'a>>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawError<'a> {
    #[serde(default)]
    code: Option<i64>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawStatus<'a> {
    #[serde(borrow, default)]
    status: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawSpotTrade<'a> {
    id: u64,
    #[serde(borrow, default)]
    create_time_ms: Option<&'a RawValue>,
    #[serde(default)]
    create_time: Option<i64>,
    #[serde(borrow)]
    side: &'a str,
    #[serde(borrow)]
    currency_pair: &'a str,
    #[serde(borrow)]
    amount: &'a str,
    #[serde(borrow)]
    price: &'a str,
}

#[derive(Deserialize)]
struct RawFuturesTrade<'a> {
    id: u64,
    #[serde(default)]
    create_time_ms: Option<i64>,
    #[serde(default)]
    create_time: Option<i64>,
    #[serde(borrow)]
    contract: &'a str,
    #[serde(borrow)]
    size: &'a RawValue,
    #[serde(borrow)]
    price: &'a RawValue,
}

#[derive(Deserialize)]
struct RawObjLevel<'a> {
    /// Always a string (documented).
    #[serde(borrow)]
    p: &'a str,
    #[serde(borrow)]
    s: Size<'a>,
}

/// A size sent as an integer (no `X-Gate-Size-Decimal`) or as a string; read without an f64.
#[derive(Debug, Clone, Copy)]
enum Size<'a> {
    Int(i64),
    Text(&'a str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Size<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Size<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or a decimal string")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Size<'a>, E> {
                Ok(Size::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Size<'a>, E> {
                i64::try_from(v)
                    .map(Size::Int)
                    .map_err(|_| E::custom("size out of range"))
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'a str) -> Result<Size<'a>, E> {
                Ok(Size::Text(v))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl Size<'_> {
    fn decimal(self) -> ParseResult<Decimal> {
        match self {
            Size::Int(i) => Ok(Decimal::from(i)),
            Size::Text(t) => decimal(t),
        }
    }
}

/// An `order_book_update` result: spot levels are `[p, s]` arrays, futures levels `{p, s}` objects.
#[derive(Deserialize)]
#[serde(bound(deserialize = "L: Deserialize<'de>, 'de: 'a"))]
struct RawBook<'a, L> {
    t: i64,
    #[serde(borrow)]
    s: &'a str,
    #[serde(rename = "U")]
    first: i64,
    #[serde(rename = "u")]
    last: i64,
    #[serde(default = "Vec::new")]
    b: Vec<L>,
    #[serde(default = "Vec::new")]
    a: Vec<L>,
}

#[derive(Deserialize)]
struct RawTicker<'a> {
    #[serde(borrow)]
    contract: &'a str,
    #[serde(borrow, default)]
    funding_rate: Option<&'a RawValue>,
    #[serde(borrow, default)]
    funding_rate_indicative: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mark_price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    index_price: Option<&'a RawValue>,
    #[serde(borrow, default)]
    total_size: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawLiquidation<'a> {
    #[serde(borrow)]
    contract: &'a str,
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(borrow)]
    size: &'a RawValue,
    #[serde(default)]
    time_ms: Option<i64>,
    #[serde(default)]
    time: Option<i64>,
}

/// A decimal sent as a JSON string or number; `""`/`null` are "not given".
fn opt_decimal(raw: Option<&RawValue>) -> ParseResult<Option<Decimal>> {
    match raw.map(num_text) {
        None | Some("" | "null") => Ok(None),
        Some(t) => decimal(t).map(Some),
    }
}

/// `"1606292218213.4578"` (spot `create_time_ms`) or `1606292218213` → whole ms.
/// A book update of `inst` from either shape, its levels read by `read` (sizes normalized there).
fn book_update<L>(
    inst: &Instrument,
    b: &RawBook<'_, L>,
    recv_ts_ms: i64,
    read: impl Fn(&[L], &mut Vec<(Decimal, Decimal)>) -> ParseResult<()>,
) -> ParseResult<Parsed> {
    let on = |e: ParseError| e.on(DataType::Orderbooks, inst, recv_ts_ms);
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    read(&b.b, &mut bids).map_err(on)?;
    read(&b.a, &mut asks).map_err(on)?;
    let update = BookUpdate {
        first_id: b.first,
        last_id: b.last,
        prev_id: None,
        ts_ms: time_ms(b.t, recv_ts_ms, "t").map_err(on)?,
        bids,
        asks,
        checksum: None,
    };
    Ok(Parsed::BookUpdate(inst.symbol.clone(), update))
}

fn ms_text(raw: &RawValue, recv_ts_ms: i64, field: &str) -> ParseResult<i64> {
    let t = num_text(raw);
    let whole = t.split_once('.').map_or(t, |(w, _)| w);
    let v = whole.parse::<i64>().map_err(|_| {
        ParseError::new(
            ParseErrorReason::BadNumber,
            format!("{field}={}", t.chars().take(40).collect::<String>()),
        )
    })?;
    time_ms(v, recv_ts_ms, field)
}

fn taker(side: &str) -> ParseResult<Side> {
    match side {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(ParseError::new(
            ParseErrorReason::BadSide,
            other.chars().take(20).collect::<String>(),
        )),
    }
}

/// A signed contract count → its side (`> 0` buy, `< 0` sell) and absolute text.
fn signed(size: &str) -> ParseResult<(Side, &str)> {
    match size.strip_prefix('-') {
        Some(abs) => Ok((Side::Sell, abs)),
        None if size.bytes().all(|b| b == b'0' || b == b'.') => Err(ParseError::new(
            ParseErrorReason::BadSide,
            format!("size {size}: zero has no side"),
        )),
        None => Ok((Side::Buy, size.strip_prefix('+').unwrap_or(size))),
    }
}

/// Object levels `{p, s}` (futures) → `(price, base size)`.
fn obj_levels(
    inst: Option<&Instrument>,
    raw: &[RawObjLevel<'_>],
    out: &mut Vec<(Decimal, Decimal)>,
) -> ParseResult<()> {
    out.reserve(raw.len());
    for l in raw {
        let price = decimal(l.p)?;
        let raw = l.s.decimal()?;
        let size = match inst {
            Some(i) => quantity_of(i, raw, price)?.base,
            None => raw,
        };
        out.push((price, size));
    }
    Ok(())
}

/// Parse one WebSocket text frame; `table` is the product line's instrument list.
pub fn parse_frame(
    table: &InstrumentTable,
    exchange: Exchange,
    text: &str,
    recv_ts_ms: i64,
) -> ParseResult<Parsed> {
    let raw: RawMsg = serde_json::from_str(text)?;
    if raw.channel.ends_with(".pong") {
        return Ok(Parsed::Control(Control::Pong));
    }
    let event = raw.event.unwrap_or_default();
    if matches!(event, "subscribe" | "unsubscribe") {
        let id = raw.id.map(|i| i.to_string());
        if let Some(e) = raw.error {
            return Ok(Parsed::Control(Control::Error {
                id,
                code: e.code.unwrap_or_default().to_string(),
                msg: e.message.unwrap_or_default().into_owned(),
            }));
        }
        let status: Option<RawStatus> = raw
            .result
            .map(|r| serde_json::from_str(r.get()))
            .transpose()?;
        return Ok(Parsed::Control(match status.and_then(|s| s.status) {
            Some("success") => Control::Ack {
                id: id.unwrap_or_else(|| raw.channel.to_owned()),
            },
            other => Control::Error {
                id,
                code: String::new(),
                msg: format!("{} {event}: status {other:?}", raw.channel),
            },
        }));
    }
    if let Some(e) = raw.error {
        return Err(ParseError::new(
            ParseErrorReason::VenueError,
            format!(
                "{} {}: {}",
                raw.channel,
                e.code.unwrap_or_default(),
                e.message.unwrap_or_default()
            ),
        ));
    }
    let result = need(raw.result, "result")?.get();
    let ev = |inst: &Instrument, ts_ms, payload| Event {
        exchange,
        market_type: inst.market_type,
        symbol: inst.symbol.clone(),
        ts_ms,
        recv_ts_ms,
        payload,
    };
    match raw.channel {
        "spot.trades" => {
            let t: RawSpotTrade = serde_json::from_str(result)?;
            let inst = listed(table, t.currency_pair)?;
            let on = |e: ParseError| e.on(DataType::Trades, inst, recv_ts_ms);
            let ts_ms = match (t.create_time_ms, t.create_time) {
                (Some(ms), _) => ms_text(ms, recv_ts_ms, "create_time_ms"),
                (None, Some(s)) => time_ms(s.saturating_mul(1_000), recv_ts_ms, "create_time"),
                (None, None) => Err(ParseError::missing("create_time_ms")),
            }
            .map_err(on)?;
            let price = decimal(t.price).map_err(on)?;
            let q = quantity(inst, t.amount, price).map_err(on)?;
            let trade = Trade {
                trade_id: t.id.to_string(),
                price,
                quantity: q.base,
                raw_quantity: q.raw,
                quantity_unit: q.unit,
                side: taker(t.side).map_err(on)?,
            };
            Ok(Parsed::Event(ev(inst, ts_ms, Payload::Trade(trade))))
        }
        "futures.trades" => {
            let rows: Vec<RawFuturesTrade> = serde_json::from_str(result)?;
            let mut out = Vec::with_capacity(rows.len());
            for t in rows {
                let inst = listed(table, t.contract)?;
                let on = |e: ParseError| e.on(DataType::Trades, inst, recv_ts_ms);
                let ts_ms = match (t.create_time_ms, t.create_time) {
                    (Some(ms), _) => time_ms(ms, recv_ts_ms, "create_time_ms"),
                    (None, Some(s)) => time_ms(s.saturating_mul(1_000), recv_ts_ms, "create_time"),
                    (None, None) => Err(ParseError::missing("create_time_ms")),
                }
                .map_err(on)?;
                let price = decimal(num_text(t.price)).map_err(on)?;
                let (side, abs) = signed(num_text(t.size)).map_err(on)?;
                let q = quantity(inst, abs, price).map_err(on)?;
                let trade = Trade {
                    trade_id: t.id.to_string(),
                    price,
                    quantity: q.base,
                    raw_quantity: q.raw,
                    quantity_unit: q.unit,
                    side,
                };
                out.push(ev(inst, ts_ms, Payload::Trade(trade)));
            }
            Ok(Parsed::Events(out))
        }
        "spot.order_book_update" => {
            let b: RawBook<RawLevel> = serde_json::from_str(result)?;
            let inst = listed(table, b.s)?;
            book_update(inst, &b, recv_ts_ms, |raw, out| levels(raw, out))
        }
        "futures.order_book_update" => {
            let b: RawBook<RawObjLevel> = serde_json::from_str(result)?;
            let inst = listed(table, b.s)?;
            book_update(inst, &b, recv_ts_ms, |raw, out| {
                obj_levels(Some(inst), raw, out)
            })
        }
        "futures.tickers" => {
            let rows: Vec<RawTicker> = serde_json::from_str(result)?;
            let push_ms = match (raw.time_ms, raw.time) {
                (Some(ms), _) => time_ms(ms, recv_ts_ms, "time_ms")?,
                (None, Some(s)) => time_ms(s.saturating_mul(1_000), recv_ts_ms, "time")?,
                (None, None) => return Err(ParseError::missing("time_ms")),
            };
            // Funding and open interest are separate facts: a bad value costs only its own.
            let (mut out, mut rejected) = (Vec::with_capacity(rows.len() * 2), Vec::new());
            for t in rows {
                let inst = match listed(table, t.contract) {
                    Ok(inst) => inst,
                    Err(e) => {
                        rejected.push(e);
                        continue;
                    }
                };
                let on = |dt| move |e: ParseError| e.on(dt, inst, push_ms);
                if t.funding_rate.is_some() || t.mark_price.is_some() {
                    let fr = |e| on(DataType::FundingRates)(e);
                    let funding = (|| {
                        Ok(FundingRate {
                            funding_rate: opt_decimal(t.funding_rate).map_err(fr)?,
                            funding_time_ms: push_ms,
                            next_funding_time_ms: None,
                            next_funding_rate: opt_decimal(t.funding_rate_indicative)
                                .map_err(fr)?,
                            mark_price: opt_decimal(t.mark_price).map_err(fr)?,
                            index_price: opt_decimal(t.index_price).map_err(fr)?,
                        })
                    })();
                    match funding {
                        Ok(f) => out.push(ev(inst, push_ms, Payload::FundingRate(f))),
                        Err(e) => rejected.push(e),
                    }
                }
                if let Some(size) = t.total_size.map(num_text).filter(|s| !s.is_empty()) {
                    let oi = |e| on(DataType::OpenInterests)(e);
                    match quantity(inst, size, Decimal::ZERO).map_err(oi) {
                        Ok(q) => out.push(ev(
                            inst,
                            push_ms,
                            Payload::OpenInterest(OpenInterest {
                                open_interest: q.base,
                                raw_open_interest: q.raw,
                                open_interest_unit: q.unit,
                                open_interest_value: None,
                            }),
                        )),
                        Err(e) => rejected.push(e),
                    }
                }
            }
            Parsed::from_facts(out, rejected)
        }
        "futures.public_liquidates" => {
            let rows: Vec<RawLiquidation> = serde_json::from_str(result)?;
            let mut out = Vec::with_capacity(rows.len());
            for l in rows {
                let inst = listed(table, l.contract)?;
                let on = |e: ParseError| e.on(DataType::Liquidations, inst, recv_ts_ms);
                let t = need(l.time_ms.or(l.time), "time_ms").map_err(on)?;
                let ts_ms = time_ms(t, recv_ts_ms, "time_ms").map_err(on)?;
                let price = decimal(num_text(l.price)).map_err(on)?;
                let (side, abs) = signed(num_text(l.size)).map_err(on)?;
                let q = quantity(inst, abs, price).map_err(on)?;
                let liq = Liquidation {
                    side,
                    price,
                    quantity: q.base,
                    raw_quantity: q.raw,
                    quantity_unit: q.unit,
                };
                out.push(ev(inst, ts_ms, Payload::Liquidation(liq)));
            }
            Ok(Parsed::Events(out))
        }
        other => Err(ParseError::new(
            ParseErrorReason::UnknownMessage,
            format!("channel {:?}", other.chars().take(40).collect::<String>()),
        )),
    }
}

#[derive(Deserialize)]
struct RawRestBook<'a> {
    #[serde(default)]
    id: Option<i64>,
    #[serde(borrow, default)]
    current: Option<&'a RawValue>,
    #[serde(borrow)]
    asks: &'a RawValue,
    #[serde(borrow)]
    bids: &'a RawValue,
    #[serde(borrow, default)]
    label: Option<&'a str>,
}

/// `current`: spot sends ms (`1623898993123`), futures seconds with a fraction (`1623898993.123`).
fn snapshot_time(raw: &RawValue) -> Option<i64> {
    let t = num_text(raw);
    match t.split_once('.') {
        Some((s, frac)) => {
            let s: i64 = s.parse().ok()?;
            let frac: String = frac.chars().take(3).collect();
            let ms: i64 = format!("{frac:0<3}").parse().ok()?;
            Some(s * 1_000 + ms)
        }
        None => {
            let v: i64 = t.parse().ok()?;
            Some(if v < 100_000_000_000 { v * 1_000 } else { v })
        }
    }
}

/// REST `GET /api/v4/spot/order_book?..&with_id=true` (levels `[p, s]`) or
/// `/api/v4/futures/usdt/order_book?..&with_id=true` (levels `{p, s}`, sizes in contracts of `inst`,
/// stored in base units): `id` is the update id the snapshot reflects.
pub fn parse_rest_book(text: &str, inst: Option<&Instrument>) -> ParseResult<BookSnapshot> {
    let raw: RawRestBook = serde_json::from_str(text)?;
    if let Some(label) = raw.label {
        return Err(ParseError::new(ParseErrorReason::VenueError, label));
    }
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    if raw.bids.get().trim_start().starts_with("[[")
        || raw.asks.get().trim_start().starts_with("[[")
    {
        let b: Vec<RawLevel> = serde_json::from_str(raw.bids.get())?;
        let a: Vec<RawLevel> = serde_json::from_str(raw.asks.get())?;
        levels(&b, &mut bids)?;
        levels(&a, &mut asks)?;
    } else {
        let b: Vec<RawObjLevel> = serde_json::from_str(raw.bids.get())?;
        let a: Vec<RawObjLevel> = serde_json::from_str(raw.asks.get())?;
        obj_levels(inst, &b, &mut bids)?;
        obj_levels(inst, &a, &mut asks)?;
    }
    Ok(BookSnapshot {
        last_id: need(raw.id, "id (with_id=true)")?,
        ts_ms: raw.current.and_then(snapshot_time),
        bids,
        asks,
        checksum: None,
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
