//! ClickHouse DDL, pure: a hot and a cold database, one ReplacingMergeTree per data type plus `gaps`
//! and the 4 signal tables,
//! and a materialized view per table that copies every insert into the hot table on to the cold one,
//! so writers insert once. All statements are idempotent (`IF NOT EXISTS`).
//!
//! - Sort key = deduplication key = instrument + the fields of `Event::natural_key` (see [`sort_key`]).
//! - Version column = `recv_ts_ms`: among copies of one fact the latest received survives a merge. It needs
//!   no state (an insert counter would reset on restart and interleave between two writers), and the
//!   choice is the same whatever order two collectors' copies arrive in.
//! - Partitions: daily in hot (TTL drops whole days), monthly in cold (3650 daily partitions per table would
//!   be far past ClickHouse's advice of at most ~1000). Copies of a fact share `ts_ms`, so they share a
//!   partition and always meet in a merge.
//! - Modern (23.8+): `DateTime64(3,'UTC')` times, `LowCardinality(String)` labels, codecs, TTL.
//!   Legacy (18.x–23.7): `Int64` times (the same RowBinary bytes), plain `String`, no codecs or TTL.

use super::columns::{Column, ColumnType, columns, sort_key};
use super::rows::{Rows, with_rows};
use marketprism_config::ClickHouseConfig;
use marketprism_model::DataType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// ClickHouse 18.x up to 23.7.
    Legacy,
    /// ClickHouse 23.8 and later.
    Modern,
}

impl Dialect {
    /// From `SELECT version()`: `18.16.1` → Legacy, `23.8.1.1` / `26.9` → Modern. Unparsable → Modern.
    pub fn from_version(version: &str) -> Dialect {
        let mut parts = version.trim().split('.').map(|p| p.parse::<u32>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), minor) if (major, minor.unwrap_or(0)) < (23, 8) => Dialect::Legacy,
            _ => Dialect::Modern,
        }
    }

    /// A time column (`ts_ms`, `start_ms`, …) as UTC ms (`Int64`) in SQL: 18.x stores `Int64` ms
    /// already, 23.8+ `DateTime64(3)`. The one place the readers (report, jobs) turn times into ms.
    pub fn ms(self, column: &str) -> String {
        match self {
            Dialect::Legacy => format!("toInt64({column})"),
            Dialect::Modern => format!("toUnixTimestamp64Milli({column})"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Legacy => "legacy",
            Dialect::Modern => "modern",
        }
    }
}

/// Which of the two databases a table lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Hot,
    Cold,
}

/// The column's SQL type in `dialect`.
pub(crate) fn sql_type(dialect: Dialect, ty: ColumnType) -> &'static str {
    use ColumnType::*;
    match (dialect, ty) {
        (Dialect::Modern, Label) => "LowCardinality(String)",
        (Dialect::Legacy, Label) | (_, Text) => "String",
        (Dialect::Modern, TimeMs) => "DateTime64(3, 'UTC')",
        (Dialect::Modern, NullableTimeMs) => "Nullable(DateTime64(3, 'UTC'))",
        (Dialect::Legacy, TimeMs) | (_, Int64) => "Int64",
        (Dialect::Legacy, NullableTimeMs) => "Nullable(Int64)",
        (_, Decimal) => "Decimal(38, 18)",
        (_, NullableDecimal) => "Nullable(Decimal(38, 18))",
        (_, DecimalArray) => "Array(Decimal(38, 18))",
        (Dialect::Modern, NullableLabel) => "LowCardinality(Nullable(String))",
        (Dialect::Legacy, NullableLabel) => "Nullable(String)",
        (_, Float64) => "Float64",
        (_, NullableFloat64) => "Nullable(Float64)",
        (_, Flag) => "UInt8",
    }
}

/// Compression per column on modern servers: delta coding where values climb steadily.
fn codec(column: &Column) -> &'static str {
    use ColumnType::*;
    match column.ty {
        Label | NullableLabel | Flag => "",
        TimeMs if column.name == "ts_ms" || column.name == "recv_ts_ms" => {
            " CODEC(DoubleDelta, ZSTD(1))"
        }
        TimeMs | NullableTimeMs | Text | Decimal | NullableDecimal | DecimalArray | Float64
        | NullableFloat64 => " CODEC(ZSTD(1))",
        Int64 => " CODEC(Delta, ZSTD(1))",
    }
}

fn column_list(dialect: Dialect, data_type: DataType) -> String {
    columns(data_type)
        .iter()
        .map(|c| {
            let codec = if dialect == Dialect::Modern {
                codec(c)
            } else {
                ""
            };
            format!("    `{}` {}{}", c.name, sql_type(dialect, c.ty), codec)
        })
        .collect::<Vec<_>>()
        .join(",\n")
}

/// `name Type, …` of a table, as `file()`/`format()` structures and `CREATE TABLE` want it.
pub fn structure(dialect: Dialect, data_type: DataType) -> String {
    columns(data_type)
        .iter()
        .map(|c| format!("{} {}", c.name, sql_type(dialect, c.ty)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn create_table(
    dialect: Dialect,
    config: &ClickHouseConfig,
    tier: Tier,
    data_type: DataType,
) -> String {
    let (database, ttl_days) = match tier {
        Tier::Hot => (&config.hot_database, config.hot_ttl_days),
        Tier::Cold => (&config.cold_database, config.cold_ttl_days),
    };
    let day_or_month = match tier {
        Tier::Hot => "toYYYYMMDD",
        Tier::Cold => "toYYYYMM",
    };
    let (partition, ttl) = match dialect {
        Dialect::Modern => (
            format!("{day_or_month}(ts_ms)"),
            format!("\nTTL toDateTime(ts_ms) + INTERVAL {ttl_days} DAY"),
        ),
        Dialect::Legacy => (
            format!("{day_or_month}(toDateTime(intDiv(ts_ms, 1000)))"),
            String::new(),
        ),
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {database}.{table}\n(\n{cols}\n)\n\
         ENGINE = ReplacingMergeTree(recv_ts_ms)\n\
         PARTITION BY {partition}\n\
         ORDER BY ({key}){ttl}",
        table = data_type.as_str(),
        cols = column_list(dialect, data_type),
        key = sort_key(data_type).join(", "),
    )
}

/// Copies each block inserted into the hot table into the cold one, server-side.
fn create_cold_view(config: &ClickHouseConfig, data_type: DataType) -> String {
    let table = data_type.as_str();
    let names: Vec<&str> = columns(data_type).iter().map(|c| c.name).collect();
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {cold}.{table}_from_hot TO {cold}.{table}\n\
         AS SELECT {cols} FROM {hot}.{table}",
        cold = config.cold_database,
        hot = config.hot_database,
        cols = names.join(", "),
    )
}

/// Every statement to create the schema, in order. Database names are validated identifiers (config).
pub fn ddl(dialect: Dialect, config: &ClickHouseConfig) -> Vec<String> {
    let mut out = vec![
        format!("CREATE DATABASE IF NOT EXISTS {}", config.hot_database),
        format!("CREATE DATABASE IF NOT EXISTS {}", config.cold_database),
    ];
    for dt in DataType::ALL {
        out.push(create_table(dialect, config, Tier::Hot, dt));
        out.push(create_table(dialect, config, Tier::Cold, dt));
        out.push(create_cold_view(config, dt));
    }
    out
}

/// `'text'` with ClickHouse string escapes.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// One value as a SQL literal of the column's type (decimals from their exact text, never via floats).
fn literal(dialect: Dialect, ty: ColumnType, v: &serde_json::Value) -> String {
    use ColumnType::*;
    use serde_json::Value as J;
    match (ty, v) {
        (_, J::Null) => "NULL".into(),
        (TimeMs | NullableTimeMs, J::Number(n)) if dialect == Dialect::Modern => {
            format!("fromUnixTimestamp64Milli(toInt64({n}), 'UTC')")
        }
        (Decimal | NullableDecimal, J::String(s)) => {
            format!("CAST({} AS Decimal(38, 18))", quote(s))
        }
        (DecimalArray, J::Array(items)) => {
            let items: Vec<String> = items.iter().map(|i| literal(dialect, Decimal, i)).collect();
            format!("[{}]", items.join(", "))
        }
        (Flag, J::Bool(b)) => u8::from(*b).to_string(),
        (_, J::String(s)) => quote(s),
        (_, other) => other.to_string(),
    }
}

/// `INSERT INTO db.table (…) VALUES (…), …` for the same rows the RowBinary writer sends: for engines
/// reached without the HTTP interface (chdb), and for humans.
pub fn insert_values_sql(
    dialect: Dialect,
    database: &str,
    rows: &Rows,
) -> Result<String, serde_json::Error> {
    let cols = columns(rows.data_type());
    let values: Vec<serde_json::Value> =
        with_rows!(rows, v => v.iter().map(serde_json::to_value).collect::<Result<_, _>>()?);
    let tuples: Vec<String> = values
        .iter()
        .map(|row| {
            let items: Vec<String> = cols
                .iter()
                .map(|c| literal(dialect, c.ty, &row[c.name]))
                .collect();
            format!("({})", items.join(", "))
        })
        .collect();
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    Ok(format!(
        "INSERT INTO {database}.{} ({}) VALUES {}",
        rows.data_type(),
        names.join(", "),
        tuples.join(", ")
    ))
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
