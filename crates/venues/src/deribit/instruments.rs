//! Deribit instrument list: `GET /api/v2/public/get_instruments?currency=any&expired=false`.
//!
//! | kind / settlement | instrument | ours | market type | `amount` unit |
//! |---|---|---|---|---|
//! | future, perpetual, `reversed` | `BTC-PERPETUAL` | `BTC-USD` | perpetual | USD (quote) |
//! | future, perpetual, `linear` | `BTC_USDC-PERPETUAL` | `BTC-USDC` | perpetual | base |
//! | future, dated | `BTC-27JUN25` | `BTC-USD-27JUN25` | futures | USD (quote) when `reversed` |
//! | option | `BTC-27JUN25-100000-C` | `BTC-USD-27JUN25-100000-C` | options | base |
//!
//! Source: Deribit API v2 docs, `public/get_instruments` (`instrument_type` `reversed` = inverse,
//! amounts in USD; `linear` and options: amounts in the base currency).

use crate::parse::{ParseError, ParseErrorReason, ParseResult, decimal};
use marketprism_model::instruments::{Instrument, SizeRule};
use marketprism_model::{MarketType, Symbol};
use serde::Deserialize;
use serde_json::value::RawValue;

pub(crate) fn listing_urls(rest: &str) -> Vec<String> {
    vec![format!(
        "{rest}/api/v2/public/get_instruments?currency=any&expired=false"
    )]
}

#[derive(Deserialize)]
struct RawReply<'a> {
    #[serde(borrow)]
    result: Vec<RawInstrument<'a>>,
}

#[derive(Deserialize)]
struct RawInstrument<'a> {
    #[serde(borrow)]
    instrument_name: &'a str,
    #[serde(borrow)]
    kind: &'a str,
    #[serde(borrow, default)]
    settlement_period: Option<&'a str>,
    #[serde(borrow)]
    base_currency: &'a str,
    #[serde(borrow)]
    quote_currency: &'a str,
    #[serde(borrow, default)]
    instrument_type: Option<&'a str>,
    #[serde(borrow, default)]
    tick_size: Option<&'a RawValue>,
    #[serde(borrow, default)]
    min_trade_amount: Option<&'a RawValue>,
}

/// One `get_instruments` reply → instruments (combos and other kinds are not collected and skipped).
pub fn parse_listing(body: &str) -> ParseResult<Vec<Instrument>> {
    let reply: RawReply = serde_json::from_str(body)?;
    let mut out = Vec::with_capacity(reply.result.len());
    for r in reply.result {
        let bad = || {
            ParseError::new(
                ParseErrorReason::BadSymbol,
                r.instrument_name.chars().take(40).collect::<String>(),
            )
        };
        let pair = Symbol::from_base_quote(r.base_currency, r.quote_currency).map_err(|_| bad())?;
        let rest = r
            .instrument_name
            .split_once('-')
            .map(|(_, t)| t)
            .ok_or_else(bad)?;
        let inverse = r.instrument_type == Some("reversed");
        let (symbol, market_type, size) = match (r.kind, r.settlement_period) {
            ("future", Some("perpetual")) => (
                pair,
                MarketType::Perpetual,
                if inverse {
                    SizeRule::Quote
                } else {
                    SizeRule::Base
                },
            ),
            ("future", _) => (
                Symbol::new(format!("{pair}-{rest}")).map_err(|_| bad())?,
                MarketType::Futures,
                if inverse {
                    SizeRule::Quote
                } else {
                    SizeRule::Base
                },
            ),
            ("option", _) => (
                Symbol::new(format!("{pair}-{rest}")).map_err(|_| bad())?,
                MarketType::Options,
                SizeRule::Base,
            ),
            _ => continue,
        };
        out.push(Instrument {
            venue_symbol: r.instrument_name.to_owned(),
            symbol,
            market_type,
            size,
            tick_size: r.tick_size.map(|v| decimal(v.get())).transpose()?,
            lot_size: r.min_trade_amount.map(|v| decimal(v.get())).transpose()?,
            venue_type: r.kind.to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perpetuals_futures_and_options() {
        let body = r#"{"jsonrpc":"2.0","result":[
          {"instrument_name":"BTC-PERPETUAL","kind":"future","settlement_period":"perpetual","base_currency":"BTC","quote_currency":"USD","counter_currency":"USD","instrument_type":"reversed","contract_size":10.0,"tick_size":0.5,"min_trade_amount":10.0},
          {"instrument_name":"BTC_USDC-PERPETUAL","kind":"future","settlement_period":"perpetual","base_currency":"BTC","quote_currency":"USDC","instrument_type":"linear","tick_size":1,"min_trade_amount":0.001},
          {"instrument_name":"BTC-27JUN25","kind":"future","settlement_period":"quarter","base_currency":"BTC","quote_currency":"USD","instrument_type":"reversed","tick_size":2.5,"min_trade_amount":10},
          {"instrument_name":"BTC-27JUN25-100000-C","kind":"option","settlement_period":"quarter","base_currency":"BTC","quote_currency":"USD","instrument_type":"reversed","tick_size":0.0001,"min_trade_amount":0.1},
          {"instrument_name":"BTC-FS-27JUN25_PERP","kind":"future_combo","base_currency":"BTC","quote_currency":"USD"}]}"#;
        let l = parse_listing(body).unwrap();
        let got: Vec<_> = l
            .iter()
            .map(|i| (i.symbol.as_str(), i.market_type, i.size))
            .collect();
        assert_eq!(
            got,
            [
                ("BTC-USD", MarketType::Perpetual, SizeRule::Quote),
                ("BTC-USDC", MarketType::Perpetual, SizeRule::Base),
                ("BTC-USD-27JUN25", MarketType::Futures, SizeRule::Quote),
                (
                    "BTC-USD-27JUN25-100000-C",
                    MarketType::Options,
                    SizeRule::Base
                ),
            ]
        );
        assert_eq!(l[0].tick_size.unwrap().to_string(), "0.5");
    }
}
