//! `gap_fills`: what `job backfill` did about a trades gap. A gap row is never changed or deleted; its
//! fill is a fact of its own, keyed like the gap (instrument, data type, start, cause), so a redone
//! backfill replaces its earlier record (ReplacingMergeTree by `filled_at_ms`). Written into the hot
//! database and copied to the cold one by a materialized view, like every table.
//!
//! Times are `Int64` UTC ms and labels `String` in both dialects: the table is small and read by
//! humans and the report, never scanned like the market data.

use marketprism_config::ClickHouseConfig;
use serde::{Deserialize, Serialize};

/// The table's name in both databases.
pub const TABLE: &str = "gap_fills";

/// One backfill of one gap.
#[derive(Debug, Clone, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
pub struct GapFill {
    pub exchange: String,
    pub market_type: String,
    pub symbol: String,
    /// The gap's data type (`trades`).
    pub data_type: String,
    /// The gap row's `start_ms` and `cause`: with the instrument, the gap's key.
    pub gap_start_ms: i64,
    pub cause: String,
    pub gap_end_ms: i64,
    /// The exchange-time window fetched from the venue (the gap widened by the job's margin), UTC ms.
    pub window_from_ms: i64,
    pub window_to_ms: i64,
    /// Trades the venue returned for the window, and those of them not stored before (published).
    pub fetched: u64,
    pub published: u64,
    /// Venues with consecutive ids: ids still absent inside the window after the fill (0: none
    /// missing); -1 where ids say nothing (OKX fills vs aggregates, Deribit).
    pub holes_left: i64,
    /// First and last published trade id ('' when none).
    pub first_trade_id: String,
    pub last_trade_id: String,
    /// The venue endpoint read.
    pub source: String,
    /// When the fill was recorded (after ClickHouse held every published trade), UTC ms.
    pub filled_at_ms: i64,
}

/// `CREATE` statements for the table in both databases and the hot → cold view (idempotent).
pub fn ddl(config: &ClickHouseConfig) -> Vec<String> {
    let table = |db: &str| {
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.{TABLE}\n(\n    exchange String, market_type String, symbol String, data_type String,\n    \
             gap_start_ms Int64, cause String, gap_end_ms Int64, window_from_ms Int64, window_to_ms Int64,\n    \
             fetched UInt64, published UInt64, holes_left Int64, first_trade_id String, last_trade_id String,\n    \
             source String, filled_at_ms Int64\n)\n\
             ENGINE = ReplacingMergeTree(filled_at_ms)\n\
             ORDER BY (exchange, market_type, symbol, data_type, gap_start_ms, cause)"
        )
    };
    vec![
        table(&config.hot_database),
        table(&config.cold_database),
        format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {cold}.{TABLE}_from_hot TO {cold}.{TABLE}\n\
             AS SELECT * FROM {hot}.{TABLE}",
            cold = config.cold_database,
            hot = config.hot_database
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_are_keyed_like_the_gap_and_the_view_feeds_cold() {
        let config = ClickHouseConfig {
            hot_database: "h".into(),
            cold_database: "c".into(),
            ..ClickHouseConfig::default()
        };
        let ddl = ddl(&config);
        assert_eq!(ddl.len(), 3);
        assert!(ddl[0].starts_with("CREATE TABLE IF NOT EXISTS h.gap_fills"));
        assert!(ddl[1].starts_with("CREATE TABLE IF NOT EXISTS c.gap_fills"));
        assert!(
            ddl[0].contains(
                "ORDER BY (exchange, market_type, symbol, data_type, gap_start_ms, cause)"
            )
        );
        assert!(
            ddl[2].contains("c.gap_fills_from_hot TO c.gap_fills")
                && ddl[2].contains("FROM h.gap_fills")
        );
    }
}
