//! Trade history over REST: what `job backfill` fetches for a trades gap. Each venue folder has a
//! `history` module with two pure functions, the request for a [`Cursor`] and the parse of its
//! answer into a [`Page`]; this module dispatches to them and runs the page loop inside the venue's
//! rate limit ([`fetch_trades`]).
//!
//! A backfilled trade is the event the live stream would have produced: the same trade id (so the
//! same JetStream message id and ClickHouse sort key), price, base quantity by the instrument's size
//! rule, and taker side. Where the venue's history is finer than its stream (OKX: history per fill,
//! the `trades` channel per taker order) the caller keeps only fills strictly inside the gap (see
//! [`crate::history::missing`]).

use crate::parse::{ParseError, ParseResult, decimal, quantity, time_ms};
use crate::rate_limit::RateLimiter;
use crate::{binance, deribit, okx};
use marketprism_model::instruments::Instrument;
use marketprism_model::{Event, Exchange, Payload, Side, Trade};

/// An inclusive window of exchange time, UTC ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// By exchange time, from this instant (inclusive).
    Time(i64),
    /// By the venue's trade id: Binance `fromId` (inclusive, ascending), OKX `after` (exclusive,
    /// walking back).
    Id(u64),
}

/// One REST call: its URL and its weight in the venue's limiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRequest {
    pub url: String,
    pub weight: u32,
}

/// One parsed answer: the trades in the window, and where to continue (`None`: the window is done).
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub trades: Vec<Event>,
    pub next: Option<Cursor>,
}

/// The first cursor of a window.
pub(crate) fn first_cursor(exchange: Exchange, window: Window) -> Cursor {
    match exchange {
        // OKX pages backwards from the end of the window.
        Exchange::OkxSpot | Exchange::OkxDerivatives => Cursor::Time(window.to_ms),
        _ => Cursor::Time(window.from_ms),
    }
}

/// The REST call for `cursor`; `rest` is the venue's base URL (see [`crate::plan::base_urls`]).
pub fn request(
    exchange: Exchange,
    rest: &str,
    inst: &Instrument,
    window: Window,
    cursor: Cursor,
) -> HistoryRequest {
    match exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => {
            binance::history::request(exchange, rest, inst, window, cursor)
        }
        Exchange::OkxSpot | Exchange::OkxDerivatives => okx::history::request(rest, inst, cursor),
        Exchange::DeribitDerivatives => deribit::history::request(rest, inst, window, cursor),
        // Never called: `fetch_trades` refuses venues without a history (see [`supported`]).
        Exchange::MexcSpot | Exchange::MexcDerivatives => HistoryRequest {
            url: String::new(),
            weight: 0,
        },
    }
}

/// The answer to [`request`]`(…, cursor)` → the trades inside `window` and the next cursor.
pub(crate) fn parse_page(
    exchange: Exchange,
    inst: &Instrument,
    window: Window,
    cursor: Cursor,
    body: &str,
    recv_ts_ms: i64,
) -> ParseResult<Page> {
    match exchange {
        Exchange::BinanceSpot | Exchange::BinanceDerivatives => {
            binance::history::parse_page(exchange, inst, window, cursor, body, recv_ts_ms)
        }
        Exchange::OkxSpot | Exchange::OkxDerivatives => {
            okx::history::parse_page(exchange, inst, window, body, recv_ts_ms)
        }
        Exchange::DeribitDerivatives => {
            deribit::history::parse_page(inst, window, cursor, body, recv_ts_ms)
        }
        Exchange::MexcSpot | Exchange::MexcDerivatives => Err(ParseError::new(
            crate::ParseErrorReason::UnknownMessage,
            format!("backfill not supported for {exchange}"),
        )),
    }
}

/// The venue endpoint a backfill of `exchange` reads (recorded with each fill).
pub fn source(exchange: Exchange) -> &'static str {
    match exchange {
        Exchange::BinanceSpot => "binance /api/v3/historicalTrades",
        Exchange::BinanceDerivatives => "binance /fapi/v1/aggTrades",
        Exchange::OkxSpot | Exchange::OkxDerivatives => "okx /api/v5/market/history-trades",
        Exchange::DeribitDerivatives => "deribit public/get_last_trades_by_instrument_and_time",
        Exchange::MexcSpot | Exchange::MexcDerivatives => "none: backfill not supported",
    }
}

/// Whether marketprism can backfill trades of `exchange` from the venue's history. MEXC: not
/// supported (its spot stream has no trade ids to match a history against, and neither history
/// endpoint pages by id or time far enough back to be worth it).
pub fn supported(exchange: Exchange) -> bool {
    !matches!(exchange, Exchange::MexcSpot | Exchange::MexcDerivatives)
}

/// Whether the venue's trade ids are consecutive integers per instrument, so a hole in them is a
/// known number of missing trades (Binance trade and aggregate ids; the simulator's too).
pub fn ids_are_contiguous(exchange: Exchange) -> bool {
    matches!(
        exchange,
        Exchange::BinanceSpot | Exchange::BinanceDerivatives
    )
}

/// Whether the live stream carries aggregates (one row per taker order) where the history has one row
/// per fill: OKX `trades` (its `tradeId` is the aggregate's last fill, `count` its fills).
pub fn stream_aggregates(exchange: Exchange) -> bool {
    matches!(exchange, Exchange::OkxSpot | Exchange::OkxDerivatives)
}

/// One row of a venue's history as text: `size` in the venue's unit.
pub(crate) struct HistoryTrade<'a> {
    pub trade_id: String,
    pub ts_ms: i64,
    pub price: &'a str,
    pub size: &'a str,
    pub taker: Side,
}

/// A trade event as the live parser makes it: base quantity by the instrument's size rule.
pub(crate) fn trade_event(
    exchange: Exchange,
    inst: &Instrument,
    t: HistoryTrade<'_>,
    recv_ts_ms: i64,
) -> ParseResult<Event> {
    let HistoryTrade {
        trade_id,
        ts_ms,
        price,
        size,
        taker,
    } = t;
    let price = decimal(price)?;
    let q = quantity(inst, size, price)?;
    Ok(Event {
        exchange,
        market_type: inst.market_type,
        symbol: inst.symbol.clone(),
        ts_ms: time_ms(ts_ms, recv_ts_ms, "trade time")?,
        recv_ts_ms,
        payload: Payload::Trade(Trade {
            trade_id,
            price,
            quantity: q.base,
            raw_quantity: q.raw,
            quantity_unit: q.unit,
            side: taker,
        }),
    })
}

/// A trade already stored for the stream: its id and exchange time (UTC ms).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stored {
    pub trade_id: String,
    pub ts_ms: i64,
}

/// `a < b` for trade ids: numerically when both are integers, else by text.
fn id_less(a: &str, b: &str) -> bool {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x < y,
        _ => a < b,
    }
}

/// The trade id of a trade event (`""` for any other event).
pub fn trade_id(e: &Event) -> &str {
    match &e.payload {
        Payload::Trade(t) => &t.trade_id,
        _ => "",
    }
}

/// Of the `fetched` trades of a window, those the stream lost: every id not `stored`. When the stream
/// carries aggregates of the history's fills (`aggregated`, see [`stream_aggregates`]), a fill is also
/// covered by a stored aggregate of the same time with an id at or above its own (one taker order's
/// fills share a time, and the aggregate's id is its last fill). Sorted by (time, id), each id once.
pub fn missing(fetched: Vec<Event>, stored: &[Stored], aggregated: bool) -> Vec<Event> {
    let ids: std::collections::HashSet<&str> = stored.iter().map(|s| s.trade_id.as_str()).collect();
    // Per time, the stored ids (an aggregating stream's rows of one ms), looked up once per fill.
    let mut by_time: std::collections::HashMap<i64, Vec<&str>> = std::collections::HashMap::new();
    if aggregated {
        for s in stored {
            by_time.entry(s.ts_ms).or_default().push(&s.trade_id);
        }
    }
    let covered = |e: &Event| {
        let id = trade_id(e);
        ids.contains(id)
            || by_time
                .get(&e.ts_ms)
                .is_some_and(|same| same.iter().any(|s| !id_less(s, id)))
    };
    let mut out: Vec<Event> = fetched.into_iter().filter(|e| !covered(e)).collect();
    out.sort_by_cached_key(|e| {
        let id = trade_id(e);
        (e.ts_ms, id.parse::<u64>().ok(), id.to_owned())
    });
    out.dedup_by(|a, b| trade_id(a) == trade_id(b));
    out
}

/// For venues whose ids are consecutive ([`ids_are_contiguous`]): how many ids between the smallest
/// and the largest of `ids` are absent (0: no trade is missing inside that range). `None` when an id
/// is not an integer.
pub fn id_holes<'a>(ids: impl IntoIterator<Item = &'a str>) -> Option<u64> {
    let mut set = std::collections::BTreeSet::new();
    for id in ids {
        set.insert(id.parse::<u64>().ok()?);
    }
    match (set.first(), set.last()) {
        (Some(lo), Some(hi)) => Some(hi - lo + 1 - set.len() as u64),
        _ => Some(0),
    }
}

/// Why a history fetch stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {}{detail}", status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
pub struct HistoryError {
    pub url: String,
    pub status: Option<u16>,
    pub detail: String,
}

/// Pages the venue's history for `window` (at most `max_pages` calls), inside `limiter`; a 429/418
/// blocks the limiter for the venue's `Retry-After` and the call is retried (up to 5 times).
/// Returns every trade of the window the venue still has, in the venue's order.
pub async fn fetch_trades(
    http: &reqwest::Client,
    limiter: &RateLimiter,
    exchange: Exchange,
    rest: &str,
    inst: &Instrument,
    window: Window,
    max_pages: usize,
) -> Result<Vec<Event>, HistoryError> {
    if !supported(exchange) {
        return Err(HistoryError {
            url: rest.to_owned(),
            status: None,
            detail: format!("backfill not supported for this venue ({exchange})"),
        });
    }
    let mut cursor = first_cursor(exchange, window);
    let mut trades = Vec::new();
    for _ in 0..max_pages {
        let req = request(exchange, rest, inst, window, cursor);
        let body = get(http, limiter, &req).await?;
        let page = parse_page(
            exchange,
            inst,
            window,
            cursor,
            &body,
            marketprism_model::now_ms(),
        )
        .map_err(|e: ParseError| HistoryError {
            url: req.url.clone(),
            status: None,
            detail: e.to_string(),
        })?;
        trades.extend(page.trades);
        match page.next {
            Some(next) if next != cursor => cursor = next,
            Some(_) => {
                return Err(HistoryError {
                    url: req.url,
                    status: None,
                    detail: "the venue's answer did not move the cursor".into(),
                });
            }
            None => return Ok(trades),
        }
    }
    Err(HistoryError {
        url: request(exchange, rest, inst, window, cursor).url,
        status: None,
        detail: format!("more than {max_pages} pages for one window"),
    })
}

async fn get(
    http: &reqwest::Client,
    limiter: &RateLimiter,
    req: &HistoryRequest,
) -> Result<String, HistoryError> {
    let fail = |status: Option<u16>, detail: String| HistoryError {
        url: req.url.clone(),
        status,
        detail,
    };
    for _ in 0..5 {
        limiter.acquire(req.weight).await;
        let resp = http
            .get(&req.url)
            .send()
            .await
            .map_err(|e| fail(None, crate::instruments::error_chain(&e)))?;
        let status = resp.status().as_u16();
        if status == 429 || status == 418 {
            limiter.honour_rejection(status, resp.headers());
            continue;
        }
        let body = resp
            .text()
            .await
            .map_err(|e| fail(Some(status), crate::instruments::error_chain(&e)))?;
        if !(200..300).contains(&status) {
            return Err(fail(
                Some(status),
                crate::parse::truncate(&body, 300).to_owned(),
            ));
        }
        return Ok(body);
    }
    Err(fail(Some(429), "rate limited 5 times in a row".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::DataType;
    use marketprism_model::synthetic::synthetic_events;

    fn trade(id: &str, ts: i64) -> Event {
        let mut e = synthetic_events(1, 40)
            .into_iter()
            .find(|e| e.data_type() == DataType::Trades)
            .unwrap();
        e.ts_ms = ts;
        if let Payload::Trade(t) = &mut e.payload {
            t.trade_id = id.into();
        }
        e
    }

    fn ids(v: &[Event]) -> Vec<String> {
        v.iter()
            .map(|e| match &e.payload {
                Payload::Trade(t) => t.trade_id.clone(),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn missing_trades_are_the_fetched_ids_not_stored() {
        let fetched = vec![
            trade("9", 100),
            trade("10", 100),
            trade("11", 105),
            trade("12", 110),
            trade("11", 105),
            trade("13", 120),
            trade("14", 120),
        ];
        let stored = [
            Stored {
                trade_id: "10".into(),
                ts_ms: 100,
            },
            Stored {
                trade_id: "14".into(),
                ts_ms: 120,
            },
        ];
        assert_eq!(
            ids(&missing(fetched.clone(), &stored, false)),
            ["9", "11", "12", "13"]
        );
        // An aggregating stream: 13 and 9 share the time of a stored aggregate with a higher id.
        assert_eq!(ids(&missing(fetched, &stored, true)), ["11", "12"]);
    }

    #[test]
    fn holes_count_absent_ids_between_the_ends() {
        assert_eq!(id_holes(["5", "6", "9"]), Some(2));
        assert_eq!(id_holes(["5", "6", "7"]), Some(0));
        assert_eq!(id_holes([]), Some(0));
        assert_eq!(id_holes(["5", "ETH-7"]), None);
    }
}
