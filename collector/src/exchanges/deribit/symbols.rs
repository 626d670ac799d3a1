//! Deribit instrument mapping, both ways.
//!
//! | Deribit | ours | market type |
//! |---|---|---|
//! | `BTC-PERPETUAL` (inverse, USD) | `BTC-USD` | perpetual |
//! | `BTC_USDC-PERPETUAL` (linear) | `BTC-USDC` | perpetual |
//! | `BTC-31DEC21-34000-P` | `BTC-USD-31DEC21-34000-P` | options |
//! | DVOL index `btc_usd` | `BTC-USD` | options (implied volatility of the options market) |

use crate::exchanges::parse::{ParseError, ParseErrorReason, ParseResult};
use crate::model::{MarketType, Symbol};

fn bad(name: &str) -> ParseError {
    ParseError::new(
        ParseErrorReason::BadSymbol,
        name.chars().take(40).collect::<String>(),
    )
}

/// Deribit instrument → (our symbol, market type).
pub fn from_venue(instrument: &str) -> ParseResult<(Symbol, MarketType)> {
    let (head, rest) = instrument.split_once('-').ok_or_else(|| bad(instrument))?;
    let pair = match head.split_once('_') {
        Some((base, quote)) => format!("{base}-{quote}"),
        None => format!("{head}-USD"),
    };
    let (name, market) = if rest == "PERPETUAL" {
        (pair, MarketType::Perpetual)
    } else if rest.ends_with("-C") || rest.ends_with("-P") {
        (format!("{pair}-{rest}"), MarketType::Options)
    } else {
        (format!("{pair}-{rest}"), MarketType::Perpetual)
    };
    Symbol::new(name)
        .map(|s| (s, market))
        .map_err(|_| bad(instrument))
}

/// Our symbol → Deribit instrument.
pub fn to_venue(symbol: &Symbol) -> String {
    let s = symbol.as_str();
    let mut parts = s.splitn(3, '-');
    let base = parts.next().unwrap_or_default();
    let quote = parts.next().unwrap_or_default();
    let head = if quote == "USD" {
        base.to_owned()
    } else {
        format!("{base}_{quote}")
    };
    match parts.next() {
        Some(rest) => format!("{head}-{rest}"),
        None => format!("{head}-PERPETUAL"),
    }
}

/// DVOL index name `btc_usd` → `BTC-USD`.
pub fn index_symbol(index_name: &str) -> ParseResult<Symbol> {
    let (base, quote) = index_name.split_once('_').ok_or_else(|| bad(index_name))?;
    Symbol::from_base_quote(base, quote).map_err(|_| bad(index_name))
}

/// `BTC-USD` → DVOL index name `btc_usd`.
pub fn to_index_name(symbol: &Symbol) -> String {
    let (base, quote) = symbol.base_quote();
    format!(
        "{}_{}",
        base.to_ascii_lowercase(),
        quote.to_ascii_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        for (venue, ours, market) in [
            ("BTC-PERPETUAL", "BTC-USD", MarketType::Perpetual),
            ("BTC_USDC-PERPETUAL", "BTC-USDC", MarketType::Perpetual),
            (
                "BTC-31DEC21-34000-P",
                "BTC-USD-31DEC21-34000-P",
                MarketType::Options,
            ),
        ] {
            let (s, m) = from_venue(venue).unwrap();
            assert_eq!((s.as_str(), m), (ours, market));
            assert_eq!(to_venue(&s), venue);
        }
        let dvol = index_symbol("btc_usd").unwrap();
        assert_eq!(dvol.as_str(), "BTC-USD");
        assert_eq!(to_index_name(&dvol), "btc_usd");
        for b in ["", "BTC", "btc-perpetual"] {
            assert!(from_venue(b).is_err(), "{b}");
        }
    }
}
