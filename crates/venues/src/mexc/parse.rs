//! MEXC spot frames → normalized events. Control traffic is JSON text; data is binary protobuf
//! ([`super::pb`]). Pure; instruments from the venue's list ([`InstrumentTable`]).
//!
//! | frame | shape | becomes |
//! |---|---|---|
//! | text | `{"id":0,"code":0,"msg":"spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"}` | `Ack { id: msg }` |
//! | text | `{"id":0,"code":0,"msg":"PONG"}` | `Pong` |
//! | text | `{"id":0,"code":0,"msg":"Not Subscribed successfully! [ch,...].  Reason： …"}` or `code != 0` | `Error` |
//! | binary | `PushDataV3ApiWrapper { publicAggreDepths }` | `BookUpdate { first_id: fromVersion, last_id: toVersion, ts_ms: sendTime }` |
//! | binary | `PushDataV3ApiWrapper { publicAggreDeals }` | trades (`time`, `tradeType` 1 buy / 2 sell) |
//!
//! Trade ids: the documented deals carry none (price, quantity, tradeType, time). The newer schema's
//! `tradeId` is used when sent; otherwise the id is a 63-bit FNV-1a hash of the deal (time, price,
//! quantity, side, its push's `sendTime`, position in its push), written in decimal: the same deal pushed twice has the same
//! id (so a repeated frame is dropped as a duplicate), distinct deals get distinct ids. Such ids are
//! not contiguous: a lost deals frame cannot be seen from the ids (it gets a `rejected` gap when the
//! frame was unreadable).

use super::pb::{Body, PushDataV3ApiWrapper};
use crate::book::{BookSnapshot, BookUpdate};
use crate::parse::{
    Control, ParseError, ParseErrorReason, ParseResult, Parsed, RawLevel, at_or_recv, decimal,
    levels, listed, need, quantity, time_ms, truncate,
};
use marketprism_model::instruments::{Instrument, InstrumentTable};
use marketprism_model::{DataType, Decimal, Event, Exchange, Payload, Side, Trade};
use prost::Message;
use serde::Deserialize;
use std::borrow::Cow;

/// The refusal text MEXC spot answers a subscription it does not serve with (code 0).
pub(crate) const NOT_SUBSCRIBED: &str = "Not Subscribed successfully!";

#[derive(Deserialize)]
struct RawReply<'a> {
    #[serde(default)]
    code: Option<i64>,
    #[serde(borrow, default)]
    msg: Option<Cow<'a, str>>,
}

/// One text frame of the spot connection (control only: data is binary).
pub fn parse_text(text: &str) -> ParseResult<Parsed> {
    let raw: RawReply = serde_json::from_str(text)?;
    let msg = need(raw.msg, "msg")?;
    let code = raw.code.unwrap_or(0);
    if code == 0 && msg == "PONG" {
        return Ok(Parsed::Control(Control::Pong));
    }
    if code != 0 || msg.starts_with(NOT_SUBSCRIBED) || !msg.starts_with("spot@") {
        return Ok(Parsed::Control(Control::Error {
            id: None,
            code: code.to_string(),
            msg: msg.into_owned(),
        }));
    }
    Ok(Parsed::Control(Control::Ack {
        id: msg.into_owned(),
    }))
}

/// The channels a refusal names: `Not Subscribed successfully! [a,b].  Reason： …` → `[a, b]`.
pub(crate) fn refused_channels(msg: &str) -> Vec<&str> {
    let Some(rest) = msg.strip_prefix(NOT_SUBSCRIBED) else {
        return Vec::new();
    };
    let Some(open) = rest.find('[') else {
        return Vec::new();
    };
    let Some(close) = rest[open..].find(']') else {
        return Vec::new();
    };
    rest[open + 1..open + close]
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// The channel (field 1) of a push, read leniently from the first bytes even when the rest is
/// broken: for attributing a frame that does not decode. `None` unless it starts with field 1.
pub fn channel_of(bytes: &[u8]) -> Option<&str> {
    let (&key, rest) = bytes.split_first()?;
    if key != 0x0a {
        return None;
    }
    let mut len: usize = 0;
    for (i, &b) in rest.iter().enumerate().take(3) {
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let body = rest.get(i + 1..i + 1 + len)?;
            return std::str::from_utf8(body).ok();
        }
    }
    None
}

/// One binary frame (`PushDataV3ApiWrapper`).
pub fn parse_binary(
    table: &InstrumentTable,
    exchange: Exchange,
    bytes: &[u8],
    recv_ts_ms: i64,
) -> ParseResult<Parsed> {
    let push = PushDataV3ApiWrapper::decode(bytes).map_err(|e| {
        ParseError::new(
            ParseErrorReason::InvalidBinary,
            format!("not a PushDataV3ApiWrapper: {e}"),
        )
    })?;
    let venue_symbol = match push.symbol.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => push.channel.rsplit('@').next().unwrap_or_default(),
    };
    let Some(body) = push.body else {
        return Err(ParseError::new(
            ParseErrorReason::UnknownMessage,
            format!(
                "push without a decoded body: {}",
                truncate(&push.channel, 80)
            ),
        ));
    };
    let inst = listed(table, venue_symbol)?;
    match body {
        Body::PublicAggreDepths(d) => {
            let on = |e: ParseError| {
                e.on(
                    DataType::Orderbooks,
                    inst,
                    at_or_recv(push.send_time, recv_ts_ms),
                )
            };
            let ts_ms =
                time_ms(need(push.send_time, "sendTime")?, recv_ts_ms, "sendTime").map_err(on)?;
            let first_id = version(&d.from_version, "fromVersion").map_err(on)?;
            let last_id = version(&d.to_version, "toVersion").map_err(on)?;
            if last_id < first_id {
                return Err(on(ParseError::new(
                    ParseErrorReason::BadNumber,
                    format!("toVersion {last_id} < fromVersion {first_id}"),
                )));
            }
            let side = |items: &[super::pb::PublicAggreDepthV3ApiItem]| {
                items
                    .iter()
                    .map(|l| Ok((decimal(&l.price)?, decimal(&l.quantity)?)))
                    .collect::<ParseResult<Vec<(Decimal, Decimal)>>>()
            };
            let update = BookUpdate {
                first_id,
                last_id,
                prev_id: None,
                ts_ms,
                bids: side(&d.bids).map_err(on)?,
                asks: side(&d.asks).map_err(on)?,
                checksum: None,
            };
            Ok(Parsed::BookUpdate(inst.symbol.clone(), update))
        }
        Body::PublicAggreDeals(d) => {
            let mut out = Vec::with_capacity(d.deals.len());
            for (i, deal) in d.deals.iter().enumerate() {
                let on = |e: ParseError| {
                    e.on(
                        DataType::Trades,
                        inst,
                        at_or_recv(Some(deal.time), recv_ts_ms),
                    )
                };
                let ts_ms = time_ms(deal.time, recv_ts_ms, "time").map_err(on)?;
                let price = decimal(&deal.price).map_err(on)?;
                let q = quantity(inst, &deal.quantity, price).map_err(on)?;
                let side = match deal.trade_type {
                    1 => Side::Buy,
                    2 => Side::Sell,
                    other => {
                        return Err(on(ParseError::new(
                            ParseErrorReason::BadSide,
                            format!("tradeType {other}"),
                        )));
                    }
                };
                let trade_id = if deal.trade_id.is_empty() {
                    deal_id(
                        deal.time,
                        &deal.price,
                        &deal.quantity,
                        deal.trade_type,
                        push.send_time.unwrap_or(0),
                        i,
                    )
                } else {
                    deal.trade_id.clone()
                };
                out.push(event(
                    exchange, inst, ts_ms, recv_ts_ms, trade_id, price, q, side,
                ));
            }
            Ok(Parsed::Events(out))
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn event(
    exchange: Exchange,
    inst: &Instrument,
    ts_ms: i64,
    recv_ts_ms: i64,
    trade_id: String,
    price: Decimal,
    q: marketprism_model::Quantity,
    side: Side,
) -> Event {
    Event {
        exchange,
        market_type: inst.market_type,
        symbol: inst.symbol.clone(),
        ts_ms,
        recv_ts_ms,
        payload: Payload::Trade(Trade {
            trade_id,
            price,
            quantity: q.base,
            raw_quantity: q.raw,
            quantity_unit: q.unit,
            side,
        }),
    }
}

/// A version sent as decimal text.
fn version(text: &str, field: &str) -> ParseResult<i64> {
    text.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
        ParseError::new(
            ParseErrorReason::BadNumber,
            format!("{field}={:?}", truncate(text, 40)),
        )
    })
}

/// The id of a deal the venue sent without one: 63-bit FNV-1a of its fields, its push's time
/// (`push_ms`: spot `sendTime`, contracts `ts`; 0 when absent) and its position in the push, in
/// decimal (see the module docs). A replayed push gives the same ids; equal deals of different pushes
/// do not collide.
pub fn deal_id(
    time: i64,
    price: &str,
    quantity: &str,
    trade_type: i32,
    push_ms: i64,
    index: usize,
) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    };
    feed(&time.to_le_bytes());
    feed(price.as_bytes());
    feed(quantity.as_bytes());
    feed(&trade_type.to_le_bytes());
    feed(&push_ms.to_le_bytes());
    feed(&(index as u64).to_le_bytes());
    (h >> 1).to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDepth<'a> {
    last_update_id: i64,
    #[serde(borrow)]
    bids: Vec<RawLevel<'a>>,
    #[serde(borrow)]
    asks: Vec<RawLevel<'a>>,
    #[serde(default)]
    timestamp: Option<i64>,
}

/// REST `GET /api/v3/depth?symbol=BTCUSDT&limit=5000`:
/// `{"lastUpdateId":…,"bids":[["price","qty"],…],"asks":[…],"timestamp":ms}`.
pub fn parse_depth_snapshot(text: &str) -> ParseResult<BookSnapshot> {
    let raw: RawDepth = serde_json::from_str(text)?;
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    levels(&raw.bids, &mut bids)?;
    levels(&raw.asks, &mut asks)?;
    Ok(BookSnapshot {
        last_id: raw.last_update_id,
        ts_ms: raw.timestamp,
        bids,
        asks,
        checksum: None,
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
