//! Deribit trade history, for `job backfill`:
//! `GET /api/v2/public/get_last_trades_by_instrument_and_time?instrument_name&start_timestamp&end_timestamp&count&sorting=asc`
//! (inclusive times, `count` ≤ 1000, `result.has_more` when the window holds more). The walk moves
//! `start_timestamp` to the last trade's time; trades at that ms come again and are de-duplicated by
//! id. A full page inside one ms cannot move the time on without skipping the rest of that ms, so the
//! walk then goes on by sequence: `GET /api/v2/public/get_last_trades_by_instrument?instrument_name&
//! start_seq&count&sorting=asc` from the last `trade_seq` + 1, until a trade lies past the window.
//! Sizes (`amount`) are in the instrument's unit (USD for inverse perpetuals), as on the stream.
//!
//! Source: Deribit API v2 docs, "public/get_last_trades_by_instrument_and_time" and
//! "public/get_last_trades_by_instrument" (`start_seq`, `count` ≤ 1000, `sorting`, `has_more`).

use super::super::history::{Cursor, HistoryRequest, HistoryTrade, Page, Window, trade_event};
use crate::parse::{ParseError, ParseErrorReason, ParseResult};
use marketprism_model::Exchange;
use marketprism_model::Side;
use marketprism_model::instruments::Instrument;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Trades per call (the method's maximum).
const COUNT: usize = 1000;

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    result: Option<Res<'a>>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Res<'a> {
    #[serde(borrow)]
    trades: Vec<Row<'a>>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
struct Row<'a> {
    trade_id: &'a str,
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(borrow)]
    amount: &'a RawValue,
    direction: &'a str,
    timestamp: i64,
    /// The instrument's trade sequence number (consecutive per instrument).
    #[serde(default)]
    trade_seq: Option<u64>,
}

pub fn request(rest: &str, inst: &Instrument, window: Window, cursor: Cursor) -> HistoryRequest {
    let start = match cursor {
        Cursor::Time(t) => t,
        Cursor::Id(seq) => {
            return HistoryRequest {
                url: format!(
                    "{rest}/api/v2/public/get_last_trades_by_instrument?instrument_name={}&start_seq={seq}&count={COUNT}&sorting=asc",
                    inst.venue_symbol
                ),
                weight: 1,
            };
        }
    };
    HistoryRequest {
        url: format!(
            "{rest}/api/v2/public/get_last_trades_by_instrument_and_time?instrument_name={}&start_timestamp={start}&end_timestamp={}&count={COUNT}&sorting=asc",
            inst.venue_symbol, window.to_ms
        ),
        weight: 1,
    }
}

pub(crate) fn parse_page(
    inst: &Instrument,
    window: Window,
    cursor: Cursor,
    body: &str,
    recv_ts_ms: i64,
) -> ParseResult<Page> {
    let reply: Reply = serde_json::from_str(body)?;
    let Some(res) = reply.result else {
        let detail = reply.error.map_or("no result", |e| e.get());
        return Err(ParseError::new(
            ParseErrorReason::VenueError,
            detail.to_owned(),
        ));
    };
    let mut trades = Vec::with_capacity(res.trades.len());
    for r in res
        .trades
        .iter()
        .filter(|r| (window.from_ms..=window.to_ms).contains(&r.timestamp))
    {
        let side = match r.direction {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            other => return Err(ParseError::new(ParseErrorReason::BadSide, other.to_owned())),
        };
        trades.push(trade_event(
            Exchange::DeribitDerivatives,
            inst,
            HistoryTrade {
                trade_id: r.trade_id.to_owned(),
                ts_ms: r.timestamp,
                price: r.price.get(),
                size: r.amount.get(),
                taker: side,
            },
            recv_ts_ms,
        )?);
    }
    let next = match (cursor, res.trades.last()) {
        (_, None) => None,
        // By sequence: on while the venue has more and the window is not passed.
        (Cursor::Id(_), Some(last)) if res.has_more && last.timestamp <= window.to_ms => {
            Some(Cursor::Id(next_seq(last)?))
        }
        (Cursor::Id(_), Some(_)) => None,
        // A full page inside one ms: the rest of that ms is reachable only by sequence.
        (Cursor::Time(start), Some(last)) if res.has_more && last.timestamp <= start => {
            Some(Cursor::Id(next_seq(last)?))
        }
        (Cursor::Time(_), Some(last)) if res.has_more => Some(Cursor::Time(last.timestamp)),
        (Cursor::Time(_), Some(_)) => None,
    };
    Ok(Page { trades, next })
}

/// The sequence number after `last`'s; a reply without `trade_seq` cannot be walked on without a hole.
fn next_seq(last: &Row<'_>) -> ParseResult<u64> {
    last.trade_seq.map(|s| s + 1).ok_or_else(|| {
        ParseError::new(
            ParseErrorReason::MissingField,
            format!(
                "trade_seq of trade {} (needed to page past a full page at {} ms)",
                last.trade_id, last.timestamp
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::instruments::SizeRule;
    use marketprism_model::{Decimal, MarketType, Payload, QuantityUnit, Symbol};
    use std::str::FromStr;

    fn perpetual() -> Instrument {
        Instrument {
            venue_symbol: "BTC-PERPETUAL".into(),
            symbol: Symbol::new("BTC-USD").unwrap(),
            market_type: MarketType::Perpetual,
            size: SizeRule::Quote,
            tick_size: None,
            lot_size: None,
            venue_type: "future".into(),
        }
    }

    #[test]
    fn inverse_amounts_become_base_and_has_more_moves_the_start() {
        let w = Window {
            from_ms: 1_700_000_000_000,
            to_ms: 1_700_000_100_000,
        };
        let r = request("https://d", &perpetual(), w, Cursor::Time(w.from_ms));
        assert!(r.url.ends_with("instrument_name=BTC-PERPETUAL&start_timestamp=1700000000000&end_timestamp=1700000100000&count=1000&sorting=asc"), "{}", r.url);
        let body = r#"{"jsonrpc":"2.0","result":{"trades":[
            {"trade_seq":1966056,"trade_id":"ETH-2696083","timestamp":1700000000500,"tick_direction":0,"price":50000.0,"mark_price":50001.1,"instrument_name":"BTC-PERPETUAL","index_price":50000.5,"direction":"sell","amount":100.0}],
            "has_more":true}}"#;
        let page = parse_page(&perpetual(), w, Cursor::Time(w.from_ms), body, 0).unwrap();
        assert_eq!(page.next, Some(Cursor::Time(1_700_000_000_500)));
        let Payload::Trade(t) = &page.trades[0].payload else {
            panic!()
        };
        assert_eq!(t.trade_id, "ETH-2696083");
        assert_eq!(t.quantity_unit, QuantityUnit::Quote);
        assert_eq!(
            t.quantity,
            Decimal::from_str("0.002").unwrap(),
            "100 USD at 50000"
        );
        let err = parse_page(
            &perpetual(),
            w,
            Cursor::Time(w.from_ms),
            r#"{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params"}}"#,
            0,
        )
        .unwrap_err();
        assert_eq!(err.reason, ParseErrorReason::VenueError);
    }

    /// A page of one ms with more to come goes on by sequence, never past the rest of that ms.
    #[test]
    fn a_full_page_inside_one_ms_goes_on_by_sequence_until_past_the_window() {
        const T0: i64 = 1_700_000_000_000;
        let w = Window {
            from_ms: T0 + 1_000,
            to_ms: T0 + 2_000,
        };
        let row = |seq: u64, ts: i64| {
            let ts = T0 + ts;
            format!(
                r#"{{"trade_seq":{seq},"trade_id":"{seq}","timestamp":{ts},"price":1.0,"direction":"buy","amount":10.0}}"#
            )
        };
        let page = |rows: &[String], more: bool| {
            format!(
                r#"{{"jsonrpc":"2.0","result":{{"trades":[{}],"has_more":{more}}}}}"#,
                rows.join(",")
            )
        };
        let p = parse_page(
            &perpetual(),
            w,
            Cursor::Time(T0 + 1_500),
            &page(&[row(7, 1_500), row(8, 1_500)], true),
            0,
        )
        .unwrap();
        assert_eq!(
            p.next,
            Some(Cursor::Id(9)),
            "stuck at 1500 ms: on by sequence"
        );
        let r = request("https://d", &perpetual(), w, Cursor::Id(9));
        assert!(
            r.url.ends_with("get_last_trades_by_instrument?instrument_name=BTC-PERPETUAL&start_seq=9&count=1000&sorting=asc"),
            "{}",
            r.url
        );
        let p = parse_page(
            &perpetual(),
            w,
            Cursor::Id(9),
            &page(&[row(9, 1_500), row(10, 1_900)], true),
            0,
        )
        .unwrap();
        assert_eq!((p.trades.len(), p.next), (2, Some(Cursor::Id(11))));
        let p = parse_page(
            &perpetual(),
            w,
            Cursor::Id(11),
            &page(&[row(11, 2_000), row(12, 2_500)], true),
            0,
        )
        .unwrap();
        assert_eq!(
            (p.trades.len(), p.next),
            (1, None),
            "the trade past the window is left out and ends the walk"
        );
        let no_seq = page(
            &[
                r#"{"trade_id":"x","timestamp":1700000001500,"price":1.0,"direction":"buy","amount":1.0}"#
                    .to_owned(),
            ],
            true,
        );
        let err = parse_page(&perpetual(), w, Cursor::Time(T0 + 1_500), &no_seq, 0).unwrap_err();
        assert_eq!(
            err.reason,
            ParseErrorReason::MissingField,
            "never a silent skip"
        );
    }
}
