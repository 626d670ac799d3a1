//! Where events land: ClickHouse tables (hot + cold) and Parquet files, from one set of row types.
//!
//! | piece | module |
//! |---|---|
//! | column definitions (names, types, sort keys) | [`columns`] |
//! | exact decimals as `Decimal(38,18)` | [`decimal`] (from `marketprism_model`) |
//! | one row struct per table, from/to `Event` | [`rows`] |
//! | DDL per ClickHouse dialect, `INSERT … VALUES` text | [`schema`] |
//! | the server's tables and views against that DDL | [`schema_check`] |
//! | RowBinary writer | [`clickhouse`] |
//! | Parquet files, atomically renamed | [`parquet`] |

pub mod clickhouse;
pub mod columns;
pub mod gap_fills;
pub mod parquet;
pub mod rows;
pub mod schema;
pub mod schema_check;

pub use self::clickhouse::ClickHouseWriter;
pub use self::parquet::{ParquetStats, new_run_id, run_parquet_output, run_parquet_output_with};
pub use marketprism_model::decimal::{self, Dec18};
pub use rows::{RowError, Rows, TableRow};
pub use schema::{Dialect, ddl};
