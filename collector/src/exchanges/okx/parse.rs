//! OKX v5 frames and REST replies → normalized events. Pure; borrows strings from the frame.

use super::symbols::from_venue;
use crate::book::{BookSnapshot, BookUpdate};
use crate::exchanges::parse::{
    Control, ParseError, ParseErrorReason, ParseResult, Parsed, RawLevel, decimal, int_str, levels,
    need,
};
use crate::model::{
    Event, Exchange, FundingRate, Liquidation, LongShortRatio, OpenInterest, Payload, Side, Symbol,
    Trade,
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
    #[serde(borrow)]
    funding_rate: &'a str,
    #[serde(borrow)]
    funding_time: &'a str,
    #[serde(borrow, default)]
    next_funding_time: Option<&'a str>,
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

/// Parse one WebSocket text frame.
pub fn parse_frame(exchange: Exchange, text: &str, recv_ts_ms: i64) -> ParseResult<Parsed> {
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
    let ev = |symbol: Symbol, market_type, ts_ms, payload| Event {
        exchange,
        market_type,
        symbol,
        ts_ms,
        recv_ts_ms,
        payload,
    };
    match arg.channel {
        "books" | "books5" | "books-l2-tbt" | "books50-l2-tbt" => {
            let (symbol, _) = from_venue(need(arg.inst_id, "arg.instId")?)?;
            let mut books: Vec<RawBook> = serde_json::from_str(data)?;
            if books.len() != 1 {
                return Err(ParseError::new(
                    ParseErrorReason::UnknownMessage,
                    "books data must hold one book",
                ));
            }
            let book = books.swap_remove(0);
            let ts_ms = int_str(need(book.ts, "ts")?, "ts")?;
            let (mut bids, mut asks) = (Vec::new(), Vec::new());
            levels(&book.bids, &mut bids)?;
            levels(&book.asks, &mut asks)?;
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
                let (symbol, market) = from_venue(t.inst_id)?;
                let trade = Trade {
                    trade_id: t.trade_id.to_owned(),
                    price: decimal(t.px)?,
                    quantity: decimal(t.sz)?,
                    side: side(t.side)?,
                };
                out.push(ev(
                    symbol,
                    market,
                    int_str(t.ts, "ts")?,
                    Payload::Trade(trade),
                ));
            }
            Ok(Parsed::Events(out))
        }
        "funding-rate" => {
            let rows: Vec<RawFunding> = serde_json::from_str(data)?;
            let mut out = Vec::with_capacity(rows.len());
            for f in rows {
                let (symbol, market) = from_venue(f.inst_id)?;
                let funding_time_ms = int_str(f.funding_time, "fundingTime")?;
                let next = f.next_funding_time.filter(|s| !s.is_empty());
                let payload = Payload::FundingRate(FundingRate {
                    funding_rate: decimal(f.funding_rate)?,
                    funding_time_ms,
                    next_funding_time_ms: next
                        .map(|s| int_str(s, "nextFundingTime"))
                        .transpose()?,
                    mark_price: None,
                    index_price: None,
                });
                // Old pushes carry no `ts`; the settlement time is then the only venue time there is.
                let ts_ms =
                    f.ts.map(|s| int_str(s, "ts"))
                        .transpose()?
                        .unwrap_or(funding_time_ms);
                out.push(ev(symbol, market, ts_ms, payload));
            }
            Ok(Parsed::Events(out))
        }
        "open-interest" => Ok(Parsed::Events(open_interest_rows(
            exchange, data, recv_ts_ms,
        )?)),
        "liquidation-orders" => {
            let rows: Vec<RawLiquidation> = serde_json::from_str(data)?;
            let mut out = Vec::new();
            for row in rows {
                let (symbol, market) = from_venue(row.inst_id)?;
                for d in row.details {
                    let liq = Liquidation {
                        side: side(d.side)?,
                        price: decimal(d.bk_px)?,
                        quantity: decimal(d.sz)?,
                    };
                    out.push(ev(
                        symbol.clone(),
                        market,
                        int_str(d.ts, "ts")?,
                        Payload::Liquidation(liq),
                    ));
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

fn open_interest_rows(exchange: Exchange, data: &str, recv_ts_ms: i64) -> ParseResult<Vec<Event>> {
    let rows: Vec<RawOpenInterest> = serde_json::from_str(data)?;
    rows.into_iter()
        .map(|o| {
            let (symbol, market_type) = from_venue(o.inst_id)?;
            Ok(Event {
                exchange,
                market_type,
                symbol,
                ts_ms: int_str(o.ts, "ts")?,
                recv_ts_ms,
                payload: Payload::OpenInterest(OpenInterest {
                    open_interest: decimal(o.oi)?,
                    open_interest_value: o
                        .oi_usd
                        .filter(|s| !s.is_empty())
                        .map(decimal)
                        .transpose()?,
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
fn rest_data(text: &str) -> ParseResult<&str> {
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
pub fn parse_rest_open_interest(text: &str, recv_ts_ms: i64) -> ParseResult<Vec<Event>> {
    open_interest_rows(Exchange::OkxDerivatives, rest_data(text)?, recv_ts_ms)
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
                market_type: crate::model::MarketType::Perpetual,
                symbol: symbol.clone(),
                ts_ms: int_str(ts, "ts")?,
                recv_ts_ms,
                payload: match kind {
                    RatioKind::TopPositions => Payload::LsrTopPosition(ratio),
                    RatioKind::AllAccounts => Payload::LsrAllAccount(ratio),
                },
            })
        })
        .collect()
}
