//! One row struct per table, built from `&Event` and turned back into one: THE row types of both
//! ClickHouse (RowBinary via `clickhouse::Row`) and Parquet (via serde_arrow). Field order = [`columns`].
//!
//! Decimals are [`Dec18`]; a value `Decimal(38,18)` cannot hold is a [`RowError`], never truncated.

use super::columns::columns;
use super::decimal::{Dec18, DecimalRangeError};
use marketprism_model::*;
use serde::{Deserialize, Serialize};

/// Why an event cannot become a row (or a row an event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("{field}: {source}")]
    Decimal {
        field: &'static str,
        source: DecimalRangeError,
    },
    #[error("{data_type} row got a {got} event")]
    WrongType { data_type: DataType, got: DataType },
    #[error("{field}: unknown value {value:?}")]
    UnknownValue { field: &'static str, value: String },
    #[error("order book side {0}: {1} prices but {2} sizes")]
    UnevenLevels(&'static str, usize, usize),
}

/// A row of one table.
pub trait TableRow:
    clickhouse::RowOwned + clickhouse::RowRead + clickhouse::RowWrite + Serialize + Send + Sync
{
    const DATA_TYPE: DataType;
    fn from_event(event: &Event) -> Result<Self, RowError>;
    fn to_event(&self) -> Result<Event, RowError>;
}

fn dec(field: &'static str, d: Decimal) -> Result<Dec18, RowError> {
    Dec18::from_decimal(d).map_err(|source| RowError::Decimal { field, source })
}

fn opt_dec(field: &'static str, d: Option<Decimal>) -> Result<Option<Dec18>, RowError> {
    d.map(|d| dec(field, d)).transpose()
}

fn undec(field: &'static str, d: Dec18) -> Result<Decimal, RowError> {
    d.to_decimal()
        .map_err(|source| RowError::Decimal { field, source })
}

fn opt_undec(field: &'static str, d: Option<Dec18>) -> Result<Option<Decimal>, RowError> {
    d.map(|d| undec(field, d)).transpose()
}

fn parse_unit(s: &str) -> Result<QuantityUnit, RowError> {
    QuantityUnit::parse(s).ok_or_else(|| unknown("quantity_unit", s))
}

fn parse_side(s: &str) -> Result<Side, RowError> {
    match s {
        "buy" => Ok(Side::Buy),
        "sell" => Ok(Side::Sell),
        _ => Err(unknown("side", s)),
    }
}

fn unknown(field: &'static str, value: &str) -> RowError {
    RowError::UnknownValue {
        field,
        value: value.to_owned(),
    }
}

fn parse_gap_cause(s: &str) -> Result<GapCause, RowError> {
    use GapCause::*;
    [
        Disconnect,
        SequenceGap,
        Stale,
        Integrity,
        ServerShutdown,
        Overflow,
        Fenced,
        Refused,
        Rejected,
        Crashed,
        Handover,
    ]
    .into_iter()
    .find(|c| c.as_str() == s)
    .ok_or_else(|| unknown("cause", s))
}

/// The five leading columns, shared by every row: (exchange, market_type, symbol, ts_ms, recv_ts_ms).
struct Head {
    exchange: String,
    market_type: String,
    symbol: String,
}

fn head(e: &Event) -> Head {
    Head {
        exchange: e.exchange.as_str().to_owned(),
        market_type: e.market_type.as_str().to_owned(),
        symbol: e.symbol.as_str().to_owned(),
    }
}

fn event(
    exchange: &str,
    market_type: &str,
    symbol: &str,
    ts_ms: i64,
    recv_ts_ms: i64,
    payload: Payload,
) -> Result<Event, RowError> {
    Ok(Event {
        exchange: Exchange::ALL
            .into_iter()
            .find(|x| x.as_str() == exchange)
            .ok_or_else(|| unknown("exchange", exchange))?,
        market_type: [
            MarketType::Spot,
            MarketType::Perpetual,
            MarketType::Futures,
            MarketType::Options,
        ]
        .into_iter()
        .find(|x| x.as_str() == market_type)
        .ok_or_else(|| unknown("market_type", market_type))?,
        symbol: Symbol::new(symbol).map_err(|_| unknown("symbol", symbol))?,
        ts_ms,
        recv_ts_ms,
        payload,
    })
}

/// Declares a row struct with the common leading fields and implements [`TableRow`].
macro_rules! table_row {
    (
        $(#[$doc:meta])* $name:ident, $dt:expr, $variant:ident($p:ident) => $pty:ty,
        { $($field:ident : $fty:ty),* $(,)? },
        from |$e:ident| { $($from:tt)* },
        to |$r:ident| $to:expr
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
        pub struct $name {
            pub exchange: String,
            pub market_type: String,
            pub symbol: String,
            pub ts_ms: i64,
            pub recv_ts_ms: i64,
            $(pub $field: $fty,)*
        }

        impl TableRow for $name {
            const DATA_TYPE: DataType = $dt;

            fn from_event($e: &Event) -> Result<Self, RowError> {
                let Payload::$variant($p) = &$e.payload else {
                    return Err(RowError::WrongType { data_type: $dt, got: $e.data_type() });
                };
                let Head { exchange, market_type, symbol } = head($e);
                $($from)*
                Ok($name {
                    exchange,
                    market_type,
                    symbol,
                    ts_ms: $e.ts_ms,
                    recv_ts_ms: $e.recv_ts_ms,
                    $($field,)*
                })
            }

            fn to_event(&self) -> Result<Event, RowError> {
                let $r = self;
                let payload: $pty = $to;
                event(&$r.exchange, &$r.market_type, &$r.symbol, $r.ts_ms, $r.recv_ts_ms, Payload::$variant(payload))
            }
        }
    };
}

fn split_levels(
    side: &'static str,
    levels: &[Level],
) -> Result<(Vec<Dec18>, Vec<Dec18>), RowError> {
    let prices = levels
        .iter()
        .map(|l| dec(side, l.0))
        .collect::<Result<_, _>>()?;
    let sizes = levels
        .iter()
        .map(|l| dec(side, l.1))
        .collect::<Result<_, _>>()?;
    Ok((prices, sizes))
}

fn join_levels(
    side: &'static str,
    prices: &[Dec18],
    sizes: &[Dec18],
) -> Result<Vec<Level>, RowError> {
    if prices.len() != sizes.len() {
        return Err(RowError::UnevenLevels(side, prices.len(), sizes.len()));
    }
    prices
        .iter()
        .zip(sizes)
        .map(|(p, s)| Ok(Level(undec(side, *p)?, undec(side, *s)?)))
        .collect()
}

table_row!(
    /// `orderbooks`: top-N levels per side as parallel arrays, best first.
    OrderbookRow, DataType::Orderbooks, Orderbook(b) => OrderBookSnapshot,
    { last_update_id: i64, bid_prices: Vec<Dec18>, bid_sizes: Vec<Dec18>, ask_prices: Vec<Dec18>, ask_sizes: Vec<Dec18> },
    from |e| {
        let last_update_id = b.last_update_id;
        let (bid_prices, bid_sizes) = split_levels("bids", &b.bids)?;
        let (ask_prices, ask_sizes) = split_levels("asks", &b.asks)?;
    },
    to |r| OrderBookSnapshot {
        last_update_id: r.last_update_id,
        bids: join_levels("bids", &r.bid_prices, &r.bid_sizes)?,
        asks: join_levels("asks", &r.ask_prices, &r.ask_sizes)?,
    }
);

table_row!(
    /// `trades`
    TradeRow, DataType::Trades, Trade(t) => Trade,
    { trade_id: String, price: Dec18, quantity: Dec18, side: String, raw_quantity: Dec18, quantity_unit: String },
    from |e| {
        let trade_id = t.trade_id.clone();
        let price = dec("price", t.price)?;
        let quantity = dec("quantity", t.quantity)?;
        let side = t.side.as_str().to_owned();
        let raw_quantity = dec("raw_quantity", t.raw_quantity)?;
        let quantity_unit = t.quantity_unit.as_str().to_owned();
    },
    to |r| Trade {
        trade_id: r.trade_id.clone(),
        price: undec("price", r.price)?,
        quantity: undec("quantity", r.quantity)?,
        raw_quantity: undec("raw_quantity", r.raw_quantity)?,
        quantity_unit: parse_unit(&r.quantity_unit)?,
        side: parse_side(&r.side)?,
    }
);

table_row!(
    /// `funding_rates`
    FundingRateRow, DataType::FundingRates, FundingRate(f) => FundingRate,
    { funding_rate: Option<Dec18>, funding_time_ms: i64, next_funding_time_ms: Option<i64>, mark_price: Option<Dec18>, index_price: Option<Dec18>, next_funding_rate: Option<Dec18> },
    from |e| {
        let funding_rate = opt_dec("funding_rate", f.funding_rate)?;
        let funding_time_ms = f.funding_time_ms;
        let next_funding_time_ms = f.next_funding_time_ms;
        let mark_price = opt_dec("mark_price", f.mark_price)?;
        let index_price = opt_dec("index_price", f.index_price)?;
        let next_funding_rate = opt_dec("next_funding_rate", f.next_funding_rate)?;
    },
    to |r| FundingRate {
        funding_rate: opt_undec("funding_rate", r.funding_rate)?,
        funding_time_ms: r.funding_time_ms,
        next_funding_time_ms: r.next_funding_time_ms,
        next_funding_rate: opt_undec("next_funding_rate", r.next_funding_rate)?,
        mark_price: opt_undec("mark_price", r.mark_price)?,
        index_price: opt_undec("index_price", r.index_price)?,
    }
);

table_row!(
    /// `open_interests`
    OpenInterestRow, DataType::OpenInterests, OpenInterest(o) => OpenInterest,
    { open_interest: Dec18, open_interest_value: Option<Dec18>, raw_open_interest: Dec18, open_interest_unit: String },
    from |e| {
        let open_interest = dec("open_interest", o.open_interest)?;
        let open_interest_value = opt_dec("open_interest_value", o.open_interest_value)?;
        let raw_open_interest = dec("raw_open_interest", o.raw_open_interest)?;
        let open_interest_unit = o.open_interest_unit.as_str().to_owned();
    },
    to |r| OpenInterest {
        open_interest: undec("open_interest", r.open_interest)?,
        open_interest_value: opt_undec("open_interest_value", r.open_interest_value)?,
        raw_open_interest: undec("raw_open_interest", r.raw_open_interest)?,
        open_interest_unit: parse_unit(&r.open_interest_unit)?,
    }
);

table_row!(
    /// `liquidations`
    LiquidationRow, DataType::Liquidations, Liquidation(l) => Liquidation,
    { side: String, price: Dec18, quantity: Dec18, raw_quantity: Dec18, quantity_unit: String },
    from |e| {
        let side = l.side.as_str().to_owned();
        let price = dec("price", l.price)?;
        let quantity = dec("quantity", l.quantity)?;
        let raw_quantity = dec("raw_quantity", l.raw_quantity)?;
        let quantity_unit = l.quantity_unit.as_str().to_owned();
    },
    to |r| Liquidation {
        side: parse_side(&r.side)?,
        price: undec("price", r.price)?,
        quantity: undec("quantity", r.quantity)?,
        raw_quantity: undec("raw_quantity", r.raw_quantity)?,
        quantity_unit: parse_unit(&r.quantity_unit)?,
    }
);

table_row!(
    /// `lsr_top_positions`
    LsrTopPositionRow, DataType::LsrTopPositions, LsrTopPosition(l) => LongShortRatio,
    { period: String, long_short_ratio: Dec18, long_ratio: Option<Dec18>, short_ratio: Option<Dec18> },
    from |e| {
        let period = l.period.clone();
        let long_short_ratio = dec("long_short_ratio", l.long_short_ratio)?;
        let long_ratio = opt_dec("long_ratio", l.long_ratio)?;
        let short_ratio = opt_dec("short_ratio", l.short_ratio)?;
    },
    to |r| lsr_payload(&r.period, r.long_short_ratio, r.long_ratio, r.short_ratio)?
);

table_row!(
    /// `lsr_all_accounts`
    LsrAllAccountRow, DataType::LsrAllAccounts, LsrAllAccount(l) => LongShortRatio,
    { period: String, long_short_ratio: Dec18, long_ratio: Option<Dec18>, short_ratio: Option<Dec18> },
    from |e| {
        let period = l.period.clone();
        let long_short_ratio = dec("long_short_ratio", l.long_short_ratio)?;
        let long_ratio = opt_dec("long_ratio", l.long_ratio)?;
        let short_ratio = opt_dec("short_ratio", l.short_ratio)?;
    },
    to |r| lsr_payload(&r.period, r.long_short_ratio, r.long_ratio, r.short_ratio)?
);

fn lsr_payload(
    period: &str,
    ratio: Dec18,
    long: Option<Dec18>,
    short: Option<Dec18>,
) -> Result<LongShortRatio, RowError> {
    Ok(LongShortRatio {
        period: period.to_owned(),
        long_short_ratio: undec("long_short_ratio", ratio)?,
        long_ratio: opt_undec("long_ratio", long)?,
        short_ratio: opt_undec("short_ratio", short)?,
    })
}

table_row!(
    /// `volatility_indices`
    VolatilityIndexRow, DataType::VolatilityIndices, VolatilityIndex(v) => VolatilityIndex,
    { index_name: String, volatility: Dec18 },
    from |e| {
        let index_name = v.index_name.clone();
        let volatility = dec("volatility", v.volatility)?;
    },
    to |r| VolatilityIndex {
        index_name: r.index_name.clone(),
        volatility: undec("volatility", r.volatility)?,
    }
);

table_row!(
    /// `gaps`: every recorded stream interruption.
    GapRow, DataType::Gaps, Gap(g) => Gap,
    { data_type: String, start_ms: i64, end_ms: i64, cause: String, detail: String },
    from |e| {
        let data_type = g.data_type.as_str().to_owned();
        let start_ms = g.start_ms;
        let end_ms = g.end_ms;
        let cause = g.cause.as_str().to_owned();
        let detail = g.detail.clone();
    },
    to |r| Gap {
        data_type: DataType::parse(&r.data_type).ok_or_else(|| unknown("data_type", &r.data_type))?,
        start_ms: r.start_ms,
        end_ms: r.end_ms,
        cause: parse_gap_cause(&r.cause)?,
        detail: r.detail.clone(),
    }
);

#[path = "rows_signals.rs"]
mod signals;
pub use signals::{SignalCvdRow, SignalEventRow, SignalFusionRow, SignalOfiRow};

/// Rows of one table, for code that handles every table alike (see `with_rows!`).
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    Orderbooks(Vec<OrderbookRow>),
    Trades(Vec<TradeRow>),
    FundingRates(Vec<FundingRateRow>),
    OpenInterests(Vec<OpenInterestRow>),
    Liquidations(Vec<LiquidationRow>),
    LsrTopPositions(Vec<LsrTopPositionRow>),
    LsrAllAccounts(Vec<LsrAllAccountRow>),
    VolatilityIndices(Vec<VolatilityIndexRow>),
    Gaps(Vec<GapRow>),
    SignalOfi(Vec<SignalOfiRow>),
    SignalCvd(Vec<SignalCvdRow>),
    SignalFusion(Vec<SignalFusionRow>),
    SignalEvents(Vec<SignalEventRow>),
}

/// `with_rows!(rows, v => expr)`: evaluate `expr` with `v: &Vec<R>` (or `&mut`) for the table's row type `R`.
macro_rules! with_rows {
    ($rows:expr, $v:ident => $body:expr) => {
        match $rows {
            $crate::store::rows::Rows::Orderbooks($v) => $body,
            $crate::store::rows::Rows::Trades($v) => $body,
            $crate::store::rows::Rows::FundingRates($v) => $body,
            $crate::store::rows::Rows::OpenInterests($v) => $body,
            $crate::store::rows::Rows::Liquidations($v) => $body,
            $crate::store::rows::Rows::LsrTopPositions($v) => $body,
            $crate::store::rows::Rows::LsrAllAccounts($v) => $body,
            $crate::store::rows::Rows::VolatilityIndices($v) => $body,
            $crate::store::rows::Rows::Gaps($v) => $body,
            $crate::store::rows::Rows::SignalOfi($v) => $body,
            $crate::store::rows::Rows::SignalCvd($v) => $body,
            $crate::store::rows::Rows::SignalFusion($v) => $body,
            $crate::store::rows::Rows::SignalEvents($v) => $body,
        }
    };
}
pub(crate) use with_rows;

fn push_row<R: TableRow>(rows: &mut Vec<R>, event: &Event) -> Result<(), RowError> {
    rows.push(R::from_event(event)?);
    Ok(())
}

impl Rows {
    pub fn new(data_type: DataType) -> Rows {
        match data_type {
            DataType::Orderbooks => Rows::Orderbooks(Vec::new()),
            DataType::Trades => Rows::Trades(Vec::new()),
            DataType::FundingRates => Rows::FundingRates(Vec::new()),
            DataType::OpenInterests => Rows::OpenInterests(Vec::new()),
            DataType::Liquidations => Rows::Liquidations(Vec::new()),
            DataType::LsrTopPositions => Rows::LsrTopPositions(Vec::new()),
            DataType::LsrAllAccounts => Rows::LsrAllAccounts(Vec::new()),
            DataType::VolatilityIndices => Rows::VolatilityIndices(Vec::new()),
            DataType::Gaps => Rows::Gaps(Vec::new()),
            DataType::SignalOfi => Rows::SignalOfi(Vec::new()),
            DataType::SignalCvd => Rows::SignalCvd(Vec::new()),
            DataType::SignalFusion => Rows::SignalFusion(Vec::new()),
            DataType::SignalEvents => Rows::SignalEvents(Vec::new()),
        }
    }

    /// Rows for `events`, all of which must be of `data_type`; the first bad one is the error.
    pub fn from_events(data_type: DataType, events: &[Event]) -> Result<Rows, RowError> {
        let mut rows = Rows::new(data_type);
        for e in events {
            rows.push(e)?;
        }
        Ok(rows)
    }

    /// Convert and append one event; on error nothing is appended.
    pub fn push(&mut self, event: &Event) -> Result<(), RowError> {
        with_rows!(self, v => push_row(v, event))
    }

    pub fn data_type(&self) -> DataType {
        fn dt<R: TableRow>(_: &[R]) -> DataType {
            R::DATA_TYPE
        }
        with_rows!(self, v => dt(v))
    }

    pub fn len(&self) -> usize {
        with_rows!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn to_events(&self) -> Result<Vec<Event>, RowError> {
        with_rows!(self, v => v.iter().map(TableRow::to_event).collect())
    }

    /// Column names in field order, for `INSERT INTO t (…)`.
    pub fn column_names(&self) -> Vec<&'static str> {
        columns(self.data_type()).iter().map(|c| c.name).collect()
    }
}

#[cfg(test)]
#[path = "rows_tests.rs"]
mod tests;
