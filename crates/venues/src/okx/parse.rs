//! OKX v5 frames and REST replies → normalized events. Pure; borrows strings from the frame.
//! Instruments come from the venue's list ([`InstrumentTable`]): market type and contract value.
//!
//! `ts_ms`: trade `ts` (trades), detail `ts` (liquidations), `ts` of the push (funding rate; the
//! settlement time `fundingTime` when an old push has none), `ts` (open interest, books, ratios).
//! Sizes (`sz`, `oi`) of SWAP/FUTURES are contracts: stored × ctVal in base units, raw beside.

use crate::book::{BookSnapshot, BookUpdate};
use crate::parse::{
    Control, ParseError, ParseErrorReason, ParseResult, Parsed, RawLevel, decimal, int_str, levels,
    listed, need, quantity, time_str,
};
use marketprism_model::instruments::InstrumentTable;
use marketprism_model::{
    DataType, Event, Exchange, FundingRate, Liquidation, LongShortRatio, OpenInterest, Payload,
    Side, Symbol, Trade,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMsg<'a> {
    #[serde(borrow, default)]
    event: Option<&'a str>,
    #[serde(borrow, default)]
    code: Option<&'a str>,
    #[serde(borrow, default)]
    msg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a str>,
    #[serde(borrow, default)]
    arg: Option<RawArg<'a>>,
    #[serde(borrow, default)]
    action: Option<&'a str>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawArg<'a> {
    #[serde(borrow)]
    channel: &'a str,
    #[serde(borrow, default)]
    inst_id: Option<&'a str>,
    #[serde(borrow, default)]
    inst_type: Option<&'a str>,
}

impl RawArg<'_> {
    /// `channel:instId` (or `channel:instType`): how a subscription is named in acks.
    fn key(&self) -> String {
        format!(
            "{}:{}",
            self.channel,
            self.inst_id.or(self.inst_type).unwrap_or("")
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBook<'a> {
    #[serde(borrow)]
    asks: Vec<RawLevel<'a>>,
    #[serde(borrow)]
    bids: Vec<RawLevel<'a>>,
    #[serde(borrow, default)]
    ts: Option<&'a str>,
    #[serde(default)]
    checksum: Option<i64>,
    #[serde(default)]
    prev_seq_id: Option<i64>,
    #[serde(default)]
    seq_id: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTrade<'a> {
    #[serde(borrow)]
    inst_id: &'a str,
    #[serde(borrow)]
    trade_id: &'a str,
    #[serde(borrow)]
    px: &'a str,
    #[serde(borrow)]
    sz: &'a str,
    #[serde(borrow)]
    side: &'a str,
    #[serde(borrow)]
    ts: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFunding<'a> {
    #[serde(borrow)]
    inst_id: &'a str,
    #[serde(borrow, default)]
    funding_rate: Option<&'a str>,
    #[serde(borrow)]
    funding_time: &'a str,
    #[serde(borrow, default)]
    next_funding_time: Option<&'a str>,
    #[serde(borrow, default)]
    next_funding_rate: Option<&'a str>,
    #[serde(borrow, default)]
    ts: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOpenInterest<'a> {
    #[serde(borrow)]
    inst_id: &'a str,
    #[serde(borrow)]
    oi: &'a str,
    /// Open interest in the base currency (coin), when given.
    #[serde(borrow, default)]
    oi_ccy: Option<&'a str>,
    #[serde(borrow, default)]
    oi_usd: Option<&'a str>,
    #[serde(borrow)]
    ts: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLiquidation<'a> {
    #[serde(borrow)]
    inst_id: &'a str,
    #[serde(borrow)]
    details: Vec<RawLiqDetail<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLiqDetail<'a> {
    #[serde(borrow)]
    bk_px: &'a str,
    #[serde(borrow)]
    side: &'a str,
    #[serde(borrow)]
    sz: &'a str,
    #[serde(borrow)]
    ts: &'a str,
}

/// An optional text field: absent and `""` are both "not given".
fn given(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// Parse one WebSocket text frame; `table` is the product line's instrument list.
pub fn parse_frame(
    table: &InstrumentTable,
    exchange: Exchange,
    text: &str,
    recv_ts_ms: i64,
) -> ParseResult<Parsed> {
    if text.trim() == "pong" {
        return Ok(Parsed::Control(Control::Pong));
    }
    let raw: RawMsg = serde_json::from_str(text)?;
    if let Some(event) = raw.event {
        return Ok(Parsed::Control(match event {
            "error" => Control::Error {
                id: raw.id.map(str::to_owned),
                code: raw.code.unwrap_or_default().to_owned(),
                msg: raw.msg.unwrap_or_default().into_owned(),
            },
            _ => Control::Ack {
                id: raw
                    .arg
                    .as_ref()
                    .map_or_else(|| raw.id.unwrap_or(event).to_owned(), RawArg::key),
            },
        }));
    }
    let arg = need(raw.arg, "arg")?;
    let data = need(raw.data, "data")?.get();
    let ev = |inst: &marketprism_model::instruments::Instrument, ts_ms, payload| Event {
        exchange,
        market_type: inst.market_type,
        symbol: inst.symbol.clone(),
        ts_ms,
        recv_ts_ms,
        payload,
    };
    match arg.channel {
        "books" | "books5" | "books-l2-tbt" | "books50-l2-tbt" => {
            let inst = listed(table, need(arg.inst_id, "arg.instId")?)?;
            let symbol = inst.symbol.clone();
            let mut books: Vec<RawBook> = serde_json::from_str(data)?;
            if books.len() != 1 {
                return Err(ParseError::new(
                    ParseErrorReason::UnknownMessage,
                    "books data must hold one book",
                ));
            }
            let book = books.swap_remove(0);
            let on = |e: ParseError| e.on(DataType::Orderbooks, inst, recv_ts_ms);
            let ts_ms = time_str(need(book.ts, "ts")?, recv_ts_ms, "ts").map_err(on)?;
            let (mut bids, mut asks) = (Vec::new(), Vec::new());
            levels(&book.bids, &mut bids).map_err(on)?;
            levels(&book.asks, &mut asks).map_err(on)?;
            let checksum = checksum(book.checksum);
            let seq = book.seq_id.unwrap_or(0);
            if raw.action == Some("snapshot") {
                let snap = BookSnapshot {
                    last_id: seq,
                    ts_ms: Some(ts_ms),
                    bids,
                    asks,
                    checksum,
                };
                Ok(Parsed::BookSnapshot(symbol, snap))
            } else {
                let update = BookUpdate {
                    first_id: seq,
                    last_id: seq,
                    prev_id: book.prev_seq_id,
                    ts_ms,
                    bids,
                    asks,
                    checksum,
                };
                Ok(Parsed::BookUpdate(symbol, update))
            }
        }
        "trades" => {
            let rows: Vec<RawTrade> = serde_json::from_str(data)?;
            let mut out = Vec::with_capacity(rows.len());
            for t in rows {
                let inst = listed(table, t.inst_id)?;
                let on = |e: ParseError| e.on(DataType::Trades, inst, recv_ts_ms);
                let ts_ms = time_str(t.ts, recv_ts_ms, "ts").map_err(on)?;
                let price = decimal(t.px).map_err(on)?;
                let q = quantity(inst, t.sz, price).map_err(on)?;
                let trade = Trade {
                    trade_id: t.trade_id.to_owned(),
                    price,
                    quantity: q.base,
                    raw_quantity: q.raw,
                    quantity_unit: q.unit,
                    side: side(t.side)?,
                };
                out.push(ev(inst, ts_ms, Payload::Trade(trade)));
            }
            Ok(Parsed::Events(out))
        }
        "funding-rate" => {
            let rows: Vec<RawFunding> = serde_json::from_str(data)?;
            let mut out = Vec::with_capacity(rows.len());
            for f in rows {
                let inst = listed(table, f.inst_id)?;
                let on = |e: ParseError| e.on(DataType::FundingRates, inst, recv_ts_ms);
                let funding_time_ms =
                    time_str(f.funding_time, recv_ts_ms, "fundingTime").map_err(on)?;
                let optional = |v: Option<&str>| given(v).map(decimal).transpose().map_err(on);
                let payload = Payload::FundingRate(FundingRate {
                    // Absent or "" (pushes with only `nextFundingRate` exist): null, not a lost row.
                    funding_rate: optional(f.funding_rate)?,
                    funding_time_ms,
                    next_funding_time_ms: given(f.next_funding_time)
                        .map(|s| time_str(s, recv_ts_ms, "nextFundingTime"))
                        .transpose()
                        .map_err(on)?,
                    next_funding_rate: optional(f.next_funding_rate)?,
                    mark_price: None,
                    index_price: None,
                });
                // Old pushes carry no `ts`; the settlement time is then the only venue time there is.
                let ts_ms = given(f.ts)
                    .map(|s| time_str(s, recv_ts_ms, "ts"))
                    .transpose()
                    .map_err(on)?
                    .unwrap_or(funding_time_ms);
                out.push(ev(inst, ts_ms, payload));
            }
            Ok(Parsed::Events(out))
        }
        "open-interest" => Ok(Parsed::Events(open_interest_rows(
            table, exchange, data, recv_ts_ms,
        )?)),
        "liquidation-orders" => {
            let rows: Vec<RawLiquidation> = serde_json::from_str(data)?;
            let mut out = Vec::new();
            for row in rows {
                let inst = listed(table, row.inst_id)?;
                let on = |e: ParseError| e.on(DataType::Liquidations, inst, recv_ts_ms);
                for d in row.details {
                    let price = decimal(d.bk_px).map_err(on)?;
                    let q = quantity(inst, d.sz, price).map_err(on)?;
                    let liq = Liquidation {
                        side: side(d.side)?,
                        price,
                        quantity: q.base,
                        raw_quantity: q.raw,
                        quantity_unit: q.unit,
                    };
                    let ts_ms = time_str(d.ts, recv_ts_ms, "ts").map_err(on)?;
                    out.push(ev(inst, ts_ms, Payload::Liquidation(liq)));
                }
            }
            Ok(Parsed::Events(out))
        }
        other => Err(ParseError::new(
            ParseErrorReason::UnknownMessage,
            format!("channel {:?}", other.chars().take(40).collect::<String>()),
        )),
    }
}

/// `0` means "absent" (OKX zeroes the field from 2026-06-23).
fn checksum(raw: Option<i64>) -> Option<i32> {
    raw.filter(|c| *c != 0).and_then(|c| i32::try_from(c).ok())
}

fn side(s: &str) -> ParseResult<Side> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        other => Err(ParseError::new(
            ParseErrorReason::BadSide,
            other.chars().take(20).collect::<String>(),
        )),
    }
}

/// Open interest rows: `oi` (contracts) is the raw value; the base quantity is `oiCcy` when the venue
/// gives it, else `oi` × ctVal (linear; inverse contracts need `oiCcy`, as no price comes with them).
fn open_interest_rows(
    table: &InstrumentTable,
    exchange: Exchange,
    data: &str,
    recv_ts_ms: i64,
) -> ParseResult<Vec<Event>> {
    let rows: Vec<RawOpenInterest> = serde_json::from_str(data)?;
    rows.into_iter()
        .map(|o| {
            let inst = listed(table, o.inst_id)?;
            let on = |e: ParseError| e.on(DataType::OpenInterests, inst, recv_ts_ms);
            let raw = decimal(o.oi).map_err(on)?;
            let base = match given(o.oi_ccy) {
                Some(c) => decimal(c).map_err(on)?,
                None => {
                    quantity(inst, o.oi, rust_decimal::Decimal::ZERO)
                        .map_err(on)?
                        .base
                }
            };
            Ok(Event {
                exchange,
                market_type: inst.market_type,
                symbol: inst.symbol.clone(),
                ts_ms: time_str(o.ts, recv_ts_ms, "ts").map_err(on)?,
                recv_ts_ms,
                payload: Payload::OpenInterest(OpenInterest {
                    open_interest: base,
                    raw_open_interest: raw,
                    open_interest_unit: inst.size_unit(),
                    open_interest_value: given(o.oi_usd).map(decimal).transpose().map_err(on)?,
                }),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct RestEnvelope<'a> {
    #[serde(borrow)]
    code: &'a str,
    #[serde(borrow, default)]
    msg: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// The `data` of a REST reply, or a `VenueError` when `code != "0"`.
pub(crate) fn rest_data(text: &str) -> ParseResult<&str> {
    let env: RestEnvelope = serde_json::from_str(text)?;
    if env.code != "0" {
        return Err(ParseError::new(
            ParseErrorReason::VenueError,
            format!("code {} {}", env.code, env.msg.unwrap_or_default()),
        ));
    }
    Ok(need(env.data, "data")?.get())
}

/// REST `GET /api/v5/market/books?instId=..&sz=400` (carries `seqId` since 2026).
pub fn parse_rest_books(text: &str) -> ParseResult<BookSnapshot> {
    let mut books: Vec<RawBook> = serde_json::from_str(rest_data(text)?)?;
    if books.len() != 1 {
        return Err(ParseError::new(
            ParseErrorReason::UnknownMessage,
            "books data must hold one book",
        ));
    }
    let book = books.swap_remove(0);
    let (mut bids, mut asks) = (Vec::new(), Vec::new());
    levels(&book.bids, &mut bids)?;
    levels(&book.asks, &mut asks)?;
    Ok(BookSnapshot {
        last_id: need(book.seq_id, "seqId")?,
        ts_ms: book.ts.map(|t| int_str(t, "ts")).transpose()?,
        bids,
        asks,
        checksum: checksum(book.checksum),
    })
}

/// REST `GET /api/v5/public/open-interest`.
pub fn parse_rest_open_interest(
    table: &InstrumentTable,
    text: &str,
    recv_ts_ms: i64,
) -> ParseResult<Vec<Event>> {
    open_interest_rows(
        table,
        Exchange::OkxDerivatives,
        rest_data(text)?,
        recv_ts_ms,
    )
}

/// Which rubik ratio a reply holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatioKind {
    /// `long-short-position-ratio-contract-top-trader` → `lsr_top_positions`.
    TopPositions,
    /// `long-short-account-ratio-contract` → `lsr_all_accounts`.
    AllAccounts,
}

/// REST rubik `{"code":"0","data":[["ts","ratio"],...]}` for `symbol` (rows carry no instrument).
pub fn parse_rubik_ratio(
    text: &str,
    symbol: &Symbol,
    market_type: marketprism_model::MarketType,
    kind: RatioKind,
    period: &str,
    recv_ts_ms: i64,
) -> ParseResult<Vec<Event>> {
    let rows: Vec<Vec<&str>> = serde_json::from_str(rest_data(text)?)?;
    rows.into_iter()
        .map(|row| {
            let (Some(ts), Some(ratio)) = (row.first(), row.get(1)) else {
                return Err(ParseError::missing("[ts, ratio]"));
            };
            let ratio = LongShortRatio {
                period: period.to_owned(),
                long_short_ratio: decimal(ratio)?,
                long_ratio: None,
                short_ratio: None,
            };
            Ok(Event {
                exchange: Exchange::OkxDerivatives,
                market_type,
                symbol: symbol.clone(),
                ts_ms: time_str(ts, recv_ts_ms, "ts")?,
                recv_ts_ms,
                payload: match kind {
                    RatioKind::TopPositions => Payload::LsrTopPosition(ratio),
                    RatioKind::AllAccounts => Payload::LsrAllAccount(ratio),
                },
            })
        })
        .collect()
}
