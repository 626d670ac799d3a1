//! The one definition of every table's columns: names, logical types and sort key.
//!
//! The row structs in [`super::rows`] serialize their fields in this order (a unit test checks it against
//! `clickhouse::Row::COLUMN_NAMES`); [`super::schema`] turns it into DDL per dialect and
//! [`super::parquet`] into an Arrow schema, so ClickHouse and Parquet cannot disagree.

use marketprism_model::DataType;

/// What a column holds; each dialect and Arrow map it to a concrete type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    /// A short repeated string (exchange, symbol, side): `LowCardinality(String)` on modern ClickHouse.
    Label,
    /// Free text (trade ids, gap details).
    Text,
    /// UTC milliseconds: `DateTime64(3,'UTC')` on modern ClickHouse, `Int64` on 18.x (same RowBinary bytes).
    TimeMs,
    NullableTimeMs,
    Int64,
    /// `Decimal(38,18)`, carried as [`super::decimal::Dec18`].
    Decimal,
    NullableDecimal,
    /// `Array(Decimal(38,18))`: one side of an order book, parallel to its sizes.
    DecimalArray,
    /// A label that may be absent (a signal level during warm-up).
    NullableLabel,
    /// `Float64`: computed statistics (signals), not venue facts.
    Float64,
    NullableFloat64,
    /// A flag: `UInt8` 0/1 in ClickHouse (18.16 has no `Bool`), Arrow `Boolean`.
    Flag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColumnType,
}

/// A struct literal, so column lists are promoted to `'static` constants.
macro_rules! col {
    ($name:literal, $ty:ident) => {
        Column {
            name: $name,
            ty: ColumnType::$ty,
        }
    };
}

/// Leading columns of every table.
const COMMON: [Column; 5] = [
    col!("exchange", Label),
    col!("market_type", Label),
    col!("symbol", Label),
    col!("ts_ms", TimeMs),
    col!("recv_ts_ms", TimeMs),
];

/// Columns after [`COMMON`], per table.
fn payload_columns(data_type: DataType) -> &'static [Column] {
    match data_type {
        DataType::Orderbooks => &[
            col!("last_update_id", Int64),
            col!("bid_prices", DecimalArray),
            col!("bid_sizes", DecimalArray),
            col!("ask_prices", DecimalArray),
            col!("ask_sizes", DecimalArray),
        ],
        DataType::Trades => &[
            col!("trade_id", Text),
            col!("price", Decimal),
            col!("quantity", Decimal),
            col!("side", Label),
            col!("raw_quantity", Decimal),
            col!("quantity_unit", Label),
        ],
        DataType::FundingRates => &[
            col!("funding_rate", NullableDecimal),
            col!("funding_time_ms", TimeMs),
            col!("next_funding_time_ms", NullableTimeMs),
            col!("mark_price", NullableDecimal),
            col!("index_price", NullableDecimal),
            col!("next_funding_rate", NullableDecimal),
        ],
        DataType::OpenInterests => &[
            col!("open_interest", Decimal),
            col!("open_interest_value", NullableDecimal),
            col!("raw_open_interest", Decimal),
            col!("open_interest_unit", Label),
        ],
        DataType::Liquidations => &[
            col!("side", Label),
            col!("price", Decimal),
            col!("quantity", Decimal),
            col!("raw_quantity", Decimal),
            col!("quantity_unit", Label),
        ],
        DataType::LsrTopPositions | DataType::LsrAllAccounts => &[
            col!("period", Label),
            col!("long_short_ratio", Decimal),
            col!("long_ratio", NullableDecimal),
            col!("short_ratio", NullableDecimal),
        ],
        DataType::VolatilityIndices => &[col!("index_name", Label), col!("volatility", Decimal)],
        DataType::Gaps => &[
            col!("data_type", Label),
            col!("start_ms", TimeMs),
            col!("end_ms", TimeMs),
            col!("cause", Label),
            col!("detail", Text),
        ],
        DataType::SignalOfi => &[
            col!("update_id", Int64),
            col!("ofi", Float64),
            col!("ofi_z", NullableFloat64),
            col!("scale", NullableFloat64),
            col!("std_zero", Flag),
            col!("regime", Label),
        ],
        DataType::SignalCvd => &[
            col!("trade_id", Text),
            col!("cvd", Float64),
            col!("delta", Float64),
            col!("z_raw", NullableFloat64),
            col!("z_cvd", NullableFloat64),
            col!("scale", NullableFloat64),
            col!("sigma_floor", NullableFloat64),
            col!("floor_used", Flag),
            col!("std_zero", Flag),
            col!("regime", Label),
        ],
        DataType::SignalFusion => &[
            col!("source", Text),
            col!("score", Float64),
            col!("score_z", NullableFloat64),
            col!("level", NullableLabel),
            col!("regime", Label),
        ],
        DataType::SignalEvents => &[
            col!("source", Text),
            col!("seq", Int64),
            col!("event_type", Label),
            col!("meta_json", Text),
        ],
    }
}

/// All columns of the table for `data_type`, in row-struct order.
pub fn columns(data_type: DataType) -> Vec<Column> {
    COMMON
        .iter()
        .chain(payload_columns(data_type))
        .copied()
        .collect()
}

/// The sort key = the deduplication key: the instrument plus the fields of `Event::natural_key`.
pub fn sort_key(data_type: DataType) -> &'static [&'static str] {
    const INSTRUMENT: [&str; 3] = ["exchange", "market_type", "symbol"];
    macro_rules! key {
        ($($c:literal),*) => { &[INSTRUMENT[0], INSTRUMENT[1], INSTRUMENT[2], $($c),*] };
    }
    match data_type {
        DataType::Trades => key!("trade_id"),
        DataType::Orderbooks => key!("ts_ms", "last_update_id"),
        DataType::FundingRates | DataType::OpenInterests | DataType::VolatilityIndices => {
            key!("ts_ms")
        }
        DataType::Liquidations => key!("ts_ms", "side", "price", "quantity"),
        DataType::LsrTopPositions | DataType::LsrAllAccounts => key!("period", "ts_ms"),
        DataType::Gaps => key!("data_type", "start_ms", "cause"),
        DataType::SignalOfi => key!("ts_ms", "update_id"),
        DataType::SignalCvd => key!("trade_id"),
        DataType::SignalFusion => key!("ts_ms", "source"),
        DataType::SignalEvents => key!("ts_ms", "source", "seq"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType::*;

    #[test]
    fn sort_keys_name_existing_non_nullable_columns() {
        for dt in DataType::ALL {
            let cols = columns(dt);
            for k in sort_key(dt) {
                let c = cols.iter().find(|c| c.name == *k);
                assert!(c.is_some(), "{dt}: key {k} is not a column");
                assert!(
                    !matches!(
                        c.unwrap().ty,
                        NullableDecimal
                            | NullableTimeMs
                            | DecimalArray
                            | NullableLabel
                            | NullableFloat64
                            | Float64
                    ),
                    "{dt}: key {k} must be a plain column"
                );
            }
        }
    }
}
