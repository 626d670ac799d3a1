//! OKX instrument lists: `GET /api/v5/public/instruments?instType=SPOT|SWAP|FUTURES`.
//!
//! | instType | instId | ours | market type | sizes (`sz`, `oi`) |
//! |---|---|---|---|---|
//! | SPOT | `BTC-USDT` | `BTC-USDT` (`baseCcy-quoteCcy`) | spot | base |
//! | SWAP | `BTC-USDT-SWAP` | `BTC-USDT` (`uly`) | perpetual | contracts of `ctVal` `ctValCcy` |
//! | FUTURES | `BTC-USD-220527` | `BTC-USD-220527` | futures | contracts of `ctVal` `ctValCcy` |
//!
//! `ctValCcy` = the base asset (linear, `ctType` `linear`): base = contracts × ctVal × ctMult;
//! `ctValCcy` = the quote currency (inverse, e.g. 100 USD per contract): base = contracts × ctVal × ctMult / price.
//! Source: OKX API v5 docs, "Get instruments" (public data REST), and exchange-protocols.md §3.10.

use crate::parse::{ParseError, ParseErrorReason, ParseResult, decimal, need};
use marketprism_model::instruments::{Instrument, SizeRule};
use marketprism_model::{Exchange, MarketType, Symbol};
use serde::Deserialize;

/// The instrument types this product line lists.
pub fn inst_types(exchange: Exchange) -> &'static [&'static str] {
    match exchange {
        Exchange::OkxSpot => &["SPOT"],
        _ => &["SWAP", "FUTURES"],
    }
}

pub(crate) fn listing_urls(exchange: Exchange, rest: &str) -> Vec<String> {
    inst_types(exchange)
        .iter()
        .map(|t| format!("{rest}/api/v5/public/instruments?instType={t}"))
        .collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawInstrument<'a> {
    #[serde(borrow)]
    inst_type: &'a str,
    #[serde(borrow)]
    inst_id: &'a str,
    #[serde(borrow, default)]
    uly: Option<&'a str>,
    #[serde(borrow, default)]
    inst_family: Option<&'a str>,
    #[serde(borrow, default)]
    base_ccy: Option<&'a str>,
    #[serde(borrow, default)]
    quote_ccy: Option<&'a str>,
    #[serde(borrow, default)]
    ct_val: Option<&'a str>,
    #[serde(borrow, default)]
    ct_mult: Option<&'a str>,
    #[serde(borrow, default)]
    ct_val_ccy: Option<&'a str>,
    #[serde(borrow, default)]
    tick_sz: Option<&'a str>,
    #[serde(borrow, default)]
    lot_sz: Option<&'a str>,
}

fn nonempty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// One `public/instruments` reply → instruments (an unmappable row is left out and counted).
pub fn parse_listing(
    exchange: marketprism_model::Exchange,
    body: &str,
) -> ParseResult<Vec<Instrument>> {
    let data = super::parse::rest_data(body)?;
    let rows: Vec<&serde_json::value::RawValue> = serde_json::from_str(data)?;
    crate::instruments::each_row(exchange, &rows, |row| {
        instrument(serde_json::from_str(row)?).map(Some)
    })
}

fn instrument(r: RawInstrument<'_>) -> ParseResult<Instrument> {
    let bad = |why: &str| {
        ParseError::new(
            ParseErrorReason::BadSymbol,
            format!("{}: {why}", r.inst_id.chars().take(40).collect::<String>()),
        )
    };
    let (symbol, market_type, size) = if r.inst_type == "SPOT" {
        let base = need(nonempty(r.base_ccy), "baseCcy")?;
        let quote = need(nonempty(r.quote_ccy), "quoteCcy")?;
        let s = Symbol::from_base_quote(base, quote).map_err(|_| bad("baseCcy/quoteCcy"))?;
        (s, MarketType::Spot, SizeRule::Base)
    } else {
        let family = need(nonempty(r.inst_family).or(nonempty(r.uly)), "uly")?;
        let (base, quote) = family.split_once('-').ok_or_else(|| bad("uly"))?;
        let (name, market_type) = match r.inst_type {
            "SWAP" => (family, MarketType::Perpetual),
            "FUTURES" => (r.inst_id, MarketType::Futures),
            "OPTION" => (r.inst_id, MarketType::Options),
            _ => return Err(bad("unknown instType")),
        };
        let s = Symbol::new(name).map_err(|_| bad("name"))?;
        let ct_val = decimal(need(nonempty(r.ct_val), "ctVal")?)?;
        let mult = nonempty(r.ct_mult).map(decimal).transpose()?;
        let value = mult.map_or(ct_val, |m| ct_val * m);
        let size = match need(nonempty(r.ct_val_ccy), "ctValCcy")? {
            c if c == base => SizeRule::ContractsOfBase(value),
            c if c == quote => SizeRule::ContractsOfQuote(value),
            _ => return Err(bad("ctValCcy is neither base nor quote")),
        };
        (s, market_type, size)
    };
    Ok(Instrument {
        venue_symbol: r.inst_id.to_owned(),
        symbol,
        market_type,
        size,
        tick_size: nonempty(r.tick_sz).map(decimal).transpose()?,
        lot_size: nonempty(r.lot_sz).map(decimal).transpose()?,
        venue_type: r.inst_type.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn swap_futures_and_spot_rows() {
        let body = r#"{"code":"0","msg":"","data":[
          {"instType":"SWAP","instId":"BTC-USD-SWAP","uly":"BTC-USD","instFamily":"BTC-USD","baseCcy":"","quoteCcy":"","settleCcy":"BTC","ctVal":"100","ctMult":"1","ctValCcy":"USD","ctType":"inverse","tickSz":"0.1","lotSz":"1","state":"live"},
          {"instType":"FUTURES","instId":"BTC-USD-220527","uly":"BTC-USD","instFamily":"BTC-USD","ctVal":"100","ctMult":"1","ctValCcy":"USD","ctType":"inverse","tickSz":"0.1","lotSz":"1","expTime":"1653638400000"},
          {"instType":"SWAP","instId":"ETH-USDT-SWAP","uly":"ETH-USDT","ctVal":"0.1","ctMult":"1","ctValCcy":"ETH","ctType":"linear","tickSz":"0.01","lotSz":"1"},
          {"instType":"SPOT","instId":"BTC-USDT","baseCcy":"BTC","quoteCcy":"USDT","ctVal":"","ctValCcy":"","tickSz":"0.1","lotSz":"0.00000001"}]}"#;
        let l = parse_listing(marketprism_model::Exchange::OkxDerivatives, body).unwrap();
        let d = |s| rust_decimal::Decimal::from_str(s).unwrap();
        assert_eq!(
            (l[0].symbol.as_str(), l[0].market_type, l[0].size),
            (
                "BTC-USD",
                MarketType::Perpetual,
                SizeRule::ContractsOfQuote(d("100"))
            )
        );
        assert_eq!(
            (l[1].symbol.as_str(), l[1].market_type),
            ("BTC-USD-220527", MarketType::Futures)
        );
        assert_eq!(l[2].size, SizeRule::ContractsOfBase(d("0.1")));
        assert_eq!(
            (l[3].symbol.as_str(), l[3].size),
            ("BTC-USDT", SizeRule::Base)
        );
        let err = parse_listing(marketprism_model::Exchange::OkxDerivatives, r#"{"code":"0","data":[{"instType":"SWAP","instId":"X-Y-SWAP","uly":"X-Y","ctVal":"1","ctValCcy":"Z"}]}"#).unwrap_err();
        assert_eq!(err.reason, ParseErrorReason::BadSymbol);
    }
}
