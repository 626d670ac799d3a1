//! Binance spot and USD-M frames → normalized events. Pure; borrows strings from the frame.
//!
//! One pass over the frame: every stream event is read into one struct of optional fields (`a` and `b`
//! stay raw because their type depends on the event), then interpreted by its `e`. Symbols are looked
//! up in the venue's instrument list ([`InstrumentTable`]), never split by spelling.
//!
//! `ts_ms` is the time of the fact: trade time `T` for `trade`/`aggTrade`, the order's trade time `o.T`
//! for `forceOrder`, the event time `E` for `markPriceUpdate` (the time of that mark and rate), `time`
//! for REST open interest, `timestamp` for long/short ratios. Every time is checked by [`time_ms`].

use crate::book::{BookSnapshot, BookUpdate};
use crate::parse::{
    Control, ParseError, ParseErrorReason, ParseResult, Parsed, RawLevel, at_or_recv, decimal,
    int_str, levels, listed, need, quantity, time_ms,
};
use marketprism_model::instruments::InstrumentTable;
use marketprism_model::{
    DataType, Event, Exchange, FundingRate, Liquidation, LongShortRatio, OpenInterest, Payload,
    Quantity, Side, Trade,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: &'a RawValue,
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow, default)]
    e: Option<&'a str>,
    #[serde(rename = "E", default)]
    event_time: Option<i64>,
    #[serde(rename = "T", default)]
    time_t: Option<i64>,
    #[serde(borrow, default)]
    s: Option<&'a str>,
    #[serde(borrow, default)]
    p: Option<&'a str>,
    #[serde(borrow, default)]
    q: Option<&'a str>,
    /// aggTrade id (number) or depth asks (array).
    #[serde(borrow, default)]
    a: Option<&'a RawValue>,
    /// depth bids (array) or a trade's buyer order id (number).
    #[serde(borrow, default)]
    b: Option<&'a RawValue>,
    #[serde(default)]
    t: Option<i64>,
    #[serde(default)]
    m: Option<bool>,
    #[serde(rename = "U", default)]
    first_id: Option<i64>,
    #[serde(default)]
    u: Option<i64>,
    #[serde(default)]
    pu: Option<i64>,
    #[serde(borrow, default)]
    r: Option<&'a str>,
    #[serde(borrow, default)]
    i: Option<&'a str>,
    #[serde(borrow, default)]
    o: Option<&'a RawValue>,
    // control replies
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(borrow, default)]
    msg: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawForceOrder<'a> {
    #[serde(borrow)]
    s: &'a str,
    #[serde(rename = "S", borrow)]
    side: &'a str,
    #[serde(borrow)]
    p: &'a str,
    #[serde(borrow, default)]
    ap: Option<&'a str>,
    #[serde(borrow)]
    q: &'a str,
    #[serde(borrow, default)]
    z: Option<&'a str>,
    /// Order trade time (ms).
    #[serde(rename = "T")]
    time_t: i64,
}

/// Parse one WebSocket text frame (raw or combined-stream form); `table` is the venue's instrument list.
pub fn parse_frame(
    table: &InstrumentTable,
    exchange: Exchange,
    text: &str,
    recv_ts_ms: i64,
) -> ParseResult<Parsed> {
    let body = text.trim_start();
    if body.starts_with("{\"stream\"") {
        let env: Envelope = serde_json::from_str(body)?;
        return parse_frame(table, exchange, env.data.get(), recv_ts_ms);
    }
    if body.starts_with('[') {
        // `!markPrice@arr` and other array streams.
        let all: Vec<RawEvent> = serde_json::from_str(body)?;
        // One element per symbol: a bad element costs only its own symbol's fact.
        let (mut events, mut rejected) = (Vec::with_capacity(all.len()), Vec::new());
        for raw in all {
            match interpret(table, exchange, raw, recv_ts_ms) {
                Ok(Parsed::Event(e)) => events.push(e),
                Ok(_) => {
                    return Err(ParseError::new(
                        ParseErrorReason::UnknownMessage,
                        "array of non-events",
                    ));
                }
                Err(e) => rejected.push(e),
            }
        }
        return Parsed::from_facts(events, rejected);
    }
    // Fast path for the busiest frame: levels straight into borrowed lists, no second scan.
    if body.starts_with(r#"{"e":"depthUpdate""#) {
        return parse_depth_update(table, body, recv_ts_ms);
    }
    let raw: RawEvent = serde_json::from_str(body)?;
    interpret(table, exchange, raw, recv_ts_ms)
}

#[derive(Deserialize)]
struct RawDepthUpdate<'a> {
    #[serde(rename = "E")]
    event_time: i64,
    #[serde(borrow)]
    s: &'a str,
    #[serde(rename = "U")]
    first_id: i64,
    u: i64,
    #[serde(default)]
    pu: Option<i64>,
    #[serde(borrow)]
    b: Vec<RawLevel<'a>>,
    #[serde(borrow)]
    a: Vec<RawLevel<'a>>,
}

fn parse_depth_update(table: &InstrumentTable, body: &str, recv_ts_ms: i64) -> ParseResult<Parsed> {
    let raw: RawDepthUpdate = serde_json::from_str(body)?;
    let inst = listed(table, raw.s)?;
    let on = |e: ParseError| e.on(DataType::Orderbooks, inst, recv_ts_ms);
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    levels(&raw.b, &mut bids).map_err(on)?;
    levels(&raw.a, &mut asks).map_err(on)?;
    let update = BookUpdate {
        first_id: raw.first_id,
        last_id: raw.u,
        prev_id: raw.pu,
        ts_ms: time_ms(raw.event_time, recv_ts_ms, "E").map_err(on)?,
        bids,
        asks,
        checksum: None,
    };
    Ok(Parsed::BookUpdate(inst.symbol.clone(), update))
}

fn interpret(
    table: &InstrumentTable,
    exchange: Exchange,
    raw: RawEvent<'_>,
    recv_ts_ms: i64,
) -> ParseResult<Parsed> {
    let Some(kind) = raw.e else {
        return control(raw);
    };
    let event_time = need(raw.event_time, "E")?;
    match kind {
        "aggTrade" | "trade" => {
            let inst = listed(table, need(raw.s, "s")?)?;
            let on =
                |e: ParseError| e.on(DataType::Trades, inst, at_or_recv(raw.time_t, recv_ts_ms));
            let id = if kind == "aggTrade" {
                integer_text(need(raw.a, "a")?, "a")?.to_owned()
            } else {
                need(raw.t, "t")?.to_string()
            };
            let ts_ms = time_ms(need(raw.time_t, "T")?, recv_ts_ms, "T").map_err(on)?;
            let price = decimal(need(raw.p, "p")?).map_err(on)?;
            let q = quantity(inst, need(raw.q, "q")?, price).map_err(on)?;
            let trade = Trade {
                trade_id: id,
                price,
                quantity: q.base,
                raw_quantity: q.raw,
                quantity_unit: q.unit,
                // `m`: the buyer is the maker, so the taker sold.
                side: if need(raw.m, "m")? {
                    Side::Sell
                } else {
                    Side::Buy
                },
            };
            Ok(Parsed::Event(Event {
                exchange,
                market_type: inst.market_type,
                symbol: inst.symbol.clone(),
                ts_ms,
                recv_ts_ms,
                payload: Payload::Trade(trade),
            }))
        }
        "depthUpdate" => {
            let inst = listed(table, need(raw.s, "s")?)?;
            let symbol = inst.symbol.clone();
            let ts_ms = time_ms(event_time, recv_ts_ms, "E")
                .map_err(|e| e.on(DataType::Orderbooks, inst, recv_ts_ms))?;
            let (mut bids, mut asks) = (Vec::new(), Vec::new());
            levels(&level_list(need(raw.b, "b")?)?, &mut bids)?;
            levels(&level_list(need(raw.a, "a")?)?, &mut asks)?;
            let update = BookUpdate {
                first_id: need(raw.first_id, "U")?,
                last_id: need(raw.u, "u")?,
                prev_id: raw.pu,
                ts_ms,
                bids,
                asks,
                checksum: None,
            };
            Ok(Parsed::BookUpdate(symbol, update))
        }
        "markPriceUpdate" => {
            let inst = listed(table, need(raw.s, "s")?)?;
            let on = |e: ParseError| {
                e.on(
                    DataType::FundingRates,
                    inst,
                    at_or_recv(Some(event_time), recv_ts_ms),
                )
            };
            let ts_ms = time_ms(event_time, recv_ts_ms, "E").map_err(on)?;
            let funding = FundingRate {
                // USD-M sends `r` as "" for delivery contracts: no rate, not a lost row.
                funding_rate: raw
                    .r
                    .filter(|r| !r.is_empty())
                    .map(decimal)
                    .transpose()
                    .map_err(on)?,
                funding_time_ms: time_ms(need(raw.time_t, "T")?, recv_ts_ms, "T").map_err(on)?,
                next_funding_time_ms: None,
                next_funding_rate: None,
                mark_price: raw.p.map(decimal).transpose().map_err(on)?,
                index_price: raw.i.map(decimal).transpose().map_err(on)?,
            };
            Ok(Parsed::Event(Event {
                exchange,
                market_type: inst.market_type,
                symbol: inst.symbol.clone(),
                ts_ms,
                recv_ts_ms,
                payload: Payload::FundingRate(funding),
            }))
        }
        "forceOrder" => {
            let order: RawForceOrder = serde_json::from_str(need(raw.o, "o")?.get())?;
            let inst = listed(table, order.s)?;
            let on = |e: ParseError| {
                e.on(
                    DataType::Liquidations,
                    inst,
                    at_or_recv(Some(order.time_t), recv_ts_ms),
                )
            };
            let ts_ms = time_ms(order.time_t, recv_ts_ms, "o.T").map_err(on)?;
            // Average fill price and filled quantity when there are fills, else the order's.
            let price = decimal(nonzero(order.ap).unwrap_or(order.p)).map_err(on)?;
            let q: Quantity =
                quantity(inst, nonzero(order.z).unwrap_or(order.q), price).map_err(on)?;
            let liq = Liquidation {
                side: side(order.side)?,
                price,
                quantity: q.base,
                raw_quantity: q.raw,
                quantity_unit: q.unit,
            };
            Ok(Parsed::Event(Event {
                exchange,
                market_type: inst.market_type,
                symbol: inst.symbol.clone(),
                ts_ms,
                recv_ts_ms,
                payload: Payload::Liquidation(liq),
            }))
        }
        "serverShutdown" => Ok(Parsed::Control(Control::ServerShutdown {
            ts_ms: event_time,
        })),
        other => Err(ParseError::new(
            ParseErrorReason::UnknownMessage,
            format!(
                "event type {:?}",
                other.chars().take(40).collect::<String>()
            ),
        )),
    }
}

/// `{"result":null,"id":1}` → ack; `{"code":2,"msg":"...","id":1}` → error.
fn control(raw: RawEvent<'_>) -> ParseResult<Parsed> {
    let id = raw.id.map(|v| v.get().trim_matches('"').to_owned());
    match (raw.code, id) {
        (Some(code), id) => Ok(Parsed::Control(Control::Error {
            id,
            code: code.to_string(),
            msg: raw.msg.unwrap_or_default().into_owned(),
        })),
        (None, Some(id)) => Ok(Parsed::Control(Control::Ack { id })),
        (None, None) => Err(ParseError::new(
            ParseErrorReason::UnknownMessage,
            "no event type, id or code",
        )),
    }
}

/// The value when it is a non-zero decimal (Binance sends `"0"` for "no fills yet").
fn nonzero(v: Option<&str>) -> Option<&str> {
    v.filter(|s| decimal(s).is_ok_and(|d| !d.is_zero()))
}

fn side(s: &str) -> ParseResult<Side> {
    match s {
        "BUY" | "buy" => Ok(Side::Buy),
        "SELL" | "sell" => Ok(Side::Sell),
        other => Err(ParseError::new(
            ParseErrorReason::BadSide,
            other.chars().take(20).collect::<String>(),
        )),
    }
}

fn integer_text<'a>(raw: &'a RawValue, field: &str) -> ParseResult<&'a str> {
    let t = raw.get();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t)
    } else {
        Err(ParseError::new(
            ParseErrorReason::BadNumber,
            format!("{field} is not an integer"),
        ))
    }
}

fn level_list<'a>(raw: &'a RawValue) -> ParseResult<Vec<RawLevel<'a>>> {
    Ok(serde_json::from_str(raw.get())?)
}

#[derive(Deserialize)]
struct RawDepthSnapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: i64,
    #[serde(rename = "E", default)]
    event_time: Option<i64>,
    #[serde(borrow)]
    bids: Vec<RawLevel<'a>>,
    #[serde(borrow)]
    asks: Vec<RawLevel<'a>>,
}

/// REST `GET /api/v3/depth` or `/fapi/v1/depth`.
pub fn parse_depth_snapshot(text: &str) -> ParseResult<BookSnapshot> {
    let raw: RawDepthSnapshot = serde_json::from_str(text)?;
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    levels(&raw.bids, &mut bids)?;
    levels(&raw.asks, &mut asks)?;
    Ok(BookSnapshot {
        last_id: raw.last_update_id,
        ts_ms: raw.event_time,
        bids,
        asks,
        checksum: None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOpenInterest<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    #[serde(borrow)]
    open_interest: &'a str,
    time: i64,
}

/// REST `GET /fapi/v1/openInterest` (`openInterest` in the base asset).
pub fn parse_open_interest(
    table: &InstrumentTable,
    text: &str,
    recv_ts_ms: i64,
) -> ParseResult<Event> {
    let raw: RawOpenInterest = serde_json::from_str(text)?;
    let inst = listed(table, raw.symbol)?;
    let on = |e: ParseError| {
        e.on(
            DataType::OpenInterests,
            inst,
            at_or_recv(Some(raw.time), recv_ts_ms),
        )
    };
    let q = quantity(inst, raw.open_interest, rust_decimal::Decimal::ONE).map_err(on)?;
    Ok(Event {
        exchange: Exchange::BinanceDerivatives,
        market_type: inst.market_type,
        symbol: inst.symbol.clone(),
        ts_ms: time_ms(raw.time, recv_ts_ms, "time").map_err(on)?,
        recv_ts_ms,
        payload: Payload::OpenInterest(OpenInterest {
            open_interest: q.base,
            raw_open_interest: q.raw,
            open_interest_unit: q.unit,
            open_interest_value: None,
        }),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRatio<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    #[serde(borrow)]
    long_short_ratio: &'a str,
    /// USD-M names it `longAccount`, COIN-M `longPosition`: accept both.
    #[serde(borrow, default, alias = "longPosition")]
    long_account: Option<&'a str>,
    #[serde(borrow, default, alias = "shortPosition")]
    short_account: Option<&'a str>,
    #[serde(borrow)]
    timestamp: TextOrInt<'a>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrInt<'a> {
    Int(i64),
    Text(&'a str),
}

/// Which long/short population a ratio describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatioKind {
    /// `topLongShortPositionRatio` → `lsr_top_positions`.
    TopPositions,
    /// `globalLongShortAccountRatio` → `lsr_all_accounts`.
    AllAccounts,
}

/// REST `/futures/data/topLongShortPositionRatio` or `/futures/data/globalLongShortAccountRatio`.
pub fn parse_long_short(
    table: &InstrumentTable,
    text: &str,
    kind: RatioKind,
    period: &str,
    recv_ts_ms: i64,
) -> ParseResult<Vec<Event>> {
    let rows: Vec<RawRatio> = serde_json::from_str(text)?;
    rows.into_iter()
        .map(|row| {
            let ratio = LongShortRatio {
                period: period.to_owned(),
                long_short_ratio: decimal(row.long_short_ratio)?,
                long_ratio: row.long_account.map(decimal).transpose()?,
                short_ratio: row.short_account.map(decimal).transpose()?,
            };
            let inst = listed(table, row.symbol)?;
            let ts_ms = match row.timestamp {
                TextOrInt::Int(i) => i,
                TextOrInt::Text(t) => int_str(t, "timestamp")?,
            };
            let data_type = match kind {
                RatioKind::TopPositions => DataType::LsrTopPositions,
                RatioKind::AllAccounts => DataType::LsrAllAccounts,
            };
            let ts_ms = time_ms(ts_ms, recv_ts_ms, "timestamp")
                .map_err(|e| e.on(data_type, inst, recv_ts_ms))?;
            Ok(Event {
                exchange: Exchange::BinanceDerivatives,
                market_type: inst.market_type,
                symbol: inst.symbol.clone(),
                ts_ms,
                recv_ts_ms,
                payload: match kind {
                    RatioKind::TopPositions => Payload::LsrTopPosition(ratio),
                    RatioKind::AllAccounts => Payload::LsrAllAccount(ratio),
                },
            })
        })
        .collect()
}
