//! Binance instrument lists: spot `GET /api/v3/exchangeInfo`, USD-M `GET /fapi/v1/exchangeInfo`.
//! Each `symbols[]` row names its `baseAsset` and `quoteAsset`, so `BNBUSD` is `BNB-USD` by the venue's
//! word, never by matching quote suffixes. USD-M quantities are base-asset (the venue's docs: `q` in
//! base asset); delivery contracts (`BTCUSDT_250627`, `contractType` `CURRENT_QUARTER`/`NEXT_QUARTER`)
//! are `futures` named `BTC-USDT-250627`.

use crate::parse::{ParseError, ParseErrorReason, ParseResult, decimal};
use marketprism_model::instruments::{Instrument, SizeRule};
use marketprism_model::{Exchange, MarketType, Symbol};
use serde::Deserialize;

/// The list's URL(s) on `rest`.
pub(crate) fn listing_urls(exchange: Exchange, rest: &str) -> Vec<String> {
    match exchange {
        Exchange::BinanceSpot => vec![format!("{rest}/api/v3/exchangeInfo")],
        _ => vec![format!("{rest}/fapi/v1/exchangeInfo")],
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInfo<'a> {
    #[serde(borrow)]
    symbols: Vec<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSymbol<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    #[serde(borrow)]
    base_asset: &'a str,
    #[serde(borrow)]
    quote_asset: &'a str,
    #[serde(borrow, default)]
    contract_type: Option<&'a str>,
    #[serde(borrow, default)]
    filters: Vec<RawFilter<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFilter<'a> {
    #[serde(borrow)]
    filter_type: &'a str,
    #[serde(borrow, default)]
    tick_size: Option<&'a str>,
    #[serde(borrow, default)]
    step_size: Option<&'a str>,
}

/// One `exchangeInfo` body → instruments. A row whose assets do not form a symbol is an error: the
/// list is the venue's word, so a list we cannot read is not used at all.
pub fn parse_listing(exchange: Exchange, body: &str) -> ParseResult<Vec<Instrument>> {
    let info: RawInfo = serde_json::from_str(body)?;
    crate::instruments::each_row(exchange, &info.symbols, |row| {
        let s: RawSymbol = serde_json::from_str(row)?;
        let bad = || {
            ParseError::new(
                ParseErrorReason::BadSymbol,
                format!("{} ({}/{})", s.symbol, s.base_asset, s.quote_asset),
            )
        };
        let pair = Symbol::from_base_quote(s.base_asset, s.quote_asset).map_err(|_| bad())?;
        let (symbol, market_type) = match (exchange, s.contract_type) {
            (Exchange::BinanceSpot, _) => (pair, MarketType::Spot),
            (_, Some("PERPETUAL") | None) => (pair, MarketType::Perpetual),
            (_, Some(_)) => {
                // Delivery: `BTCUSDT_250627` → `BTC-USDT-250627`.
                let expiry = s.symbol.rsplit_once('_').map(|(_, e)| e).ok_or_else(bad)?;
                let named = Symbol::new(format!("{pair}-{expiry}")).map_err(|_| bad())?;
                (named, MarketType::Futures)
            }
        };
        let filter = |t: &str| s.filters.iter().find(|f| f.filter_type == t);
        Ok(Some(Instrument {
            venue_symbol: s.symbol.to_owned(),
            symbol,
            market_type,
            size: SizeRule::Base,
            tick_size: filter("PRICE_FILTER")
                .and_then(|f| f.tick_size)
                .map(decimal)
                .transpose()?,
            lot_size: filter("LOT_SIZE")
                .and_then(|f| f.step_size)
                .map(decimal)
                .transpose()?,
            venue_type: s.contract_type.unwrap_or("SPOT").to_owned(),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binance spot lists pairs named in Chinese characters (e.g. `币安人生USDT`, 2025): such a row is
    /// left out and counted; the rest of the list is used.
    #[test]
    fn a_pair_named_in_chinese_characters_is_left_out_and_the_rest_listed() {
        let body = r#"{"symbols":[
          {"symbol":"币安人生USDT","baseAsset":"币安人生","quoteAsset":"USDT","filters":[]},
          {"symbol":"BTCUSDT","baseAsset":"BTC","quoteAsset":"USDT","filters":[]}]}"#;
        let l = parse_listing(Exchange::BinanceSpot, body).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].symbol.as_str(), "BTC-USDT");
    }

    #[test]
    fn assets_name_the_pair() {
        let body = r#"{"timezone":"UTC","symbols":[
          {"symbol":"BNBUSD","status":"TRADING","baseAsset":"BNB","quoteAsset":"USD","filters":[{"filterType":"PRICE_FILTER","tickSize":"0.0100"},{"filterType":"LOT_SIZE","stepSize":"0.00100000"}]},
          {"symbol":"BTCEURI","status":"TRADING","baseAsset":"BTC","quoteAsset":"EURI","filters":[]}]}"#;
        let list = parse_listing(Exchange::BinanceSpot, body).unwrap();
        assert_eq!(list[0].symbol.as_str(), "BNB-USD");
        assert_eq!(list[0].tick_size.unwrap().to_string(), "0.0100");
        assert_eq!(list[0].lot_size.unwrap().to_string(), "0.00100000");
        assert_eq!(list[1].symbol.as_str(), "BTC-EURI");
        assert_eq!(list[1].market_type, MarketType::Spot);
    }

    #[test]
    fn usdm_delivery_contracts_are_futures() {
        let body = r#"{"symbols":[
          {"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","baseAsset":"BTC","quoteAsset":"USDT","filters":[]},
          {"symbol":"BTCUSDT_250627","pair":"BTCUSDT","contractType":"CURRENT_QUARTER","baseAsset":"BTC","quoteAsset":"USDT","filters":[]}]}"#;
        let list = parse_listing(Exchange::BinanceDerivatives, body).unwrap();
        assert_eq!(
            (list[0].symbol.as_str(), list[0].market_type),
            ("BTC-USDT", MarketType::Perpetual)
        );
        assert_eq!(
            (list[1].symbol.as_str(), list[1].market_type),
            ("BTC-USDT-250627", MarketType::Futures)
        );
        assert!(
            parse_listing(
                Exchange::BinanceSpot,
                r#"{"symbols":[{"symbol":"X","baseAsset":"","quoteAsset":"USD"}]}"#
            )
            .is_err()
        );
    }
}
