//! Deribit JSON-RPC frames → normalized events. Pure. Deribit sends prices as JSON numbers: they are
//! read as raw text and parsed as decimals, never through f64. Instruments come from the venue's list.
//!
//! `ts_ms`: trade `timestamp` (trades), book `timestamp` (books), DVOL `timestamp`. Inverse `amount`s
//! are USD: stored ÷ price in base units, raw beside.

use super::symbols::index_symbol;
use crate::book::{BookSnapshot, BookUpdate};
use crate::parse::{
    Control, ParseError, ParseErrorReason, ParseResult, Parsed, decimal, listed, need, quantity,
    time_ms,
};
use marketprism_model::instruments::InstrumentTable;
use marketprism_model::{
    DataType, Decimal, Event, Exchange, MarketType, Payload, Side, Trade, VolatilityIndex,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct RawMsg<'a> {
    #[serde(borrow, default)]
    method: Option<&'a str>,
    #[serde(borrow, default)]
    params: Option<RawParams<'a>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<RawError<'a>>,
}

#[derive(Deserialize)]
struct RawParams<'a> {
    #[serde(borrow, default)]
    channel: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "type")]
    kind: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawError<'a> {
    code: i64,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawDvol<'a> {
    #[serde(borrow)]
    volatility: &'a RawValue,
    timestamp: i64,
    #[serde(borrow)]
    index_name: &'a str,
}

#[derive(Deserialize)]
struct RawTrade<'a> {
    #[serde(borrow)]
    trade_id: &'a str,
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(borrow)]
    amount: &'a RawValue,
    #[serde(borrow)]
    direction: &'a str,
    timestamp: i64,
    #[serde(borrow)]
    instrument_name: &'a str,
}

#[derive(Deserialize)]
struct RawBook<'a> {
    #[serde(borrow, rename = "type")]
    kind: &'a str,
    timestamp: i64,
    change_id: i64,
    #[serde(default)]
    prev_change_id: Option<i64>,
    #[serde(borrow)]
    bids: Vec<(&'a str, &'a RawValue, &'a RawValue)>,
    #[serde(borrow)]
    asks: Vec<(&'a str, &'a RawValue, &'a RawValue)>,
}

fn number(raw: &RawValue) -> ParseResult<Decimal> {
    decimal(raw.get())
}

/// Parse one WebSocket text frame; `table` is Deribit's instrument list.
pub fn parse_frame(table: &InstrumentTable, text: &str, recv_ts_ms: i64) -> ParseResult<Parsed> {
    let raw: RawMsg = serde_json::from_str(text)?;
    match raw.method {
        Some("subscription") => {
            let params = need(raw.params, "params")?;
            notification(
                table,
                need(params.channel, "params.channel")?,
                need(params.data, "params.data")?.get(),
                recv_ts_ms,
            )
        }
        Some("heartbeat") => match raw.params.and_then(|p| p.kind) {
            Some("test_request") => Ok(Parsed::Control(Control::TestRequest)),
            _ => Ok(Parsed::Control(Control::Heartbeat)),
        },
        Some(other) => Err(ParseError::new(
            ParseErrorReason::UnknownMessage,
            format!("method {:?}", other.chars().take(40).collect::<String>()),
        )),
        None => {
            let id = raw.id.map(|v| v.get().trim_matches('"').to_owned());
            match (raw.error, raw.result, id) {
                (Some(e), _, id) => Ok(Parsed::Control(Control::Error {
                    id,
                    code: e.code.to_string(),
                    msg: e.message.unwrap_or_default().into_owned(),
                })),
                (None, Some(result), Some(id)) => Ok(Parsed::Control(
                    match serde_json::from_str::<Vec<String>>(result.get()) {
                        Ok(channels) => Control::Subscribed { id, channels },
                        Err(_) => Control::Ack { id },
                    },
                )),
                _ => Err(ParseError::new(
                    ParseErrorReason::UnknownMessage,
                    "neither notification nor RPC reply",
                )),
            }
        }
    }
}

fn notification(
    table: &InstrumentTable,
    channel: &str,
    data: &str,
    recv_ts_ms: i64,
) -> ParseResult<Parsed> {
    let ev = |symbol, market_type, ts_ms, payload| Event {
        exchange: Exchange::DeribitDerivatives,
        market_type,
        symbol,
        ts_ms,
        recv_ts_ms,
        payload,
    };
    let kind = channel.split('.').next().unwrap_or_default();
    match kind {
        "deribit_volatility_index" => {
            let d: RawDvol = serde_json::from_str(data)?;
            let payload = Payload::VolatilityIndex(VolatilityIndex {
                index_name: d.index_name.to_owned(),
                volatility: number(d.volatility)?,
            });
            Ok(Parsed::Event(ev(
                index_symbol(d.index_name)?,
                MarketType::Options,
                time_ms(d.timestamp, recv_ts_ms, "timestamp")?,
                payload,
            )))
        }
        "trades" => {
            let rows: Vec<RawTrade> = serde_json::from_str(data)?;
            let mut out = Vec::with_capacity(rows.len());
            for t in rows {
                let inst = listed(table, t.instrument_name)?;
                let on = |e: ParseError| e.on(DataType::Trades, inst, recv_ts_ms);
                let side = match t.direction {
                    "buy" => Side::Buy,
                    "sell" => Side::Sell,
                    other => {
                        return Err(ParseError::new(
                            ParseErrorReason::BadSide,
                            other.chars().take(20).collect::<String>(),
                        ));
                    }
                };
                let price = number(t.price).map_err(on)?;
                let q = quantity(inst, t.amount.get(), price).map_err(on)?;
                let trade = Trade {
                    trade_id: t.trade_id.to_owned(),
                    price,
                    quantity: q.base,
                    raw_quantity: q.raw,
                    quantity_unit: q.unit,
                    side,
                };
                let ts_ms = time_ms(t.timestamp, recv_ts_ms, "timestamp").map_err(on)?;
                out.push(ev(
                    inst.symbol.clone(),
                    inst.market_type,
                    ts_ms,
                    Payload::Trade(trade),
                ));
            }
            Ok(Parsed::Events(out))
        }
        "book" => {
            let instrument = channel
                .split('.')
                .nth(1)
                .ok_or_else(|| ParseError::missing("channel instrument"))?;
            let inst = listed(table, instrument)?;
            let symbol = inst.symbol.clone();
            let on = |e: ParseError| e.on(DataType::Orderbooks, inst, recv_ts_ms);
            let mut b: RawBook = serde_json::from_str(data)?;
            b.timestamp = time_ms(b.timestamp, recv_ts_ms, "timestamp").map_err(on)?;
            let bids = book_levels(&b.bids).map_err(on)?;
            let asks = book_levels(&b.asks).map_err(on)?;
            if b.kind == "snapshot" {
                let snap = BookSnapshot {
                    last_id: b.change_id,
                    ts_ms: Some(b.timestamp),
                    bids,
                    asks,
                    checksum: None,
                };
                Ok(Parsed::BookSnapshot(symbol, snap))
            } else {
                let update = BookUpdate {
                    first_id: b.change_id,
                    last_id: b.change_id,
                    prev_id: b.prev_change_id,
                    ts_ms: b.timestamp,
                    bids,
                    asks,
                    checksum: None,
                };
                Ok(Parsed::BookUpdate(symbol, update))
            }
        }
        other => Err(ParseError::new(
            ParseErrorReason::UnknownMessage,
            format!("channel {:?}", other.chars().take(40).collect::<String>()),
        )),
    }
}

/// `[action, price, amount]` → `(price, size)`; `delete` means size 0.
fn book_levels(raw: &[(&str, &RawValue, &RawValue)]) -> ParseResult<Vec<(Decimal, Decimal)>> {
    raw.iter()
        .map(|(action, price, amount)| {
            let size = match *action {
                "delete" => Decimal::ZERO,
                "new" | "change" => number(amount)?,
                other => {
                    return Err(ParseError::new(
                        ParseErrorReason::UnknownMessage,
                        format!(
                            "book action {:?}",
                            other.chars().take(20).collect::<String>()
                        ),
                    ));
                }
            };
            Ok((number(price)?, size))
        })
        .collect()
}
