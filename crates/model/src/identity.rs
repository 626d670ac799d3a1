//! Who and what an event is about: exchange, market type, data type and normalized symbol.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A venue and product line, as named in subjects, tables and file paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exchange {
    BinanceSpot,
    BinanceDerivatives,
    OkxSpot,
    OkxDerivatives,
    DeribitDerivatives,
    GateSpot,
    GateDerivatives,
    MexcSpot,
    MexcDerivatives,
}

impl Exchange {
    pub const ALL: [Exchange; 9] = [
        Exchange::BinanceSpot,
        Exchange::BinanceDerivatives,
        Exchange::OkxSpot,
        Exchange::OkxDerivatives,
        Exchange::DeribitDerivatives,
        Exchange::GateSpot,
        Exchange::GateDerivatives,
        Exchange::MexcSpot,
        Exchange::MexcDerivatives,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Exchange::BinanceSpot => "binance_spot",
            Exchange::BinanceDerivatives => "binance_derivatives",
            Exchange::OkxSpot => "okx_spot",
            Exchange::OkxDerivatives => "okx_derivatives",
            Exchange::DeribitDerivatives => "deribit_derivatives",
            Exchange::GateSpot => "gate_spot",
            Exchange::GateDerivatives => "gate_derivatives",
            Exchange::MexcSpot => "mexc_spot",
            Exchange::MexcDerivatives => "mexc_derivatives",
        }
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarketType {
    Spot,
    Perpetual,
    /// Dated (delivery) futures: OKX `FUTURES`, Binance `CURRENT_QUARTER`/`NEXT_QUARTER`, Deribit `future` with an expiry.
    Futures,
    Options,
}

impl MarketType {
    pub fn as_str(self) -> &'static str {
        match self {
            MarketType::Spot => "spot",
            MarketType::Perpetual => "perpetual",
            MarketType::Futures => "futures",
            MarketType::Options => "options",
        }
    }
}

impl fmt::Display for MarketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 8 market data types, `Gaps` (the record of stream interruptions) and the 4 order-flow
/// signal types computed in the collector (`signal_*`, see [`DataType::SIGNALS`]).
///
/// Config and tables use the plural (`trades`); NATS subjects use the singular token (`trade.…`),
/// as MarketPrism did, so existing consumers of its subjects keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    Orderbooks,
    Trades,
    FundingRates,
    OpenInterests,
    Liquidations,
    LsrTopPositions,
    LsrAllAccounts,
    VolatilityIndices,
    Gaps,
    /// Order-flow imbalance per change of a book's top levels.
    SignalOfi,
    /// Cumulative volume delta per trade.
    SignalCvd,
    /// Fusion score of the OFI and CVD z-scores.
    SignalFusion,
    /// Signal events (resets, warm-up done, level changes, extremes, divergences, regime changes).
    SignalEvents,
}

impl DataType {
    /// The 8 market data types (everything but `Gaps`).
    pub const MARKET: [DataType; 8] = [
        DataType::Orderbooks,
        DataType::Trades,
        DataType::FundingRates,
        DataType::OpenInterests,
        DataType::Liquidations,
        DataType::LsrTopPositions,
        DataType::LsrAllAccounts,
        DataType::VolatilityIndices,
    ];
    /// The types the collector computes from books and trades (`signals:` in the config), never
    /// collected from a venue.
    pub const SIGNALS: [DataType; 4] = [
        DataType::SignalOfi,
        DataType::SignalCvd,
        DataType::SignalFusion,
        DataType::SignalEvents,
    ];
    pub const ALL: [DataType; 13] = [
        DataType::Orderbooks,
        DataType::Trades,
        DataType::FundingRates,
        DataType::OpenInterests,
        DataType::Liquidations,
        DataType::LsrTopPositions,
        DataType::LsrAllAccounts,
        DataType::VolatilityIndices,
        DataType::Gaps,
        DataType::SignalOfi,
        DataType::SignalCvd,
        DataType::SignalFusion,
        DataType::SignalEvents,
    ];

    /// True for the computed signal types ([`DataType::SIGNALS`]).
    pub fn is_signal(self) -> bool {
        DataType::SIGNALS.contains(&self)
    }

    /// Table name, config name and Parquet `data_type=` partition value.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Orderbooks => "orderbooks",
            DataType::Trades => "trades",
            DataType::FundingRates => "funding_rates",
            DataType::OpenInterests => "open_interests",
            DataType::Liquidations => "liquidations",
            DataType::LsrTopPositions => "lsr_top_positions",
            DataType::LsrAllAccounts => "lsr_all_accounts",
            DataType::VolatilityIndices => "volatility_indices",
            DataType::Gaps => "gaps",
            DataType::SignalOfi => "signal_ofi",
            DataType::SignalCvd => "signal_cvd",
            DataType::SignalFusion => "signal_fusion",
            DataType::SignalEvents => "signal_events",
        }
    }

    /// First token of the NATS subject.
    pub fn subject_token(self) -> &'static str {
        match self {
            DataType::Orderbooks => "orderbook",
            DataType::Trades => "trade",
            DataType::FundingRates => "funding_rate",
            DataType::OpenInterests => "open_interest",
            DataType::Liquidations => "liquidation",
            DataType::LsrTopPositions => "lsr_top_position",
            DataType::LsrAllAccounts => "lsr_all_account",
            DataType::VolatilityIndices => "volatility_index",
            DataType::Gaps => "gap",
            DataType::SignalOfi => "signal_ofi",
            DataType::SignalCvd => "signal_cvd",
            DataType::SignalFusion => "signal_fusion",
            DataType::SignalEvents => "signal_event",
        }
    }

    pub fn from_subject_token(token: &str) -> Option<DataType> {
        DataType::ALL
            .into_iter()
            .find(|d| d.subject_token() == token)
    }

    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|d| d.as_str() == name)
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalized instrument name `BASE-QUOTE` in upper case (`BTC-USDT`; never `BTC-USDT-SWAP`).
/// Options and other dated instruments keep their venue suffix after the pair (`BTC-USD-251226-4000-C`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Symbol(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid symbol {0:?}: expected BASE-QUOTE in upper case letters and digits, e.g. BTC-USDT"
)]
pub struct SymbolError(pub String);

impl Symbol {
    pub fn new(s: impl Into<String>) -> Result<Symbol, SymbolError> {
        let s = s.into();
        let mut parts = s.split('-');
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        };
        let ok = parts.next().is_some_and(valid_part)
            && parts.next().is_some_and(valid_part)
            && parts.all(valid_part);
        if ok {
            Ok(Symbol(s))
        } else {
            Err(SymbolError(s))
        }
    }

    pub fn from_base_quote(base: &str, quote: &str) -> Result<Symbol, SymbolError> {
        Symbol::new(format!(
            "{}-{}",
            base.to_ascii_uppercase(),
            quote.to_ascii_uppercase()
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// (base, quote)
    pub fn base_quote(&self) -> (&str, &str) {
        let mut it = self.0.splitn(3, '-');
        let base = it.next().unwrap_or_default();
        let quote = it.next().unwrap_or_default();
        (base, quote)
    }
}

impl TryFrom<String> for Symbol {
    type Error = SymbolError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Symbol::new(s)
    }
}

impl From<Symbol> for String {
    fn from(s: Symbol) -> String {
        s.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_base_dash_quote_upper_case() {
        assert!(Symbol::new("BTC-USDT").is_ok());
        assert!(Symbol::new("BTC-USD-251226-4000-C").is_ok());
        for bad in [
            "btc-usdt", "BTCUSDT", "BTC-", "-USDT", "BTC_USDT", "BTC.USDT", "",
        ] {
            assert!(Symbol::new(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            Symbol::from_base_quote("eth", "usdt").unwrap().as_str(),
            "ETH-USDT"
        );
        assert_eq!(
            Symbol::new("BTC-USDT").unwrap().base_quote(),
            ("BTC", "USDT")
        );
    }

    #[test]
    fn data_type_names_round_trip() {
        for d in DataType::ALL {
            assert_eq!(DataType::from_subject_token(d.subject_token()), Some(d));
            assert_eq!(DataType::parse(d.as_str()), Some(d));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
        }
    }
}
