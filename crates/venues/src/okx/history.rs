//! OKX trade history, for `job backfill`: `GET /api/v5/market/history-trades?instId&type&after&limit`
//! ("Get trades history": newest first, at most 100 rows, `type=1` pages by `tradeId`, `type=2` by
//! `ts`, `after` = older than; 20 requests per 2 s per IP). The walk starts at the window's end by
//! time and continues backwards by trade id until it passes the window's start.
//!
//! History rows are single fills; the `trades` channel the collector streams pushes one row per taker
//! order (`tradeId` = its last fill, `count` fills), so a backfilled OKX stream holds fills where the
//! live one holds aggregates (same volume; [`crate::history::missing`] keeps a fill a stored aggregate counts out).
//!
//! Source: OKX API v5 docs, "Market Data → Get trades history".

use super::super::history::{Cursor, HistoryRequest, HistoryTrade, Page, Window, trade_event};
use crate::parse::{ParseError, ParseErrorReason, ParseResult, int_str};
use marketprism_model::instruments::Instrument;
use marketprism_model::{Exchange, Side};
use serde::Deserialize;

/// Rows per page (the endpoint's maximum).
const LIMIT: usize = 100;

#[derive(Deserialize)]
struct Reply<'a> {
    #[serde(borrow)]
    code: &'a str,
    #[serde(borrow, default)]
    msg: &'a str,
    #[serde(borrow, default)]
    data: Vec<Row<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    trade_id: &'a str,
    px: &'a str,
    sz: &'a str,
    side: &'a str,
    ts: &'a str,
}

pub fn request(rest: &str, inst: &Instrument, cursor: Cursor) -> HistoryRequest {
    let s = &inst.venue_symbol;
    let (kind, after) = match cursor {
        // `after` is exclusive: one past the window's end includes trades at its last ms.
        Cursor::Time(t) => (2, t + 1),
        Cursor::Id(id) => (1, id as i64),
    };
    HistoryRequest {
        url: format!(
            "{rest}/api/v5/market/history-trades?instId={s}&type={kind}&after={after}&limit={LIMIT}"
        ),
        weight: 2,
    }
}

pub(crate) fn parse_page(
    exchange: Exchange,
    inst: &Instrument,
    window: Window,
    body: &str,
    recv_ts_ms: i64,
) -> ParseResult<Page> {
    let reply: Reply = serde_json::from_str(body)?;
    if reply.code != "0" {
        return Err(ParseError::new(
            ParseErrorReason::VenueError,
            format!("code {}: {}", reply.code, reply.msg),
        ));
    }
    let mut trades = Vec::with_capacity(reply.data.len());
    let mut oldest: Option<(u64, i64)> = None;
    for r in &reply.data {
        let ts = int_str(r.ts, "ts")?;
        let id: u64 = r.trade_id.parse().map_err(|_| {
            ParseError::new(
                ParseErrorReason::BadNumber,
                format!("tradeId {}", r.trade_id),
            )
        })?;
        oldest = Some(oldest.map_or((id, ts), |(i, t)| if id < i { (id, ts) } else { (i, t) }));
        if !(window.from_ms..=window.to_ms).contains(&ts) {
            continue;
        }
        let side = match r.side {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            other => return Err(ParseError::new(ParseErrorReason::BadSide, other.to_owned())),
        };
        trades.push(trade_event(
            exchange,
            inst,
            HistoryTrade {
                trade_id: r.trade_id.to_owned(),
                ts_ms: ts,
                price: r.px,
                size: r.sz,
                taker: side,
            },
            recv_ts_ms,
        )?);
    }
    let next = match oldest {
        Some((id, ts)) if reply.data.len() >= LIMIT && ts >= window.from_ms => Some(Cursor::Id(id)),
        _ => None,
    };
    Ok(Page { trades, next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::instruments::SizeRule;
    use marketprism_model::{Decimal, MarketType, Payload, Symbol};
    use std::str::FromStr;

    fn swap() -> Instrument {
        Instrument {
            venue_symbol: "BTC-USDT-SWAP".into(),
            symbol: Symbol::new("BTC-USDT").unwrap(),
            market_type: MarketType::Perpetual,
            size: SizeRule::ContractsOfBase(Decimal::from_str("0.01").unwrap()),
            tick_size: None,
            lot_size: None,
            venue_type: "SWAP".into(),
        }
    }

    #[test]
    fn pages_backwards_and_converts_contracts_to_base() {
        let w = Window {
            from_ms: 1_630_048_897_000,
            to_ms: 1_630_048_898_000,
        };
        assert_eq!(
            request("https://o", &swap(), Cursor::Time(w.to_ms)).url,
            "https://o/api/v5/market/history-trades?instId=BTC-USDT-SWAP&type=2&after=1630048898001&limit=100"
        );
        // The documented row shape, newest first; the second row is before the window.
        let body = r#"{"code":"0","msg":"","data":[
            {"instId":"BTC-USDT-SWAP","side":"sell","sz":"3","px":"29963.2","tradeId":"242720720","ts":"1630048897897","source":"0"},
            {"instId":"BTC-USDT-SWAP","side":"buy","sz":"1","px":"29964.1","tradeId":"242720719","ts":"1630048896000","source":"0"}]}"#;
        let page = parse_page(Exchange::OkxDerivatives, &swap(), w, body, 0).unwrap();
        assert_eq!(page.next, None, "a short page is the last");
        assert_eq!(page.trades.len(), 1);
        let Payload::Trade(t) = &page.trades[0].payload else {
            panic!()
        };
        assert_eq!(t.trade_id, "242720720");
        assert_eq!(
            t.quantity,
            Decimal::from_str("0.03").unwrap(),
            "3 contracts of 0.01 BTC"
        );
        assert_eq!(t.side, Side::Sell);
        let err = parse_page(
            Exchange::OkxDerivatives,
            &swap(),
            w,
            r#"{"code":"51001","msg":"Instrument ID does not exist","data":[]}"#,
            0,
        )
        .unwrap_err();
        assert_eq!(err.reason, ParseErrorReason::VenueError);
    }

    #[test]
    fn a_full_page_continues_from_its_oldest_trade_id() {
        let w = Window {
            from_ms: 1_000_000_000_000,
            to_ms: 2_000_000_000_000,
        };
        let rows: Vec<String> = (0..100)
            .map(|k| {
                format!(
                    r#"{{"side":"buy","sz":"1","px":"10","tradeId":"{}","ts":"{}"}}"#,
                    900 - k,
                    1_500_000_000_000i64 - k
                )
            })
            .collect();
        let body = format!(r#"{{"code":"0","msg":"","data":[{}]}}"#, rows.join(","));
        let page = parse_page(Exchange::OkxSpot, &swap(), w, &body, 0).unwrap();
        assert_eq!(page.next, Some(Cursor::Id(801)));
        assert_eq!(
            request("https://o", &swap(), Cursor::Id(801)).url,
            "https://o/api/v5/market/history-trades?instId=BTC-USDT-SWAP&type=1&after=801&limit=100"
        );
    }
}
