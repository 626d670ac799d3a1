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
use std::collections::{HashMap, HashSet};

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
        Exchange::GateSpot
        | Exchange::GateDerivatives
        | Exchange::MexcSpot
        | Exchange::MexcDerivatives => HistoryRequest {
            url: rest.to_owned(),
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
        Exchange::GateSpot
        | Exchange::GateDerivatives
        | Exchange::MexcSpot
        | Exchange::MexcDerivatives => Err(ParseError::new(
            crate::parse::ParseErrorReason::UnknownMessage,
            format!("{NOT_SUPPORTED} ({exchange})"),
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
        Exchange::GateSpot | Exchange::GateDerivatives => "gate (backfill not supported)",
        Exchange::MexcSpot | Exchange::MexcDerivatives => "mexc (backfill not supported)",
    }
}

const NOT_SUPPORTED: &str = "backfill not supported for this venue";

/// Whether `job backfill` can fetch the venue's trade history, which [`fetch_trades`] otherwise
/// reports as an error: not for Gate (its `/spot/trades` and `/futures/usdt/trades` history is not
/// implemented) nor MEXC (its spot stream has no trade ids to match a history against).
pub fn supported(exchange: Exchange) -> bool {
    !matches!(
        exchange,
        Exchange::GateSpot
            | Exchange::GateDerivatives
            | Exchange::MexcSpot
            | Exchange::MexcDerivatives
    )
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

/// A trade already stored for the stream: its id, exchange time (UTC ms) and size as the venue sent
/// it (`raw_quantity`, in the venue's unit; `None` when not known).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stored {
    pub trade_id: String,
    pub ts_ms: i64,
    pub raw_quantity: Option<marketprism_model::Decimal>,
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

/// Of the `fetched` trades of a window, those the stream lost: every id not `stored`, sorted by
/// (time, id), each id once.
///
/// When the stream carries aggregates of the history's fills (`aggregated`, see [`stream_aggregates`]:
/// OKX, one row per taker order, its id the order's last fill, its size the sum of its fills), a stored
/// aggregate covers the fills of its time walking down from its own id until their sizes add up to its
/// `raw_quantity`, so a lost order beside a stored one of the same ms is still found missing. An
/// aggregate of unknown size, or whose own last fill the history lacks, covers every fill of its time
/// at or below its id (the rule cannot be exact without the size).
pub fn missing(fetched: Vec<Event>, stored: &[Stored], aggregated: bool) -> Vec<Event> {
    let ids: HashSet<&str> = stored.iter().map(|s| s.trade_id.as_str()).collect();
    let (walked, loose) = if aggregated {
        aggregate_cover(&fetched, stored)
    } else {
        (HashSet::new(), HashMap::new())
    };
    let covered = |e: &Event| {
        let id = trade_id(e);
        ids.contains(id)
            || walked.contains(id)
            || loose
                .get(&e.ts_ms)
                .is_some_and(|same: &Vec<&str>| same.iter().any(|s| !id_less(s, id)))
    };
    let mut out: Vec<Event> = fetched.into_iter().filter(|e| !covered(e)).collect();
    out.sort_by_cached_key(|e| {
        let id = trade_id(e);
        (e.ts_ms, id.parse::<u64>().ok(), id.to_owned())
    });
    out.dedup_by(|a, b| trade_id(a) == trade_id(b));
    out
}

/// The fills stored aggregates account for: (fill ids covered by an exact size walk, per time the
/// ids of aggregates that cover by the id rule alone).
fn aggregate_cover<'a>(
    fetched: &[Event],
    stored: &'a [Stored],
) -> (HashSet<String>, HashMap<i64, Vec<&'a str>>) {
    // Per time, the history's fills (id, size), highest id first.
    let mut fills: HashMap<i64, Vec<(&str, marketprism_model::Decimal)>> = HashMap::new();
    for e in fetched {
        if let Payload::Trade(t) = &e.payload {
            fills
                .entry(e.ts_ms)
                .or_default()
                .push((&t.trade_id, t.raw_quantity));
        }
    }
    for v in fills.values_mut() {
        v.sort_by(|a, b| {
            if id_less(a.0, b.0) {
                std::cmp::Ordering::Greater
            } else if id_less(b.0, a.0) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Equal
            }
        });
        v.dedup_by(|a, b| a.0 == b.0);
    }
    let mut walked = HashSet::new();
    let mut loose: HashMap<i64, Vec<&str>> = HashMap::new();
    for s in stored {
        let same = fills.get(&s.ts_ms).map(Vec::as_slice).unwrap_or_default();
        let mut below = same.iter().skip_while(|(id, _)| id_less(&s.trade_id, id));
        match (s.raw_quantity, below.clone().next()) {
            (Some(size), Some((last, _))) if *last == s.trade_id => {
                let mut sum = marketprism_model::Decimal::ZERO;
                for (id, q) in below.by_ref() {
                    walked.insert((*id).to_owned());
                    sum += *q;
                    if sum >= size {
                        break;
                    }
                }
            }
            _ => loose.entry(s.ts_ms).or_default().push(&s.trade_id),
        }
    }
    (walked, loose)
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
            detail: format!("{NOT_SUPPORTED} ({exchange})"),
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

    /// Gate's history is not implemented: a clear error naming the venue, and no request is sent
    /// (the URL points nowhere reachable; a request would fail differently).
    #[tokio::test]
    async fn gate_backfill_is_reported_as_not_supported() {
        assert!(!supported(Exchange::GateSpot) && !supported(Exchange::GateDerivatives));
        assert!(supported(Exchange::OkxSpot));
        let inst = crate::test_support::simulator_instruments(Exchange::GateDerivatives)
            .load()
            .by_venue("BTC_USDT")
            .unwrap()
            .clone();
        let window = Window {
            from_ms: 1_700_000_000_000,
            to_ms: 1_700_000_060_000,
        };
        let err = fetch_trades(
            &reqwest::Client::new(),
            &RateLimiter::new(1, 1.0),
            Exchange::GateDerivatives,
            "http://127.0.0.1:9",
            &inst,
            window,
            10,
        )
        .await
        .unwrap_err();
        assert!(
            err.detail.contains("backfill not supported")
                && err.detail.contains("gate_derivatives"),
            "{err:?}"
        );
        assert_eq!(err.url, "http://127.0.0.1:9", "nothing was fetched");
        assert!(parse_page(Exchange::GateSpot, &inst, window, Cursor::Time(0), "[]", 0).is_err());
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
                raw_quantity: None,
            },
            Stored {
                trade_id: "14".into(),
                ts_ms: 120,
                raw_quantity: None,
            },
        ];
        assert_eq!(
            ids(&missing(fetched.clone(), &stored, false)),
            ["9", "11", "12", "13"]
        );
        // An aggregating stream: 13 and 9 share the time of a stored aggregate with a higher id.
        assert_eq!(ids(&missing(fetched, &stored, true)), ["11", "12"]);
    }

    fn fill(id: &str, ts: i64, size: i64) -> Event {
        let mut e = trade(id, ts);
        if let Payload::Trade(t) = &mut e.payload {
            t.raw_quantity = size.into();
        }
        e
    }

    /// OKX: two taker orders in one ms, A = fills 101–103 (sizes 1, 2, 3) and B = 104–105 (1, 1).
    #[test]
    fn a_lost_aggregate_beside_a_stored_one_of_the_same_ms_is_missing() {
        let fetched = vec![
            fill("101", 100, 1),
            fill("102", 100, 2),
            fill("103", 100, 3),
            fill("104", 100, 1),
            fill("105", 100, 1),
        ];
        let agg = |id: &str, size: Option<i64>| Stored {
            trade_id: id.into(),
            ts_ms: 100,
            raw_quantity: size.map(Into::into),
        };
        assert_eq!(
            ids(&missing(fetched.clone(), &[agg("105", Some(2))], true)),
            ["101", "102", "103"],
            "B (size 2) covers 105 and 104 only: A was lost"
        );
        assert!(
            missing(
                fetched.clone(),
                &[agg("103", Some(6)), agg("105", Some(2))],
                true
            )
            .is_empty()
        );
        assert_eq!(
            ids(&missing(fetched.clone(), &[agg("103", Some(6))], true)),
            ["104", "105"],
            "A stored, B lost"
        );
        assert!(
            missing(fetched, &[agg("105", None)], true).is_empty(),
            "size unknown: the id rule (an over-cover) is all that is left"
        );
    }

    #[test]
    fn holes_count_absent_ids_between_the_ends() {
        assert_eq!(id_holes(["5", "6", "9"]), Some(2));
        assert_eq!(id_holes(["5", "6", "7"]), Some(0));
        assert_eq!(id_holes([]), Some(0));
        assert_eq!(id_holes(["5", "ETH-7"]), None);
    }
}
