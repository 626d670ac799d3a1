//! Binance symbol mapping, both ways: `BTC-USDT` ⇄ `BTCUSDT` (streams use the lower-case form).

use crate::exchanges::parse::{ParseError, ParseErrorReason, ParseResult};
use crate::model::Symbol;

/// Quote assets, longest first so `FDUSD` wins over `USD` and `USDT` over `USD`.
const QUOTES: [&str; 17] = [
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "DAI", "BTC", "ETH", "BNB", "EUR", "TRY",
    "BRL", "JPY", "GBP", "XRP", "USD",
];

/// `BTC-USDT` → `BTCUSDT`.
pub fn to_venue(symbol: &Symbol) -> String {
    let (base, quote) = symbol.base_quote();
    let mut s = String::with_capacity(base.len() + quote.len());
    s.push_str(base);
    s.push_str(quote);
    s
}

/// `BTC-USDT` → `btcusdt`, as stream names want it.
pub fn to_stream(symbol: &Symbol) -> String {
    to_venue(symbol).to_ascii_lowercase()
}

/// `BTCUSDT` (any case) → `BTC-USDT`, splitting at the longest known quote suffix.
pub fn from_venue(venue: &str) -> ParseResult<Symbol> {
    let bad = || {
        ParseError::new(
            ParseErrorReason::BadSymbol,
            venue.chars().take(40).collect::<String>(),
        )
    };
    for quote in QUOTES {
        if venue.len() > quote.len() {
            let split = venue.len() - quote.len();
            if venue.is_char_boundary(split) && venue[split..].eq_ignore_ascii_case(quote) {
                let mut s = String::with_capacity(venue.len() + 1);
                s.push_str(&venue[..split]);
                s.push('-');
                s.push_str(quote);
                s.make_ascii_uppercase();
                return Symbol::new(s).map_err(|_| bad());
            }
        }
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_both_ways() {
        for (venue, ours) in [
            ("BTCUSDT", "BTC-USDT"),
            ("btcusdt", "BTC-USDT"),
            ("LRCBTC", "LRC-BTC"),
            ("BLZETH", "BLZ-ETH"),
            ("ETHFDUSD", "ETH-FDUSD"),
            ("1000PEPEUSDT", "1000PEPE-USDT"),
        ] {
            let s = from_venue(venue).unwrap();
            assert_eq!(s.as_str(), ours);
            assert_eq!(to_venue(&s), venue.to_ascii_uppercase());
        }
        assert_eq!(to_stream(&Symbol::new("BTC-USDT").unwrap()), "btcusdt");
        for bad in ["USDT", "", "BTC_USDT", "BTCXYZ", "ÄUSDT"] {
            assert_eq!(
                from_venue(bad).unwrap_err().reason,
                ParseErrorReason::BadSymbol,
                "{bad}"
            );
        }
    }
}
