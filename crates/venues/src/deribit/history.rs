//! Deribit trade history, for `job backfill`:
//! `GET /api/v2/public/get_last_trades_by_instrument_and_time?instrument_name&start_timestamp&end_timestamp&count&sorting=asc`
//! (inclusive times, `count` ≤ 1000, `result.has_more` when the window holds more). The walk moves
//! `start_timestamp` to the last trade's time; trades at that ms come again and are de-duplicated by
//! id. Sizes (`amount`) are in the instrument's unit (USD for inverse perpetuals), as on the stream.
//!
//! Source: Deribit API v2 docs, "public/get_last_trades_by_instrument_and_time".

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
}

pub fn request(rest: &str, inst: &Instrument, window: Window, cursor: Cursor) -> HistoryRequest {
    let start = match cursor {
        Cursor::Time(t) => t,
        Cursor::Id(_) => window.from_ms,
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
    let start = match cursor {
        Cursor::Time(t) => t,
        Cursor::Id(_) => window.from_ms,
    };
    let next = match res.trades.last() {
        // More than a page in one ms: step past it (the rest of that ms is not reachable by time).
        Some(last) if res.has_more && last.timestamp <= start => Some(Cursor::Time(start + 1)),
        Some(last) if res.has_more => Some(Cursor::Time(last.timestamp)),
        _ => None,
    };
    Ok(Page { trades, next })
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
}
