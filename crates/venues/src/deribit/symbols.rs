//! Deribit DVOL index names, both ways: `btc_usd` ⇄ `BTC-USD` (indexes are not instruments, so they are
//! not in `get_instruments`; instruments come from the venue's list, see [`super::instruments`]).

use crate::parse::{ParseError, ParseErrorReason, ParseResult};
use marketprism_model::Symbol;

fn bad(name: &str) -> ParseError {
    ParseError::new(
        ParseErrorReason::BadSymbol,
        name.chars().take(40).collect::<String>(),
    )
}

/// DVOL index name `btc_usd` → `BTC-USD`.
pub(crate) fn index_symbol(index_name: &str) -> ParseResult<Symbol> {
    let (base, quote) = index_name.split_once('_').ok_or_else(|| bad(index_name))?;
    Symbol::from_base_quote(base, quote).map_err(|_| bad(index_name))
}

/// `BTC-USD` → DVOL index name `btc_usd`.
pub(crate) fn to_index_name(symbol: &Symbol) -> String {
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
    fn index_names_map_both_ways() {
        let dvol = index_symbol("btc_usd").unwrap();
        assert_eq!(dvol.as_str(), "BTC-USD");
        assert_eq!(to_index_name(&dvol), "btc_usd");
        assert!(index_symbol("btcusd").is_err());
    }
}
