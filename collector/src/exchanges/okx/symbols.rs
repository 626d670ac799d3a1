//! OKX instrument mapping, both ways: `BTC-USDT` ⇄ `BTC-USDT` (spot) / `BTC-USDT-SWAP` (perpetual).
//! Dated futures and options keep their suffix (`BTC-USD-251226-4000-C`).

use crate::exchanges::parse::{ParseError, ParseErrorReason, ParseResult};
use crate::model::{Exchange, MarketType, Symbol};

/// Our symbol → the venue's `instId` for this product line.
pub fn to_venue(exchange: Exchange, symbol: &Symbol) -> String {
    match exchange {
        Exchange::OkxDerivatives if symbol.as_str().matches('-').count() == 1 => {
            format!("{symbol}-SWAP")
        }
        _ => symbol.as_str().to_owned(),
    }
}

/// `instId` → (our symbol, market type).
pub fn from_venue(inst_id: &str) -> ParseResult<(Symbol, MarketType)> {
    let bad = || {
        ParseError::new(
            ParseErrorReason::BadSymbol,
            inst_id.chars().take(40).collect::<String>(),
        )
    };
    let parts = inst_id.split('-').count();
    let (name, market) = if let Some(pair) = inst_id.strip_suffix("-SWAP") {
        (pair, MarketType::Perpetual)
    } else if parts == 5 && (inst_id.ends_with("-C") || inst_id.ends_with("-P")) {
        (inst_id, MarketType::Options)
    } else if parts == 2 {
        (inst_id, MarketType::Spot)
    } else {
        (inst_id, MarketType::Perpetual)
    };
    Symbol::new(name).map(|s| (s, market)).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        let btc = Symbol::new("BTC-USDT").unwrap();
        assert_eq!(to_venue(Exchange::OkxSpot, &btc), "BTC-USDT");
        assert_eq!(to_venue(Exchange::OkxDerivatives, &btc), "BTC-USDT-SWAP");
        assert_eq!(
            from_venue("BTC-USDT-SWAP").unwrap(),
            (btc.clone(), MarketType::Perpetual)
        );
        assert_eq!(from_venue("BTC-USDT").unwrap(), (btc, MarketType::Spot));
        assert_eq!(
            from_venue("BTC-USD-251226-4000-C").unwrap().1,
            MarketType::Options
        );
        for bad in ["", "btc-usdt", "BTC", "-SWAP"] {
            assert!(from_venue(bad).is_err(), "{bad}");
        }
    }
}
