//! Binance spot and USD-M frames → normalized events. Pure; borrows strings from the frame.
//!
//! One pass over the frame: every stream event is read into one struct of optional fields (`a` and `b`
//! stay raw because their type depends on the event), then interpreted by its `e`.

use super::symbols::from_venue;
use crate::book::{BookSnapshot, BookUpdate};
use crate::exchanges::parse::{
    Control, ParseError, ParseErrorReason, ParseResult, Parsed, RawLevel, decimal, int_str, levels,
    need,
};
use crate::model::{
    Event, Exchange, FundingRate, Liquidation, LongShortRatio, MarketType, OpenInterest, Payload,
    Side, Trade,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The market type of a Binance product line.
pub fn market_type(exchange: Exchange) -> MarketType {
    match exchange {
        Exchange::BinanceSpot => MarketType::Spot,
        _ => MarketType::Perpetual,
    }
}

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
}

/// Parse one WebSocket text frame (raw or combined-stream form).
pub fn parse_frame(exchange: Exchange, text: &str, recv_ts_ms: i64) -> ParseResult<Parsed> {
    let body = text.trim_start();
    if body.starts_with("{\"stream\"") {
        let env: Envelope = serde_json::from_str(body)?;
        return parse_frame(exchange, env.data.get(), recv_ts_ms);
    }
    if body.starts_with('[') {
        // `!markPrice@arr` and other array streams.
        let all: Vec<RawEvent> = serde_json::from_str(body)?;
        let mut events = Vec::with_capacity(all.len());
        for raw in all {
            match interpret(exchange, raw, recv_ts_ms)? {
                Parsed::Event(e) => events.push(e),
                _ => {
                    return Err(ParseError::new(
                        ParseErrorReason::UnknownMessage,
                        "array of non-events",
                    ));
                }
            }
        }
        return Ok(Parsed::Events(events));
    }
    // Fast path for the busiest frame: levels straight into borrowed lists, no second scan.
    if body.starts_with(r#"{"e":"depthUpdate""#) {
        return parse_depth_update(body);
    }
    let raw: RawEvent = serde_json::from_str(body)?;
    interpret(exchange, raw, recv_ts_ms)
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

fn parse_depth_update(body: &str) -> ParseResult<Parsed> {
    let raw: RawDepthUpdate = serde_json::from_str(body)?;
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    levels(&raw.b, &mut bids)?;
    levels(&raw.a, &mut asks)?;
    let update = BookUpdate {
        first_id: raw.first_id,
        last_id: raw.u,
        prev_id: raw.pu,
        ts_ms: raw.event_time,
        bids,
        asks,
        checksum: None,
    };
    Ok(Parsed::BookUpdate(from_venue(raw.s)?, update))
}

fn interpret(exchange: Exchange, raw: RawEvent<'_>, recv_ts_ms: i64) -> ParseResult<Parsed> {
    let Some(kind) = raw.e else {
        return control(raw);
    };
    let event = |symbol, ts_ms, payload| Event {
        exchange,
        market_type: market_type(exchange),
        symbol,
        ts_ms,
        recv_ts_ms,
        payload,
    };
    let ts_ms = need(raw.event_time, "E")?;
    match kind {
        "aggTrade" | "trade" => {
            let id = if kind == "aggTrade" {
                integer_text(need(raw.a, "a")?, "a")?.to_owned()
            } else {
                need(raw.t, "t")?.to_string()
            };
            let trade = Trade {
                trade_id: id,
                price: decimal(need(raw.p, "p")?)?,
                quantity: decimal(need(raw.q, "q")?)?,
                // `m`: the buyer is the maker, so the taker sold.
                side: if need(raw.m, "m")? {
                    Side::Sell
                } else {
                    Side::Buy
                },
            };
            Ok(Parsed::Event(event(
                from_venue(need(raw.s, "s")?)?,
                ts_ms,
                Payload::Trade(trade),
            )))
        }
        "depthUpdate" => {
            let symbol = from_venue(need(raw.s, "s")?)?;
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
            let funding = FundingRate {
                funding_rate: decimal(need(raw.r, "r")?)?,
                funding_time_ms: need(raw.time_t, "T")?,
                next_funding_time_ms: None,
                mark_price: raw.p.map(decimal).transpose()?,
                index_price: raw.i.map(decimal).transpose()?,
            };
            Ok(Parsed::Event(event(
                from_venue(need(raw.s, "s")?)?,
                ts_ms,
                Payload::FundingRate(funding),
            )))
        }
        "forceOrder" => {
            let order: RawForceOrder = serde_json::from_str(need(raw.o, "o")?.get())?;
            let liq = Liquidation {
                side: side(order.side)?,
                // Average fill price and filled quantity when there are fills, else the order's.
                price: decimal(nonzero(order.ap).unwrap_or(order.p))?,
                quantity: decimal(nonzero(order.z).unwrap_or(order.q))?,
            };
            Ok(Parsed::Event(event(
                from_venue(order.s)?,
                ts_ms,
                Payload::Liquidation(liq),
            )))
        }
        "serverShutdown" => Ok(Parsed::Control(Control::ServerShutdown { ts_ms })),
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

/// REST `GET /fapi/v1/openInterest`.
pub fn parse_open_interest(text: &str, recv_ts_ms: i64) -> ParseResult<Event> {
    let raw: RawOpenInterest = serde_json::from_str(text)?;
    Ok(Event {
        exchange: Exchange::BinanceDerivatives,
        market_type: MarketType::Perpetual,
        symbol: from_venue(raw.symbol)?,
        ts_ms: raw.time,
        recv_ts_ms,
        payload: Payload::OpenInterest(OpenInterest {
            open_interest: decimal(raw.open_interest)?,
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
            let ts_ms = match row.timestamp {
                TextOrInt::Int(i) => i,
                TextOrInt::Text(t) => int_str(t, "timestamp")?,
            };
            Ok(Event {
                exchange: Exchange::BinanceDerivatives,
                market_type: MarketType::Perpetual,
                symbol: from_venue(row.symbol)?,
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
