//! MEXC USDT-margined perpetual frames (`wss://contract.mexc.com/edge`, JSON text) → normalized events.
//! Pure; instruments from the venue's list (`contractSize` per contract).
//!
//! | channel | `data` | becomes |
//! |---|---|---|
//! | `push.deal` | `{"p":6866.5,"v":2096,"T":1,"O":1,"M":1,"t":ms}` (docs) or an array of them with `"i":"id"` (live) | trades: `v` contracts × contractSize base, `T` 1 buy / 2 sell |
//! | `push.depth` | `{"asks":[[price,contracts,orders]],"bids":[…],"version":n}` | `BookUpdate { first_id = last_id = version }` (sizes in contracts, as OKX books) |
//! | `push.funding.rate` | `{"rate":0.001,"symbol":…,"nextSettleTime":ms}` | funding rate (settles at `nextSettleTime`, else the push `ts`) |
//! | `push.ticker` | `{…,"holdVol":2284742,"timestamp":ms}` | open interest: `holdVol` contracts × contractSize |
//! | `rs.sub.<method>` | `"success"` | `Ack { id: "rs.sub.<method>" }` (no symbol: one ack id per method) |
//! | `rs.error` | `"Contract doesn't exist!"` | `Error` (names no symbol) |
//! | `pong` | ms | `Pong` |
//!
//! Numbers are bare JSON numbers (`6866.5`, `2096`); they are read as the venue's text (never through
//! `f64`) and a quoted number is accepted too. Source: MEXC Futures API docs, "WebSocket API" (public
//! channels, "How is depth information maintained"); the array form of `push.deal` with `i` from
//! captures of the live feed.

use crate::book::{BookSnapshot, BookUpdate};
use crate::parse::{
    Control, ParseError, ParseErrorReason, ParseResult, Parsed, at_or_recv, decimal, listed, need,
    quantity, time_ms, truncate,
};
use marketprism_model::instruments::{Instrument, InstrumentTable};
use marketprism_model::{
    DataType, Decimal, Event, Exchange, FundingRate, OpenInterest, Payload, Side, Trade,
};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

#[derive(Deserialize)]
struct RawMsg<'a> {
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    symbol: Option<&'a str>,
    #[serde(default)]
    ts: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawDeal<'a> {
    #[serde(borrow)]
    p: &'a RawValue,
    #[serde(borrow)]
    v: &'a RawValue,
    #[serde(rename = "T")]
    side: i64,
    t: i64,
    #[serde(borrow, default)]
    i: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawDepth<'a> {
    #[serde(borrow, default)]
    asks: Vec<NumLevel<'a>>,
    #[serde(borrow, default)]
    bids: Vec<NumLevel<'a>>,
    version: i64,
    #[serde(default)]
    timestamp: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFunding<'a> {
    #[serde(borrow, default)]
    rate: Option<&'a RawValue>,
    #[serde(borrow, default)]
    funding_rate: Option<&'a RawValue>,
    #[serde(default)]
    next_settle_time: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTicker<'a> {
    #[serde(borrow)]
    hold_vol: &'a RawValue,
    #[serde(default)]
    timestamp: Option<i64>,
}

/// A level `[price, size, ...]` of bare (or quoted) numbers; the order count is skipped.
struct NumLevel<'a>(&'a RawValue, &'a RawValue);

impl<'de: 'a, 'a> Deserialize<'de> for NumLevel<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = NumLevel<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [price, size, ...] array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let price: &'de RawValue = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let size: &'de RawValue = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(NumLevel(price, size))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// The text of a JSON number (or of a quoted one).
fn num(raw: &RawValue) -> &str {
    let t = raw.get();
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
}

fn levels(raw: &[NumLevel<'_>]) -> ParseResult<Vec<(Decimal, Decimal)>> {
    raw.iter()
        .map(|NumLevel(p, q)| Ok((decimal(num(p))?, decimal(num(q))?)))
        .collect()
}

/// The push `ts` (a number or a quoted number), if readable.
fn push_ts(ts: Option<&RawValue>) -> Option<i64> {
    ts.and_then(|t| num(t).parse().ok())
}

/// One text frame of the contract connection.
pub fn parse_frame(
    table: &InstrumentTable,
    exchange: Exchange,
    text: &str,
    recv_ts_ms: i64,
) -> ParseResult<Parsed> {
    let raw: RawMsg = serde_json::from_str(text)?;
    let ts = push_ts(raw.ts);
    match raw.channel {
        "pong" => return Ok(Parsed::Control(Control::Pong)),
        "rs.error" => {
            let msg = raw.data.map(|d| num(d).to_owned()).unwrap_or_default();
            return Ok(Parsed::Control(Control::Error {
                id: None,
                code: "rs.error".into(),
                msg,
            }));
        }
        c if c.starts_with("rs.") => {
            let ok = raw.data.is_some_and(|d| num(d) == "success");
            return Ok(Parsed::Control(if ok {
                Control::Ack { id: c.to_owned() }
            } else {
                Control::Error {
                    id: Some(c.to_owned()),
                    code: c.to_owned(),
                    msg: raw.data.map(|d| num(d).to_owned()).unwrap_or_default(),
                }
            }));
        }
        _ => {}
    }
    let data = need(raw.data, "data")?.get();
    let data_type = match raw.channel {
        "push.deal" => DataType::Trades,
        "push.depth" => DataType::Orderbooks,
        "push.funding.rate" => DataType::FundingRates,
        "push.ticker" => DataType::OpenInterests,
        other => {
            return Err(ParseError::new(
                ParseErrorReason::UnknownMessage,
                format!("channel {:?}", truncate(other, 40)),
            ));
        }
    };
    let inst = listed(table, need(raw.symbol, "symbol")?)?;
    let on = |e: ParseError| e.on(data_type, inst, at_or_recv(ts, recv_ts_ms));
    let ev = |ts_ms, payload| Event {
        exchange,
        market_type: inst.market_type,
        symbol: inst.symbol.clone(),
        ts_ms,
        recv_ts_ms,
        payload,
    };
    match data_type {
        DataType::Trades => {
            let deals: Vec<RawDeal> = if data.trim_start().starts_with('[') {
                serde_json::from_str(data).map_err(|e| on(e.into()))?
            } else {
                vec![serde_json::from_str(data).map_err(|e| on(e.into()))?]
            };
            let mut out = Vec::with_capacity(deals.len());
            for (i, d) in deals.iter().enumerate() {
                out.push(ev(
                    time_ms(d.t, recv_ts_ms, "t").map_err(on)?,
                    deal(inst, d, ts.unwrap_or(0), i).map_err(on)?,
                ));
            }
            Ok(Parsed::Events(out))
        }
        DataType::Orderbooks => {
            let d: RawDepth = serde_json::from_str(data).map_err(|e| on(e.into()))?;
            let ts_ms = time_ms(need(ts.or(d.timestamp), "ts")?, recv_ts_ms, "ts").map_err(on)?;
            let update = BookUpdate {
                first_id: d.version,
                last_id: d.version,
                prev_id: None,
                ts_ms,
                bids: levels(&d.bids).map_err(on)?,
                asks: levels(&d.asks).map_err(on)?,
                checksum: None,
            };
            Ok(Parsed::BookUpdate(inst.symbol.clone(), update))
        }
        DataType::FundingRates => {
            let f: RawFunding = serde_json::from_str(data).map_err(|e| on(e.into()))?;
            let rate = need(f.rate.or(f.funding_rate), "rate")?;
            let ts_ms = time_ms(need(ts, "ts")?, recv_ts_ms, "ts").map_err(on)?;
            let funding_time_ms = match f.next_settle_time {
                Some(t) => time_ms(t, recv_ts_ms, "nextSettleTime").map_err(on)?,
                None => ts_ms,
            };
            Ok(Parsed::Event(ev(
                ts_ms,
                Payload::FundingRate(FundingRate {
                    funding_rate: Some(decimal(num(rate)).map_err(on)?),
                    funding_time_ms,
                    next_funding_time_ms: None,
                    next_funding_rate: None,
                    mark_price: None,
                    index_price: None,
                }),
            )))
        }
        _ => {
            let t: RawTicker = serde_json::from_str(data).map_err(|e| on(e.into()))?;
            let ts_ms = time_ms(
                need(t.timestamp.or(ts), "timestamp")?,
                recv_ts_ms,
                "timestamp",
            )
            .map_err(on)?;
            let q = quantity(inst, num(t.hold_vol), Decimal::ZERO).map_err(on)?;
            Ok(Parsed::Event(ev(
                ts_ms,
                Payload::OpenInterest(OpenInterest {
                    open_interest: q.base,
                    raw_open_interest: q.raw,
                    open_interest_unit: q.unit,
                    open_interest_value: None,
                }),
            )))
        }
    }
}

fn deal(inst: &Instrument, d: &RawDeal<'_>, push_ms: i64, index: usize) -> ParseResult<Payload> {
    let price = decimal(num(d.p))?;
    let q = quantity(inst, num(d.v), price)?;
    let side = match d.side {
        1 => Side::Buy,
        2 => Side::Sell,
        other => {
            return Err(ParseError::new(
                ParseErrorReason::BadSide,
                format!("T {other}"),
            ));
        }
    };
    let trade_id = match d.i.map(num).filter(|s| !s.is_empty()) {
        Some(id) => id.to_owned(),
        None => super::parse::deal_id(d.t, num(d.p), num(d.v), d.side as i32, push_ms, index),
    };
    Ok(Payload::Trade(Trade {
        trade_id,
        price,
        quantity: q.base,
        raw_quantity: q.raw,
        quantity_unit: q.unit,
        side,
    }))
}

#[derive(Deserialize)]
struct RestEnvelope<'a> {
    #[serde(default)]
    success: Option<bool>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(borrow, default)]
    message: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// The `data` of a contract REST reply (`{"success":true,"code":0,"data":…}`), or a `VenueError`.
pub(crate) fn rest_data(text: &str) -> ParseResult<&str> {
    let env: RestEnvelope = serde_json::from_str(text)?;
    if env.success == Some(false) || env.code.is_some_and(|c| c != 0) {
        return Err(ParseError::new(
            ParseErrorReason::VenueError,
            format!(
                "code {} {}",
                env.code.unwrap_or_default(),
                env.message.unwrap_or_default()
            ),
        ));
    }
    Ok(need(env.data, "data")?.get())
}

/// REST `GET /api/v1/contract/depth/{symbol}`: `data` = `{"asks":[[p,contracts,orders]],"bids":…,"version":n,"timestamp":ms}`.
pub fn parse_depth_snapshot(text: &str) -> ParseResult<BookSnapshot> {
    let d: RawDepth = serde_json::from_str(rest_data(text)?)?;
    Ok(BookSnapshot {
        last_id: d.version,
        ts_ms: d.timestamp,
        bids: levels(&d.bids)?,
        asks: levels(&d.asks)?,
        checksum: None,
    })
}

#[cfg(test)]
#[path = "futures_tests.rs"]
mod tests;
