//! Instruments as each venue lists them: the venue symbol ⇄ normalized symbol map, market type,
//! contract size and tick/lot sizes, loaded from the venue's own list (Binance `exchangeInfo`, OKX
//! `public/instruments`, Deribit `public/get_instruments`), never guessed from a symbol's spelling.
//!
//! Shared by every venue and below them: venues parse their list into [`Instrument`]s
//! (`exchanges/<venue>/instruments.rs`); plans and parsers look symbols up here. A frame's symbol →
//! instrument is one hash-map lookup on the venue symbol ([`InstrumentTable::by_venue`]).

use crate::{Decimal, Exchange, MarketType, Quantity, QuantityUnit, Symbol};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How the venue counts sizes of an instrument, and so how a size becomes a base quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRule {
    /// Sizes are base-asset quantities (spot, Binance USD-M, Deribit linear and options).
    Base,
    /// Sizes are contracts worth `ctVal` of the base asset (OKX linear SWAP/FUTURES, `ctValCcy` = base):
    /// base = contracts × ctVal, exact.
    ContractsOfBase(Decimal),
    /// Sizes are contracts worth `ctVal` of the quote currency (OKX inverse, `ctValCcy` = USD):
    /// base = contracts × ctVal / price.
    ContractsOfQuote(Decimal),
    /// Sizes are quote-currency amounts (Deribit inverse `amount` in USD): base = amount / price.
    Quote,
}

/// One listed instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// As the venue spells it in frames and URLs: `BTCUSDT`, `BTC-USDT-SWAP`, `BTC-PERPETUAL`.
    pub venue_symbol: String,
    /// Normalized `BASE-QUOTE`, with the expiry (and strike, type) after the pair for dated instruments.
    pub symbol: Symbol,
    pub market_type: MarketType,
    pub size: SizeRule,
    /// Price increment, in quote currency.
    pub tick_size: Option<Decimal>,
    /// Size increment, in the venue's size unit.
    pub lot_size: Option<Decimal>,
    /// OKX `instType` (`SPOT`, `SWAP`, `FUTURES`, `OPTION`); the venue's product line otherwise.
    pub venue_type: String,
}

/// Why a size cannot become a base quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SizeError(pub String);

impl Instrument {
    /// The unit of the venue's raw sizes for this instrument.
    pub fn size_unit(&self) -> QuantityUnit {
        match self.size {
            SizeRule::Base => QuantityUnit::Base,
            SizeRule::ContractsOfBase(_) | SizeRule::ContractsOfQuote(_) => QuantityUnit::Contracts,
            SizeRule::Quote => QuantityUnit::Quote,
        }
    }

    /// `raw` (as the venue sent it) → base quantity; `price` is needed for inverse sizes. Linear
    /// conversions are exact; a division is rounded to 18 fractional digits (what the column holds).
    pub fn quantity(&self, raw: Decimal, price: Decimal) -> Result<Quantity, SizeError> {
        let per_price = |quote: Decimal| {
            if price.is_zero() {
                return Err(SizeError(format!(
                    "{}: quote size {raw} at price 0",
                    self.venue_symbol
                )));
            }
            quote
                .checked_div(price)
                .map(|b| b.round_dp(18).normalize())
                .ok_or_else(|| {
                    SizeError(format!(
                        "{}: {quote} / {price} overflows",
                        self.venue_symbol
                    ))
                })
        };
        let base = match self.size {
            SizeRule::Base => raw,
            SizeRule::ContractsOfBase(ct) => raw.checked_mul(ct).ok_or_else(|| {
                SizeError(format!("{}: {raw} × {ct} overflows", self.venue_symbol))
            })?,
            SizeRule::ContractsOfQuote(ct) => per_price(raw.checked_mul(ct).ok_or_else(|| {
                SizeError(format!("{}: {raw} × {ct} overflows", self.venue_symbol))
            })?)?,
            SizeRule::Quote => per_price(raw)?,
        };
        Ok(Quantity {
            base,
            raw,
            unit: self.size_unit(),
        })
    }
}

/// Every instrument one product line lists, keyed both ways.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstrumentTable {
    by_venue: HashMap<String, Arc<Instrument>>,
    by_symbol: HashMap<Symbol, Arc<Instrument>>,
}

impl InstrumentTable {
    pub fn new(instruments: impl IntoIterator<Item = Instrument>) -> InstrumentTable {
        let mut t = InstrumentTable::default();
        for i in instruments {
            let i = Arc::new(i);
            t.by_symbol
                .entry(i.symbol.clone())
                .or_insert_with(|| i.clone());
            t.by_venue.insert(i.venue_symbol.clone(), i);
        }
        t
    }

    /// The instrument a frame names (exact venue spelling).
    pub fn by_venue(&self, venue_symbol: &str) -> Option<&Arc<Instrument>> {
        self.by_venue.get(venue_symbol)
    }

    /// The instrument a configured symbol names.
    pub fn by_symbol(&self, symbol: &Symbol) -> Option<&Arc<Instrument>> {
        self.by_symbol.get(symbol)
    }

    pub fn len(&self) -> usize {
        self.by_venue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_venue.is_empty()
    }

    /// Configured symbols split into (listed instruments, symbols the venue does not list).
    pub fn resolve<'a>(&self, symbols: &'a [Symbol]) -> (Vec<Arc<Instrument>>, Vec<&'a Symbol>) {
        let mut listed = Vec::new();
        let mut unlisted = Vec::new();
        for s in symbols {
            match self.by_symbol(s) {
                Some(i) => listed.push(i.clone()),
                None => unlisted.push(s),
            }
        }
        (listed, unlisted)
    }
}

/// The current table of one product line, replaced whole on every refresh; readers take a snapshot.
#[derive(Debug, Clone)]
pub struct Instruments {
    pub exchange: Exchange,
    current: Arc<RwLock<Arc<InstrumentTable>>>,
}

impl PartialEq for Instruments {
    fn eq(&self, other: &Self) -> bool {
        self.exchange == other.exchange && Arc::ptr_eq(&self.current, &other.current)
    }
}

impl Instruments {
    pub fn new(exchange: Exchange, table: InstrumentTable) -> Instruments {
        Instruments {
            exchange,
            current: Arc::new(RwLock::new(Arc::new(table))),
        }
    }

    /// The table as of now (cheap: a read lock and an `Arc` clone).
    pub fn load(&self) -> Arc<InstrumentTable> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the table (a refresh); readers holding the old one keep it until they drop it.
    pub fn store(&self, table: InstrumentTable) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn inst(venue: &str, symbol: &str, size: SizeRule) -> Instrument {
        Instrument {
            venue_symbol: venue.into(),
            symbol: Symbol::new(symbol).unwrap(),
            market_type: MarketType::Perpetual,
            size,
            tick_size: None,
            lot_size: None,
            venue_type: "SWAP".into(),
        }
    }

    #[test]
    fn sizes_become_base_quantities_per_rule() {
        let linear = inst(
            "BTC-USDT-SWAP",
            "BTC-USDT",
            SizeRule::ContractsOfBase(d("0.01")),
        );
        let q = linear.quantity(d("3"), d("42000")).unwrap();
        assert_eq!(
            (q.base, q.raw, q.unit),
            (d("0.03"), d("3"), QuantityUnit::Contracts)
        );
        let inverse = inst(
            "BTC-USD-SWAP",
            "BTC-USD",
            SizeRule::ContractsOfQuote(d("100")),
        );
        // 4 contracts × 100 USD at 40000 USD/BTC = 0.01 BTC.
        let q = inverse.quantity(d("4"), d("40000")).unwrap();
        assert_eq!((q.base, q.unit), (d("0.01"), QuantityUnit::Contracts));
        // Not a terminating fraction: rounded to the 18 digits the column holds.
        let q = inverse.quantity(d("1"), d("30000")).unwrap();
        assert_eq!(q.base, d("0.003333333333333333"));
        let deribit = inst("BTC-PERPETUAL", "BTC-USD", SizeRule::Quote);
        let q = deribit.quantity(d("50"), d("50000")).unwrap();
        assert_eq!(
            (q.base, q.raw, q.unit),
            (d("0.001"), d("50"), QuantityUnit::Quote)
        );
        assert!(deribit.quantity(d("50"), Decimal::ZERO).is_err());
        let spot = inst("BTCUSDT", "BTC-USDT", SizeRule::Base);
        assert_eq!(spot.quantity(d("0.5"), d("1")).unwrap().base, d("0.5"));
    }

    #[test]
    fn lookups_both_ways_and_resolution() {
        let t = InstrumentTable::new([
            inst("BNBUSD", "BNB-USD", SizeRule::Base),
            inst("BTCEURI", "BTC-EURI", SizeRule::Base),
        ]);
        assert_eq!(t.by_venue("BNBUSD").unwrap().symbol.as_str(), "BNB-USD");
        assert!(t.by_venue("bnbusd").is_none(), "exact venue spelling only");
        let wanted = [
            Symbol::new("BNB-USD").unwrap(),
            Symbol::new("BN-BUSD").unwrap(),
        ];
        let (listed, unlisted) = t.resolve(&wanted);
        assert_eq!(listed[0].venue_symbol, "BNBUSD");
        assert_eq!(unlisted, [&wanted[1]]);
        let shared = Instruments::new(Exchange::BinanceSpot, t);
        let before = shared.load();
        shared.store(InstrumentTable::default());
        assert_eq!(before.len(), 2, "a reader keeps its snapshot");
        assert!(shared.load().is_empty());
    }
}
