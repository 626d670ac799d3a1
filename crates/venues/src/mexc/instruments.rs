//! MEXC instrument lists.
//!
//! | product line | endpoint | row | ours | sizes |
//! |---|---|---|---|---|
//! | spot | `GET https://api.mexc.com/api/v3/exchangeInfo` | `{"symbol":"BTCUSDT","status":"1","baseAsset":"BTC","quoteAsset":"USDT","quotePrecision":2,"baseSizePrecision":"0.000001",…}` | `BTC-USDT`, spot | base |
//! | derivatives | `GET https://contract.mexc.com/api/v1/contract/detail` | `{"symbol":"BTC_USDT","baseCoin":"BTC","quoteCoin":"USDT","settleCoin":"USDT","contractSize":0.0001,"priceUnit":0.1,"volUnit":1,"state":0,…}` | `BTC-USDT`, perpetual | contracts of `contractSize` base |
//!
//! Only tradable rows are listed: spot `status` `"1"` (older docs: `"ENABLED"`; 2 = paused, 3 = offline),
//! contract `state` 0 (1 delivering, 2 delivered, 3 offline, 4 paused). Only USDT-margined (linear,
//! `settleCoin == quoteCoin`) contracts are this product line's; coin-margined rows are left out.
//! Tick size: spot `10^-quotePrecision`, contracts `priceUnit`; lot size: spot `baseSizePrecision`,
//! contracts `volUnit` (contracts). Sources: MEXC Spot V3 docs "Exchange Information"; MEXC Futures
//! docs "Get the contract information".

use super::futures::rest_data;
use crate::instruments::each_row;
use crate::parse::{ParseError, ParseErrorReason, ParseResult, decimal, need};
use marketprism_model::instruments::{Instrument, SizeRule};
use marketprism_model::{Decimal, Exchange, MarketType, Symbol};
use serde::Deserialize;
use serde_json::value::RawValue;

/// The list's URL on `rest`.
pub(crate) fn listing_urls(exchange: Exchange, rest: &str) -> Vec<String> {
    match exchange {
        Exchange::MexcSpot => vec![format!("{rest}/api/v3/exchangeInfo")],
        _ => vec![format!("{rest}/api/v1/contract/detail")],
    }
}

#[derive(Deserialize)]
struct RawInfo<'a> {
    #[serde(borrow)]
    symbols: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpot<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    #[serde(borrow)]
    status: &'a RawValue,
    #[serde(borrow)]
    base_asset: &'a str,
    #[serde(borrow)]
    quote_asset: &'a str,
    #[serde(default)]
    quote_precision: Option<u32>,
    #[serde(borrow, default)]
    base_size_precision: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContract<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    #[serde(borrow)]
    base_coin: &'a str,
    #[serde(borrow)]
    quote_coin: &'a str,
    #[serde(borrow, default)]
    settle_coin: Option<&'a str>,
    #[serde(borrow)]
    contract_size: &'a RawValue,
    #[serde(borrow, default)]
    price_unit: Option<&'a RawValue>,
    #[serde(borrow, default)]
    vol_unit: Option<&'a RawValue>,
    #[serde(default)]
    state: i64,
}

/// A JSON number or string's text.
fn text(raw: &RawValue) -> &str {
    let t = raw.get();
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
}

/// One list body → the tradable instruments.
pub fn parse_listing(exchange: Exchange, body: &str) -> ParseResult<Vec<Instrument>> {
    match exchange {
        Exchange::MexcSpot => spot(body),
        _ => contracts(body),
    }
}

fn bad(symbol: &str, why: &str) -> ParseError {
    ParseError::new(
        ParseErrorReason::BadSymbol,
        format!("{}: {why}", symbol.chars().take(40).collect::<String>()),
    )
}

fn spot(body: &str) -> ParseResult<Vec<Instrument>> {
    let info: RawInfo = serde_json::from_str(body)?;
    each_row(Exchange::MexcSpot, &info.symbols, |row| {
        let s: RawSpot = serde_json::from_str(row)?;
        if !matches!(text(s.status), "1" | "ENABLED") {
            return Ok(None);
        }
        let symbol = Symbol::from_base_quote(s.base_asset, s.quote_asset)
            .map_err(|_| bad(s.symbol, "baseAsset/quoteAsset"))?;
        let tick_size = s
            .quote_precision
            .filter(|p| *p <= 18)
            .map(|p| Decimal::new(1, p));
        Ok(Some(Instrument {
            venue_symbol: s.symbol.to_owned(),
            symbol,
            market_type: MarketType::Spot,
            size: SizeRule::Base,
            tick_size,
            lot_size: s
                .base_size_precision
                .filter(|t| !t.is_empty())
                .map(decimal)
                .transpose()?,
            venue_type: "SPOT".into(),
        }))
    })
}

fn contracts(body: &str) -> ParseResult<Vec<Instrument>> {
    let rows: Vec<&RawValue> = serde_json::from_str(rest_data(body)?)?;
    each_row(Exchange::MexcDerivatives, &rows, |row| {
        let r: RawContract = serde_json::from_str(row)?;
        let linear = r.settle_coin.is_none_or(|s| s == r.quote_coin);
        if r.state != 0 || !linear {
            return Ok(None);
        }
        let symbol = Symbol::from_base_quote(r.base_coin, r.quote_coin)
            .map_err(|_| bad(r.symbol, "baseCoin/quoteCoin"))?;
        let size = decimal(text(r.contract_size))?;
        if size <= Decimal::ZERO {
            return Err(bad(r.symbol, "contractSize must be positive"));
        }
        let opt = |v: Option<&RawValue>| v.map(|v| decimal(text(v))).transpose();
        Ok(Some(Instrument {
            venue_symbol: need(Some(r.symbol), "symbol")?.to_owned(),
            symbol,
            market_type: MarketType::Perpetual,
            size: SizeRule::ContractsOfBase(size),
            tick_size: opt(r.price_unit)?,
            lot_size: opt(r.vol_unit)?,
            venue_type: "PERPETUAL".into(),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn a_spot_pair_named_in_chinese_characters_is_left_out_and_the_rest_listed() {
        let body = r#"{"symbols":[
          {"symbol":"币安人生USDT","status":"1","baseAsset":"币安人生","quoteAsset":"USDT","quotePrecision":4},
          {"symbol":"BTCUSDT","status":"1","baseAsset":"BTC","quoteAsset":"USDT","quotePrecision":2}]}"#;
        let l = parse_listing(Exchange::MexcSpot, body).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].symbol.as_str(), "BTC-USDT");
    }

    #[test]
    fn spot_rows_by_their_assets_and_only_tradable_ones() {
        // Shapes from the "Exchange Information" example (status "ENABLED" in older docs, "1" now).
        let body = r#"{"timezone":"CST","serverTime":1736409765052,"symbols":[
          {"symbol":"BTCUSDT","status":"1","baseAsset":"BTC","baseAssetPrecision":8,"quoteAsset":"USDT","quotePrecision":2,"quoteAssetPrecision":2,"baseSizePrecision":"0.000001","isSpotTradingAllowed":true},
          {"symbol":"TOMO3LUSDT","status":"ENABLED","baseAsset":"TOMO3L","quoteAsset":"USDT","quotePrecision":3,"baseSizePrecision":"0.0001"},
          {"symbol":"OLDUSDT","status":"3","baseAsset":"OLD","quoteAsset":"USDT","quotePrecision":3}]}"#;
        let l = parse_listing(Exchange::MexcSpot, body).unwrap();
        assert_eq!(l.len(), 2, "the offline row is not listed");
        assert_eq!(
            (l[0].venue_symbol.as_str(), l[0].symbol.as_str(), l[0].size),
            ("BTCUSDT", "BTC-USDT", SizeRule::Base)
        );
        assert_eq!(l[0].tick_size, Some(Decimal::from_str("0.01").unwrap()));
        assert_eq!(l[0].lot_size, Some(Decimal::from_str("0.000001").unwrap()));
        assert_eq!(l[1].symbol.as_str(), "TOMO3L-USDT");
        assert!(parse_listing(Exchange::MexcSpot, r#"{"symbols":[{"symbol":"X"}]}"#).is_err());
    }

    #[test]
    fn contract_rows_are_linear_perpetuals_with_their_contract_size() {
        let body = r#"{"success":true,"code":0,"data":[
          {"symbol":"BTC_USDT","displayName":"BTC_USDT永续","baseCoin":"BTC","quoteCoin":"USDT","settleCoin":"USDT","contractSize":0.0001,"priceUnit":0.1,"volUnit":1,"state":0},
          {"symbol":"BTC_USD","baseCoin":"BTC","quoteCoin":"USD","settleCoin":"BTC","contractSize":100,"priceUnit":0.5,"volUnit":1,"state":0},
          {"symbol":"DEAD_USDT","baseCoin":"DEAD","quoteCoin":"USDT","settleCoin":"USDT","contractSize":1,"state":3}]}"#;
        let l = parse_listing(Exchange::MexcDerivatives, body).unwrap();
        assert_eq!(
            l.len(),
            1,
            "coin-margined and offline rows are not this product line's"
        );
        assert_eq!(
            (
                l[0].venue_symbol.as_str(),
                l[0].symbol.as_str(),
                l[0].market_type
            ),
            ("BTC_USDT", "BTC-USDT", MarketType::Perpetual)
        );
        assert_eq!(
            l[0].size,
            SizeRule::ContractsOfBase(Decimal::from_str("0.0001").unwrap())
        );
        let err = parse_listing(
            Exchange::MexcDerivatives,
            r#"{"success":false,"code":510,"message":"Excessive frequency of requests"}"#,
        )
        .unwrap_err();
        assert_eq!(err.reason, ParseErrorReason::VenueError);
        let zero = r#"{"success":true,"code":0,"data":[{"symbol":"Z_USDT","baseCoin":"Z","quoteCoin":"USDT","contractSize":0,"state":0}]}"#;
        assert_eq!(
            parse_listing(Exchange::MexcDerivatives, zero)
                .unwrap_err()
                .reason,
            ParseErrorReason::BadSymbol
        );
    }
}
