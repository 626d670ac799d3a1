//! Gate instrument lists.
//!
//! | product line | endpoint | venue name | ours | sizes |
//! |---|---|---|---|---|
//! | spot | `GET /api/v4/spot/currency_pairs` | `id` `BTC_USDT` | `BTC-USDT` (`base`-`quote`) | base |
//! | USDT perpetuals | `GET /api/v4/futures/usdt/contracts` | `name` `BTC_USDT` | `BTC-USDT` | contracts of `quanto_multiplier` base |
//!
//! Spot rows carry `precision` (price decimals) and `amount_precision` (amount decimals): tick and lot
//! are `10^-precision`, `10^-amount_precision`. A pair whose `trade_status` is `untradable` is not
//! listed (nothing trades there). Contract rows carry `type` (`direct` = linear, sized in contracts of
//! `quanto_multiplier` base units), `order_price_round` (tick), `order_size_min` (contracts); a contract
//! with `status` `delisted` is not listed. Source: Gate API v4 docs, "List all currency pairs supported",
//! "List all futures contracts".

use crate::instruments::each_row;
use crate::parse::{ParseError, ParseErrorReason, ParseResult, decimal};
use marketprism_model::instruments::{Instrument, SizeRule};
use marketprism_model::{Decimal, Exchange, MarketType, Symbol};
use serde::Deserialize;
use serde_json::value::RawValue;

pub(crate) fn listing_urls(exchange: Exchange, rest: &str) -> Vec<String> {
    match exchange {
        Exchange::GateSpot => vec![format!("{rest}/api/v4/spot/currency_pairs")],
        _ => vec![format!("{rest}/api/v4/futures/usdt/contracts")],
    }
}

#[derive(Deserialize)]
struct RawPair<'a> {
    #[serde(borrow)]
    id: &'a str,
    #[serde(borrow)]
    base: &'a str,
    #[serde(borrow)]
    quote: &'a str,
    #[serde(default)]
    precision: Option<u32>,
    #[serde(default)]
    amount_precision: Option<u32>,
    #[serde(borrow, default)]
    trade_status: Option<&'a str>,
}

#[derive(Deserialize)]
struct RawContract<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(borrow, default, rename = "type")]
    kind: Option<&'a str>,
    #[serde(borrow)]
    quanto_multiplier: &'a str,
    #[serde(borrow, default)]
    order_price_round: Option<&'a str>,
    /// Integer in older answers, string in newer ones.
    #[serde(borrow, default)]
    order_size_min: Option<&'a RawValue>,
    #[serde(borrow, default)]
    status: Option<&'a str>,
}

/// The text of a JSON number or string (quotes removed).
pub(crate) fn num_text(raw: &RawValue) -> &str {
    let t = raw.get();
    t.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(t)
}

fn step(decimals: u32) -> Option<Decimal> {
    (decimals <= 18).then(|| Decimal::new(1, decimals))
}

fn bad(name: &str, why: &str) -> ParseError {
    ParseError::new(
        ParseErrorReason::BadSymbol,
        format!("{}: {why}", name.chars().take(40).collect::<String>()),
    )
}

/// One list body → instruments.
pub fn parse_listing(exchange: Exchange, body: &str) -> ParseResult<Vec<Instrument>> {
    let rows: Vec<&RawValue> = serde_json::from_str(body)?;
    if exchange == Exchange::GateSpot {
        return each_row(exchange, &rows, |row| {
            let r: RawPair = serde_json::from_str(row)?;
            if r.trade_status == Some("untradable") {
                return Ok(None);
            }
            let symbol =
                Symbol::from_base_quote(r.base, r.quote).map_err(|_| bad(r.id, "base/quote"))?;
            Ok(Some(Instrument {
                venue_symbol: r.id.to_owned(),
                symbol,
                market_type: MarketType::Spot,
                size: SizeRule::Base,
                tick_size: r.precision.and_then(step),
                lot_size: r.amount_precision.and_then(step),
                venue_type: "spot".into(),
            }))
        });
    }
    each_row(exchange, &rows, |row| {
        let r: RawContract = serde_json::from_str(row)?;
        if r.status == Some("delisted") {
            return Ok(None);
        }
        let (base, quote) = r.name.split_once('_').ok_or_else(|| bad(r.name, "name"))?;
        let symbol = Symbol::from_base_quote(base, quote).map_err(|_| bad(r.name, "name"))?;
        if r.kind.is_some_and(|k| k != "direct") {
            return Err(bad(r.name, "not a direct (linear) contract"));
        }
        let multiplier = decimal(r.quanto_multiplier)?;
        if multiplier <= Decimal::ZERO {
            return Err(bad(r.name, "quanto_multiplier must be positive"));
        }
        Ok(Some(Instrument {
            venue_symbol: r.name.to_owned(),
            symbol,
            market_type: MarketType::Perpetual,
            size: SizeRule::ContractsOfBase(multiplier),
            tick_size: r.order_price_round.map(decimal).transpose()?,
            lot_size: r.order_size_min.map(|v| decimal(num_text(v))).transpose()?,
            venue_type: "futures".into(),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// One row that cannot be mapped (a pair named in Chinese characters, an escaped name, an inverse
    /// contract) is left out; the rest of the list is used.
    #[test]
    fn an_unmappable_row_is_left_out_and_the_rest_listed() {
        let spot = r#"[{"id":"币安人生_USDT","base":"币安人生","quote":"USDT","trade_status":"tradable"},
                      {"id":"\u5e01_USDT","base":"\u5e01","quote":"USDT"},
                      {"id":"BTC_USDT","base":"BTC","quote":"USDT","precision":2,"amount_precision":4,"trade_status":"tradable"}]"#;
        let l = parse_listing(Exchange::GateSpot, spot).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].symbol.as_str(), "BTC-USDT");
        let futures = r#"[{"name":"BTC_USD","type":"inverse","quanto_multiplier":"0"},
                         {"name":"ETH_USDT","type":"direct","quanto_multiplier":"0.01"}]"#;
        let l = parse_listing(Exchange::GateDerivatives, futures).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].symbol.as_str(), "ETH-USDT");
        assert!(
            parse_listing(
                Exchange::GateDerivatives,
                r#"[{"name":"BTC_USD","type":"inverse","quanto_multiplier":"1"}]"#
            )
            .is_err(),
            "a list none of whose rows maps is an error"
        );
    }

    #[test]
    fn contracts_are_linear_perpetuals_in_contracts_of_the_multiplier() {
        let body = r#"[{"name":"BTC_USDT","type":"direct","quanto_multiplier":"0.0001","order_price_round":"0.1","order_size_min":1,"in_delisting":false,"funding_interval":28800,"funding_next_apply":1610035200,"status":"trading"},
                       {"name":"ETH_USDT","type":"direct","quanto_multiplier":"0.01","order_price_round":"0.01","order_size_min":"1"},
                       {"name":"OLD_USDT","type":"direct","quanto_multiplier":"1","status":"delisted"}]"#;
        let l = parse_listing(Exchange::GateDerivatives, body).unwrap();
        assert_eq!(l.len(), 2, "the delisted contract is left out");
        let d = |s| Decimal::from_str(s).unwrap();
        assert_eq!(
            (
                l[0].symbol.as_str(),
                l[0].venue_symbol.as_str(),
                l[0].market_type,
                l[0].size
            ),
            (
                "BTC-USDT",
                "BTC_USDT",
                MarketType::Perpetual,
                SizeRule::ContractsOfBase(d("0.0001"))
            )
        );
        assert_eq!(
            (l[1].tick_size, l[1].lot_size),
            (Some(d("0.01")), Some(d("1")))
        );
        for bad in [
            r#"[{"name":"BTCUSDT","type":"direct","quanto_multiplier":"1"}]"#,
            r#"[{"name":"BTC_USD","type":"inverse","quanto_multiplier":"0"}]"#,
            r#"[{"name":"BTC_USDT","type":"direct","quanto_multiplier":"0"}]"#,
        ] {
            assert_eq!(
                parse_listing(Exchange::GateDerivatives, bad)
                    .unwrap_err()
                    .reason,
                ParseErrorReason::BadSymbol,
                "{bad}"
            );
        }
        assert_eq!(
            parse_listing(Exchange::GateDerivatives, r#"{"label":"X"}"#)
                .unwrap_err()
                .reason,
            ParseErrorReason::InvalidJson
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            listing_urls(Exchange::GateSpot, "https://api.gateio.ws"),
            ["https://api.gateio.ws/api/v4/spot/currency_pairs"]
        );
        assert_eq!(
            listing_urls(Exchange::GateDerivatives, "http://a/gate_derivatives"),
            ["http://a/gate_derivatives/api/v4/futures/usdt/contracts"]
        );
    }
}
