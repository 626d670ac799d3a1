//! Binance trade history, for `job backfill`: the ids the live streams carry, so a backfilled trade
//! has the live one's message id.
//!
//! - Spot streams `<symbol>@trade` (trade id `t`): history is `GET /api/v3/historicalTrades?symbol&fromId&limit`
//!   ("Old trade lookup", weight 25, `fromId` inclusive, ascending, limit ≤ 1000). It takes no time, so
//!   the first page is `GET /api/v3/aggTrades?symbol&startTime&endTime&limit=1` (weight 4), whose `f` is
//!   the first trade id at or after `startTime`.
//! - USD-M streams `<symbol>@aggTrade` (aggregate id `a`): history is `GET /fapi/v1/aggTrades` ("Compressed/
//!   Aggregate Trades List", weight 20), first by `startTime`/`endTime` (inclusive, less than 1 h apart),
//!   then by `fromId`; Binance advises against combining the two.
//!
//! Sources: Binance Spot API docs, "Market Data endpoints"; Binance USD-M Futures docs, "Market Data".

use super::super::history::{Cursor, HistoryRequest, HistoryTrade, Page, Window, trade_event};
use crate::parse::{ParseError, ParseErrorReason, ParseResult};
use marketprism_model::instruments::Instrument;
use marketprism_model::{Exchange, Side};
use serde::Deserialize;

/// Rows per page (the venues' maximum).
const LIMIT: usize = 1000;
/// `startTime`..`endTime` must be less than an hour apart.
const MAX_SPAN_MS: i64 = 3_600_000 - 1;

#[derive(Deserialize)]
struct AggTrade<'a> {
    a: u64,
    p: &'a str,
    q: &'a str,
    f: u64,
    #[serde(rename = "T")]
    time: i64,
    m: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OldTrade<'a> {
    id: u64,
    price: &'a str,
    qty: &'a str,
    time: i64,
    is_buyer_maker: bool,
}

/// `m` / `isBuyerMaker`: the buyer was the maker, so the taker sold.
fn taker(buyer_is_maker: bool) -> Side {
    if buyer_is_maker {
        Side::Sell
    } else {
        Side::Buy
    }
}

pub fn request(
    exchange: Exchange,
    rest: &str,
    inst: &Instrument,
    window: Window,
    cursor: Cursor,
) -> HistoryRequest {
    let s = &inst.venue_symbol;
    let spot = exchange == Exchange::BinanceSpot;
    match cursor {
        Cursor::Time(t) => {
            let end = (t + MAX_SPAN_MS).min(window.to_ms);
            if spot {
                HistoryRequest {
                    url: format!(
                        "{rest}/api/v3/aggTrades?symbol={s}&startTime={t}&endTime={end}&limit=1"
                    ),
                    weight: 4,
                }
            } else {
                HistoryRequest {
                    url: format!(
                        "{rest}/fapi/v1/aggTrades?symbol={s}&startTime={t}&endTime={end}&limit={LIMIT}"
                    ),
                    weight: 20,
                }
            }
        }
        Cursor::Id(id) if spot => HistoryRequest {
            url: format!("{rest}/api/v3/historicalTrades?symbol={s}&fromId={id}&limit={LIMIT}"),
            weight: 25,
        },
        Cursor::Id(id) => HistoryRequest {
            url: format!("{rest}/fapi/v1/aggTrades?symbol={s}&fromId={id}&limit={LIMIT}"),
            weight: 20,
        },
    }
}

fn venue_error(body: &str) -> ParseError {
    ParseError::new(
        ParseErrorReason::VenueError,
        crate::parse::truncate(body, 200).to_owned(),
    )
}

pub(crate) fn parse_page(
    exchange: Exchange,
    inst: &Instrument,
    window: Window,
    cursor: Cursor,
    body: &str,
    recv_ts_ms: i64,
) -> ParseResult<Page> {
    if body.trim_start().starts_with('{') {
        // `{"code": -1127, "msg": …}`: an error, not a page.
        return Err(venue_error(body));
    }
    let spot = exchange == Exchange::BinanceSpot;
    // The next time window, when this one (at most an hour) ended before the window's end.
    let next_span = |t: i64| {
        let end = (t + MAX_SPAN_MS).min(window.to_ms);
        (end < window.to_ms).then_some(Cursor::Time(end + 1))
    };
    match cursor {
        Cursor::Time(t) if spot => {
            let rows: Vec<AggTrade> = serde_json::from_str(body)?;
            Ok(Page {
                trades: Vec::new(),
                next: match rows.first() {
                    Some(first) => Some(Cursor::Id(first.f)),
                    None => next_span(t),
                },
            })
        }
        Cursor::Time(t) => {
            let rows: Vec<AggTrade> = serde_json::from_str(body)?;
            let page = agg_page(exchange, inst, window, &rows, recv_ts_ms)?;
            Ok(Page {
                next: if page.next.is_some() {
                    page.next
                } else {
                    next_span(t)
                },
                trades: page.trades,
            })
        }
        Cursor::Id(_) if spot => {
            let rows: Vec<OldTrade> = serde_json::from_str(body)?;
            let mut trades = Vec::with_capacity(rows.len());
            for r in rows.iter().filter(|r| in_window(window, r.time)) {
                trades.push(trade_event(
                    exchange,
                    inst,
                    HistoryTrade {
                        trade_id: r.id.to_string(),
                        ts_ms: r.time,
                        price: r.price,
                        size: r.qty,
                        taker: taker(r.is_buyer_maker),
                    },
                    recv_ts_ms,
                )?);
            }
            let next = rows.last().map(|r| (r.id, r.time));
            Ok(Page {
                trades,
                next: continue_after(next, rows.len(), window),
            })
        }
        Cursor::Id(_) => {
            let rows: Vec<AggTrade> = serde_json::from_str(body)?;
            agg_page(exchange, inst, window, &rows, recv_ts_ms)
        }
    }
}

fn in_window(window: Window, t: i64) -> bool {
    (window.from_ms..=window.to_ms).contains(&t)
}

/// After a page by id: the next id while the page was full and had not passed the window's end.
fn continue_after(last: Option<(u64, i64)>, rows: usize, window: Window) -> Option<Cursor> {
    match last {
        Some((id, t)) if rows >= LIMIT && t <= window.to_ms => Some(Cursor::Id(id + 1)),
        _ => None,
    }
}

fn agg_page(
    exchange: Exchange,
    inst: &Instrument,
    window: Window,
    rows: &[AggTrade<'_>],
    recv_ts_ms: i64,
) -> ParseResult<Page> {
    let mut trades = Vec::with_capacity(rows.len());
    for r in rows.iter().filter(|r| in_window(window, r.time)) {
        trades.push(trade_event(
            exchange,
            inst,
            HistoryTrade {
                trade_id: r.a.to_string(),
                ts_ms: r.time,
                price: r.p,
                size: r.q,
                taker: taker(r.m),
            },
            recv_ts_ms,
        )?);
    }
    Ok(Page {
        trades,
        next: continue_after(rows.last().map(|r| (r.a, r.time)), rows.len(), window),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::instruments::SizeRule;
    use marketprism_model::{MarketType, Payload, Symbol};

    fn inst(exchange: Exchange) -> Instrument {
        Instrument {
            venue_symbol: "BTCUSDT".into(),
            symbol: Symbol::new("BTC-USDT").unwrap(),
            market_type: if exchange == Exchange::BinanceSpot {
                MarketType::Spot
            } else {
                MarketType::Perpetual
            },
            size: SizeRule::Base,
            tick_size: None,
            lot_size: None,
            venue_type: "x".into(),
        }
    }

    const W: Window = Window {
        from_ms: 1_700_000_000_000,
        to_ms: 1_700_000_060_000,
    };

    #[test]
    fn spot_finds_the_first_trade_id_by_time_then_pages_old_trades_by_id() {
        let i = inst(Exchange::BinanceSpot);
        let r = request(
            Exchange::BinanceSpot,
            "https://x",
            &i,
            W,
            Cursor::Time(W.from_ms),
        );
        assert_eq!(
            r.url,
            "https://x/api/v3/aggTrades?symbol=BTCUSDT&startTime=1700000000000&endTime=1700000060000&limit=1"
        );
        // The documented aggTrades row.
        let body = r#"[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,"T":1700000000153,"m":true,"M":true}]"#;
        let page = parse_page(
            Exchange::BinanceSpot,
            &i,
            W,
            Cursor::Time(W.from_ms),
            body,
            0,
        )
        .unwrap();
        assert_eq!(page.next, Some(Cursor::Id(27781)));
        assert!(page.trades.is_empty());
        let r = request(Exchange::BinanceSpot, "https://x", &i, W, Cursor::Id(27781));
        assert_eq!(
            r.url,
            "https://x/api/v3/historicalTrades?symbol=BTCUSDT&fromId=27781&limit=1000"
        );
        assert_eq!(r.weight, 25);
        // The documented historicalTrades row, and one past the window (dropped).
        let body = r#"[{"id":27781,"price":"4.00000100","qty":"12.00000000","quoteQty":"48.000012","time":1700000000153,"isBuyerMaker":true,"isBestMatch":true},
                       {"id":27782,"price":"4.00000200","qty":"1.00000000","quoteQty":"4.000002","time":1700000070000,"isBuyerMaker":false,"isBestMatch":true}]"#;
        let page = parse_page(Exchange::BinanceSpot, &i, W, Cursor::Id(27781), body, 0).unwrap();
        assert_eq!(page.next, None, "a short page ends the walk");
        assert_eq!(page.trades.len(), 1);
        let Payload::Trade(t) = &page.trades[0].payload else {
            panic!()
        };
        assert_eq!((t.trade_id.as_str(), t.side), ("27781", Side::Sell));
        assert_eq!(t.price.to_string(), "4.00000100");
        assert_eq!(page.trades[0].ts_ms, 1_700_000_000_153);
    }

    #[test]
    fn usdm_pages_aggregates_by_time_then_by_id_and_reports_venue_errors() {
        let e = Exchange::BinanceDerivatives;
        let i = inst(e);
        let rows: Vec<String> = (0..1000)
            .map(|k| {
                format!(
                    r#"{{"a":{},"p":"100.5","q":"0.010","f":1,"l":1,"T":{},"m":false}}"#,
                    500 + k,
                    W.from_ms + k
                )
            })
            .collect();
        let body = format!("[{}]", rows.join(","));
        let page = parse_page(e, &i, W, Cursor::Time(W.from_ms), &body, 0).unwrap();
        assert_eq!(page.trades.len(), 1000);
        assert_eq!(
            page.next,
            Some(Cursor::Id(1500)),
            "a full page continues by id"
        );
        assert_eq!(
            request(e, "https://f", &i, W, Cursor::Id(1500)).url,
            "https://f/fapi/v1/aggTrades?symbol=BTCUSDT&fromId=1500&limit=1000"
        );
        let err = parse_page(
            e,
            &i,
            W,
            Cursor::Time(W.from_ms),
            r#"{"code":-1127,"msg":"More than 1 hours between startTime and endTime."}"#,
            0,
        )
        .unwrap_err();
        assert_eq!(err.reason, ParseErrorReason::VenueError);
        // A window longer than an hour walks it an hour at a time.
        let long = Window {
            from_ms: 0,
            to_ms: 3 * 3_600_000,
        };
        let page = parse_page(e, &i, long, Cursor::Time(0), "[]", 0).unwrap();
        assert_eq!(page.next, Some(Cursor::Time(3_600_000)));
    }
}
