//! Reads a report's figures from ClickHouse by aggregating in the server (rows per minute, rows per
//! exact latency, duplicates by natural key before `FINAL`), so a 72-hour range moves kilobytes, not
//! rows. Works on both dialects: 18.x stores times as `Int64` ms, 23.8+ as `DateTime64(3)`.

use super::{Scan, key_columns, row_types};
use crate::error::{Error, Result};
use crate::stats::{Gap, Range, StreamId};
use clickhouse::{Client, Row};
use marketprism_config::ClickHouseConfig;
use marketprism_model::DataType;
use marketprism_pipeline::store::Dialect;
use serde::Deserialize;

/// Reads every table of `database` (the hot one unless told) for `range` (all rows when `None`).
pub async fn scan(config: &ClickHouseConfig, database: &str, range: Option<Range>) -> Result<Scan> {
    let client = marketprism_pipeline::store::clickhouse::clickhouse_client(config);
    let version: String = fetch_one(&client, "SELECT version()")
        .await
        .map_err(|e| match e {
            Error::ClickHouse { reason, .. } => Error::ClickHouse {
                query: "SELECT version()".into(),
                reason: format!("{reason} (server {})", config.url),
            },
            other => other,
        })?;
    let dialect = Dialect::from_version(&version);
    let ms = |col: &str| dialect.ms(col);
    let ts = ms("ts_ms");
    let recv = ms("recv_ts_ms");
    let mut scan = Scan::default();
    let filter = match range {
        Some(r) => format!("{ts} >= {} AND {ts} < {}", r.from_ms, r.to_ms),
        None => "1".to_string(),
    };
    for data_type in row_types() {
        let table = format!("{database}.{data_type}");
        let span: Span = fetch_one(
            &client,
            &format!("SELECT count() AS rows, min({recv}) AS lo, max({recv}) AS hi FROM {table} WHERE {filter}"),
        )
        .await?;
        if span.rows == 0 {
            continue;
        }
        scan.widen(span.lo);
        scan.widen(span.hi);
        let id = |exchange: String, market_type: String, symbol: String| StreamId {
            exchange,
            market_type,
            data_type,
            symbol,
        };
        let group = "exchange, market_type, symbol";
        let minutes: Vec<Bucket> = fetch_all(
            &client,
            &format!(
                "SELECT toString(exchange) AS exchange, toString(market_type) AS market_type, \
                 toString(symbol) AS symbol, toInt64(intDiv({ts}, 60000)) AS bucket, toUInt64(count()) AS rows \
                 FROM {table} WHERE {filter} GROUP BY {group}, bucket"
            ),
        )
        .await?;
        for b in minutes {
            let stats = scan
                .observed
                .entry(id(b.exchange, b.market_type, b.symbol))
                .or_default();
            stats.add_minute(b.bucket, b.rows);
        }
        let latencies: Vec<Bucket> = fetch_all(
            &client,
            &format!(
                "SELECT toString(exchange) AS exchange, toString(market_type) AS market_type, \
                 toString(symbol) AS symbol, toInt64({recv} - {ts}) AS bucket, toUInt64(count()) AS rows \
                 FROM {table} WHERE {filter} GROUP BY {group}, bucket"
            ),
        )
        .await?;
        for b in latencies {
            let stats = scan
                .observed
                .entry(id(b.exchange, b.market_type, b.symbol))
                .or_default();
            stats.add_latency(b.bucket, b.rows);
        }
        // toString: 18.16's uniqExact takes no Decimal; the text of a value is as unique as the value.
        let keys = key_columns(data_type)
            .iter()
            .map(|k| format!("toString({k})"))
            .collect::<Vec<_>>()
            .join(", ");
        let duplicates: Vec<Bucket> = fetch_all(
            &client,
            &format!(
                "SELECT toString(exchange) AS exchange, toString(market_type) AS market_type, \
                 toString(symbol) AS symbol, toInt64(0) AS bucket, \
                 toUInt64(count() - uniqExact({keys})) AS rows \
                 FROM {table} WHERE {filter} GROUP BY {group}"
            ),
        )
        .await?;
        for b in duplicates {
            let stats = scan
                .observed
                .entry(id(b.exchange, b.market_type, b.symbol))
                .or_default();
            stats.duplicates += b.rows;
        }
    }
    let gap_filter = match range {
        Some(r) => format!(
            "{} >= {} AND {} < {}",
            ms("end_ms"),
            r.from_ms,
            ms("start_ms"),
            r.to_ms
        ),
        None => "1".to_string(),
    };
    let gaps: Vec<GapRow> = fetch_all(
        &client,
        &format!(
            "SELECT toString(exchange) AS exchange, toString(market_type) AS market_type, \
             toString(symbol) AS symbol, toString(data_type) AS data_type, {} AS start_ms, {} AS end_ms, \
             toString(cause) AS cause FROM {database}.gaps WHERE {gap_filter}",
            ms("start_ms"),
            ms("end_ms")
        ),
    )
    .await?;
    for g in gaps {
        let data_type = DataType::parse(&g.data_type).ok_or_else(|| Error::ClickHouse {
            query: format!("{database}.gaps"),
            reason: format!("gap row of unknown data type {:?}", g.data_type),
        })?;
        let id = StreamId {
            exchange: g.exchange,
            market_type: g.market_type,
            data_type,
            symbol: g.symbol,
        };
        scan.observed.entry(id).or_default().add_gap(Gap {
            start_ms: g.start_ms,
            end_ms: g.end_ms,
            cause: g.cause,
        });
    }
    Ok(scan)
}

#[derive(Debug, Row, Deserialize)]
struct Span {
    rows: u64,
    lo: i64,
    hi: i64,
}

/// One group of a stream: a minute number, a latency in ms, or nothing (duplicates), with its rows.
#[derive(Debug, Row, Deserialize)]
struct Bucket {
    exchange: String,
    market_type: String,
    symbol: String,
    bucket: i64,
    rows: u64,
}

#[derive(Debug, Row, Deserialize)]
struct GapRow {
    exchange: String,
    market_type: String,
    symbol: String,
    data_type: String,
    start_ms: i64,
    end_ms: i64,
    cause: String,
}

async fn fetch_one<T>(client: &Client, sql: &str) -> Result<T>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    client
        .query(sql)
        .fetch_one::<T>()
        .await
        .map_err(|e| Error::ClickHouse {
            query: sql.to_string(),
            reason: e.to_string(),
        })
}

async fn fetch_all<T>(client: &Client, sql: &str) -> Result<Vec<T>>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    client
        .query(sql)
        .fetch_all::<T>()
        .await
        .map_err(|e| Error::ClickHouse {
            query: sql.to_string(),
            reason: e.to_string(),
        })
}
