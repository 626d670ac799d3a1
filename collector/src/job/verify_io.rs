//! `job verify` / `job repair` I/O: what the hot and cold databases and the Parquet dataset hold
//! of a unit, and the copies that repair makes.
//!
//! ClickHouse figures are aggregated in the server (`count()`, `uniqExact` of the sort key before
//! `FINAL`, `count() … FINAL`, `min`/`max` of `ts_ms` as ms in either dialect via
//! [`Dialect::ms`]); hot vs cold missing keys are counted in the server too
//! (`… FINAL WHERE (sort key) NOT IN (SELECT sort key FROM other …)`), so no row leaves it. Against
//! Parquet, the unit's hot rows (`FINAL`, the replay's reader) and the Parquet rows (the replay's
//! file reader) are compared in memory by the XXH3 of their natural key (`Event::msg_id`): 8 bytes
//! per row of one unit (a table's day of one symbol).

use super::plan::{Filter, Partition, data_type_of, day_name, exchange_of, list_dataset};
use super::replay_io::{ClickHouseSource, connect_clickhouse, open_source, parquet_sources};
use super::verify_plan::{
    Discrepancy, Figures, KEYS_NAMED, Side, UnitResult, VerifyUnit, compare, duplicates,
    event_figures, values_differ,
};
use crate::error::{Error, Result};
use clickhouse::{Client, Row};
use marketprism_config::ClickHouseConfig;
use marketprism_jobs::{UnitError, fingerprint};
use marketprism_model::{DataType, Event, Exchange, Payload};
use marketprism_pipeline::store::columns::{columns, sort_key};
use marketprism_pipeline::store::parquet::read_file;
use marketprism_pipeline::store::{ClickHouseWriter, Dialect};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;
use tokio::runtime::Handle;

/// The SQL hash of a row of `data_type`: `cityHash64` of every column as text (18.16's takes no
/// Decimal; a NULL as `<NULL>`, so it does not make the whole hash NULL).
fn row_hash(data_type: DataType) -> String {
    let cols = columns(data_type)
        .iter()
        .map(|c| format!("ifNull(toString({}), '<NULL>')", c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!("cityHash64({cols})")
}

/// A SQL string literal (quotes and backslashes escaped).
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[derive(Row, Deserialize)]
struct Found {
    exchange: String,
    symbol: String,
    day: i64,
}

#[derive(Row, Deserialize)]
struct Content {
    rows: u64,
    checksum: u64,
}

#[derive(Row, Deserialize)]
struct Differing {
    rows: u64,
    keys: Vec<String>,
}

#[derive(Row, Deserialize)]
struct Span {
    rows: u64,
    keys: u64,
    lo: i64,
    hi: i64,
}

/// The sides a unit is read from: ClickHouse's hot and cold databases, and a Parquet dataset.
pub struct Sides {
    client: Client,
    dialect: Dialect,
    hot: String,
    cold: String,
    /// The hot database's `FINAL` reader (the replay's), for the comparison with Parquet.
    hot_source: ClickHouseSource,
    parquet: Option<PathBuf>,
    handle: Handle,
}

impl Sides {
    pub async fn connect(config: &ClickHouseConfig, parquet: Option<PathBuf>) -> Result<Sides> {
        let (client, dialect) = connect_clickhouse(config).await?;
        Ok(Sides {
            client,
            dialect,
            hot: config.hot_database.clone(),
            cold: config.cold_database.clone(),
            hot_source: ClickHouseSource::connect(config, &config.hot_database).await?,
            parquet,
            handle: Handle::current(),
        })
    }

    pub fn has_parquet(&self) -> bool {
        self.parquet.is_some()
    }

    fn db(&self, side: Side) -> &str {
        match side {
            Side::Cold => &self.cold,
            _ => &self.hot,
        }
    }

    async fn fetch<T: clickhouse::RowOwned + clickhouse::RowRead>(
        &self,
        sql: &str,
    ) -> Result<Vec<T>> {
        self.client
            .query(sql)
            .fetch_all()
            .await
            .map_err(|e| Error::Other(format!("{e}; query: {sql}")))
    }

    async fn count(&self, sql: &str) -> Result<u64> {
        Ok(self
            .fetch::<u64>(sql)
            .await?
            .into_iter()
            .next()
            .unwrap_or(0))
    }

    /// Every (table, exchange, symbol, `ts_ms`) of a day any side holds in `filter`'s range: a
    /// `SELECT DISTINCT` per existing table and database, and every row of the Parquet dataset's selected
    /// partitions (a file that cannot be read is an error: it cannot be verified).
    pub async fn found(&self, filter: &Filter) -> Result<Vec<(DataType, Exchange, String, i64)>> {
        let mut out = Vec::new();
        let ts = self.dialect.ms("ts_ms");
        let mut tables = HashSet::new();
        for db in [&self.hot, &self.cold] {
            let sql = format!(
                "SELECT name FROM system.tables WHERE database = {}",
                quote(db)
            );
            for name in self.fetch::<String>(&sql).await? {
                tables.insert(format!("{db}.{name}"));
            }
        }
        for dt in filter.types() {
            for db in [&self.hot, &self.cold] {
                // A missing table holds nothing: its units are planned from the other sides and
                // fail in step `query` naming it, rather than the whole job failing to plan.
                if !tables.contains(&format!("{db}.{dt}")) {
                    tracing::warn!(table = %format!("{db}.{dt}"), "table missing");
                    continue;
                }
                let sql = format!(
                    "SELECT DISTINCT toString(exchange) AS exchange, toString(symbol) AS symbol, \
                     toInt64(intDiv({ts}, 86400000) * 86400000) AS day FROM {db}.{dt} \
                     WHERE {ts} >= {} AND {ts} < {}",
                    filter.from_ms, filter.to_ms
                );
                for f in self.fetch::<Found>(&sql).await? {
                    match super::plan::parse_exchange(&f.exchange) {
                        Some(ex) => out.push((dt, ex, f.symbol, f.day)),
                        None => {
                            tracing::warn!(table = %dt, exchange = %f.exchange, "rows of an unknown exchange left out")
                        }
                    }
                }
            }
        }
        if let Some(root) = &self.parquet {
            for rel in list_dataset(root)? {
                let (Some(dt), Some(ex)) = (data_type_of(&rel), exchange_of(&rel)) else {
                    continue;
                };
                if !filter.wants_type(dt) || !filter.wants_exchange(ex) {
                    continue;
                }
                let path = root.join(&rel);
                let bad =
                    |e: &dyn std::fmt::Display| Error::Other(format!("{}: {e}", path.display()));
                let events = read_file(&path, dt)
                    .map_err(|e| bad(&e))?
                    .to_events()
                    .map_err(|e| bad(&e))?;
                out.extend(
                    events
                        .into_iter()
                        .filter(|e| filter.matches(e))
                        .map(|e| (dt, e.exchange, e.symbol.as_str().to_owned(), e.ts_ms)),
                );
            }
        }
        Ok(out)
    }

    /// The SQL condition of a unit's stream and window on table `data_type`.
    fn cond(&self, unit: &VerifyUnit, filter: &Filter) -> String {
        let (from, to) = unit.window(filter);
        let ts = self.dialect.ms("ts_ms");
        format!(
            "exchange = {} AND symbol = {} AND {ts} >= {from} AND {ts} < {to}",
            quote(unit.exchange.as_str()),
            quote(&unit.symbol)
        )
    }

    /// A database's figures of a unit.
    async fn ch_figures(&self, db: &str, unit: &VerifyUnit, filter: &Filter) -> Result<Figures> {
        let (dt, cond, ts) = (
            unit.data_type,
            self.cond(unit, filter),
            self.dialect.ms("ts_ms"),
        );
        // toString: 18.16's uniqExact takes no Decimal; the text of a value is as unique as the value.
        let keys = sort_key(dt)
            .iter()
            .map(|k| format!("toString({k})"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT count() AS rows, uniqExact({keys}) AS keys, min({ts}) AS lo, max({ts}) AS hi \
             FROM {db}.{dt} WHERE {cond}"
        );
        let span = self.fetch::<Span>(&sql).await?.into_iter().next();
        let span = span.unwrap_or(Span {
            rows: 0,
            keys: 0,
            lo: 0,
            hi: 0,
        });
        let content = self
            .fetch::<Content>(&format!(
                "SELECT count() AS rows, groupBitXor({}) AS checksum FROM {db}.{dt} FINAL WHERE {cond}",
                row_hash(dt)
            ))
            .await?
            .into_iter()
            .next()
            .unwrap_or(Content {
                rows: 0,
                checksum: 0,
            });
        let gap_unit = VerifyUnit {
            data_type: DataType::Gaps,
            ..unit.clone()
        };
        let gaps = self
            .count(&format!(
                "SELECT count() FROM {db}.gaps FINAL WHERE {} AND toString(data_type) = {}",
                self.cond(&gap_unit, filter),
                quote(dt.as_str())
            ))
            .await?;
        Ok(Figures {
            rows_final: content.rows,
            checksum: Some(content.checksum),
            distinct_keys: span.keys,
            duplicates: span.rows - span.keys,
            min_ts_ms: (span.rows > 0).then_some(span.lo),
            max_ts_ms: (span.rows > 0).then_some(span.hi),
            gaps,
        })
    }

    /// `SELECT` of the unit's rows in `from` (after `FINAL`) whose sort key `to` lacks.
    fn absent_sql(&self, from: &str, to: &str, unit: &VerifyUnit, filter: &Filter) -> String {
        let (dt, cond) = (unit.data_type, self.cond(unit, filter));
        let key = sort_key(dt).join(", ");
        let cols = columns(dt)
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "SELECT {cols} FROM {from}.{dt} FINAL WHERE {cond} \
             AND ({key}) NOT IN (SELECT {key} FROM {to}.{dt} WHERE {cond})"
        )
    }

    /// Keys of the unit both `a` and `b` hold (after `FINAL`) whose rows differ in any column: their
    /// count and the first [`KEYS_NAMED`] as text (sort key columns joined by `/`). The same SQL on
    /// both databases, so the row hash is computed alike.
    async fn values_differ(
        &self,
        a: &str,
        b: &str,
        unit: &VerifyUnit,
        filter: &Filter,
    ) -> Result<(u64, Vec<String>)> {
        let (dt, cond) = (unit.data_type, self.cond(unit, filter));
        let key = sort_key(dt).join(", ");
        let text = sort_key(dt)
            .iter()
            .map(|k| format!("toString({k})"))
            .collect::<Vec<_>>()
            .join(", ");
        let h = row_hash(dt);
        let sql = format!(
            "SELECT count() AS rows, groupArray({KEYS_NAMED})(k) AS keys FROM (\
             SELECT arrayStringConcat([{text}], '/') AS k FROM {a}.{dt} FINAL WHERE {cond} \
             AND ({key}) IN (SELECT {key} FROM {b}.{dt} WHERE {cond}) \
             AND ({key}, {h}) NOT IN (SELECT {key}, {h} FROM {b}.{dt} FINAL WHERE {cond}) \
             ORDER BY k)"
        );
        let d = self.fetch::<Differing>(&sql).await?.into_iter().next();
        Ok(d.map_or((0, vec![]), |d| (d.rows, d.keys)))
    }

    /// `OPTIMIZE TABLE … PARTITION … FINAL` of every partition of `db`'s table holding rows of the
    /// unit: merges away the copies of a key (ReplacingMergeTree) that verify reports as duplicates.
    ///
    /// Why repair needs it: copying Parquet rows into hot fires the hot → cold materialized view,
    /// and a key cold already holds (hot lost it, cold did not) gets a second copy in cold. Neither
    /// 18.16 nor 23.8 can insert into a table without firing its views, and attaching a staged
    /// partition would move whole partitions; so repair copies, then merges the affected partitions
    /// (found through the rows' `_part` and `system.parts`, the same SQL on both versions). A merge
    /// that does not happen (merges stopped) leaves the duplicates, and the check after the repair
    /// then fails the unit rather than recording it done.
    async fn optimize(&self, db: &str, unit: &VerifyUnit, filter: &Filter) -> Result<()> {
        let (dt, cond) = (unit.data_type, self.cond(unit, filter));
        let sql = format!(
            "SELECT DISTINCT partition FROM system.parts WHERE database = {} AND table = {} \
             AND active AND name IN (SELECT DISTINCT _part FROM {db}.{dt} WHERE {cond})",
            quote(db),
            quote(dt.as_str())
        );
        for partition in self.fetch::<String>(&sql).await? {
            let sql = format!("OPTIMIZE TABLE {db}.{dt} PARTITION {partition} FINAL");
            self.client
                .query(&sql)
                .execute()
                .await
                .map_err(|e| Error::Other(format!("{e}; query: {sql}")))?;
        }
        Ok(())
    }

    /// Merges the duplicates `result` reports in hot or cold (`OPTIMIZE … PARTITION … FINAL`, see
    /// `Sides::optimize`).
    pub fn merge_duplicates(
        &self,
        unit: &VerifyUnit,
        filter: &Filter,
        result: &UnitResult,
    ) -> Result<bool, UnitError> {
        let mut merged = false;
        for d in &result.discrepancies {
            if let Discrepancy::Duplicates {
                side: side @ (Side::Hot | Side::Cold),
                ..
            } = d
            {
                self.handle
                    .block_on(self.optimize(self.db(*side), unit, filter))
                    .map_err(|e| UnitError::new("optimize", e))?;
                merged = true;
            }
        }
        Ok(merged)
    }

    /// Natural keys of the unit in `from` that `to` lacks.
    async fn missing(
        &self,
        from: &str,
        to: &str,
        unit: &VerifyUnit,
        filter: &Filter,
    ) -> Result<u64> {
        let sql = self.absent_sql(from, to, unit, filter);
        self.count(&format!("SELECT count() FROM ({sql})")).await
    }

    /// The unit's Parquet rows (every copy) and its stream's Parquet gap rows.
    fn parquet_events(
        &self,
        unit: &VerifyUnit,
        filter: &Filter,
    ) -> Result<(Vec<Event>, Vec<Event>), UnitError> {
        let Some(root) = &self.parquet else {
            return Ok((vec![], vec![]));
        };
        let read = |data_type: DataType| -> Result<Vec<Event>, UnitError> {
            let f = Filter {
                data_types: vec![data_type],
                ..unit.filter(filter)
            };
            let part = Partition {
                day: day_name(unit.day_ms),
                data_type,
                from_ms: f.from_ms,
                to_ms: f.to_ms,
            };
            let mut out = Vec::new();
            for source in parquet_sources(root, &part, &f) {
                out.extend(open_source(source.source, &f, None, &self.handle)?.flatten());
            }
            Ok(out)
        };
        let rows = read(unit.data_type)?;
        let gaps = read(DataType::Gaps)?
            .into_iter()
            .filter(|e| matches!(&e.payload, Payload::Gap(g) if g.data_type == unit.data_type))
            .collect();
        Ok((rows, gaps))
    }

    /// Verifies one unit: figures per side, missing keys both ways per pair, duplicates. The
    /// Parquet rows whose key hot lacks come back for [`Self::repair`].
    pub fn check(
        &self,
        unit: &VerifyUnit,
        filter: &Filter,
    ) -> Result<(UnitResult, Vec<Event>), UnitError> {
        let q = |e: Error| UnitError::new("query", e);
        let h = &self.handle;
        let hot = h
            .block_on(self.ch_figures(&self.hot, unit, filter))
            .map_err(q)?;
        let cold = h
            .block_on(self.ch_figures(&self.cold, unit, filter))
            .map_err(q)?;
        let to_cold = h
            .block_on(self.missing(&self.hot, &self.cold, unit, filter))
            .map_err(q)?;
        let to_hot = h
            .block_on(self.missing(&self.cold, &self.hot, unit, filter))
            .map_err(q)?;
        let mut discrepancies = compare(Side::Hot, &hot, Side::Cold, &cold, to_cold, to_hot);
        if hot.checksum != cold.checksum {
            let (rows, keys) = h
                .block_on(self.values_differ(&self.hot, &self.cold, unit, filter))
                .map_err(q)?;
            if rows > 0 {
                discrepancies.push(Discrepancy::ValuesDiffer {
                    a: Side::Hot,
                    b: Side::Cold,
                    rows,
                    keys,
                });
            }
        }
        let (mut parquet, mut absent) = (None, Vec::new());
        if self.has_parquet() {
            let (rows, gaps) = self.parquet_events(unit, filter)?;
            let pq = event_figures(&rows, &gaps);
            let f = unit.filter(filter);
            let hot_rows = h
                .block_on(self.hot_source.page(unit.data_type, &f, f.from_ms, f.to_ms))
                .map_err(q)?;
            let in_hot: HashSet<u64> = hot_rows.iter().map(|e| fingerprint(&e.msg_id())).collect();
            // Values: both sides' rows decoded into events the same way, digested in Rust.
            let (differ, keys) = values_differ(&hot_rows, &rows);
            let mut seen = HashSet::new();
            for e in rows {
                let key = fingerprint(&e.msg_id());
                if !in_hot.contains(&key) && seen.insert(key) {
                    absent.push(e);
                }
            }
            // |hot ∖ parquet| = |hot| − |hot ∩ parquet|, and |hot ∩ parquet| = |parquet| − |parquet ∖ hot|.
            let in_parquet =
                (in_hot.len() as u64 + absent.len() as u64).saturating_sub(pq.distinct_keys);
            discrepancies.extend(compare(
                Side::Parquet,
                &pq,
                Side::Hot,
                &hot,
                absent.len() as u64,
                in_parquet,
            ));
            if differ > 0 {
                discrepancies.push(Discrepancy::ValuesDiffer {
                    a: Side::Hot,
                    b: Side::Parquet,
                    rows: differ,
                    keys,
                });
            }
            parquet = Some(pq);
        }
        let mut sides = vec![(Side::Hot, &hot), (Side::Cold, &cold)];
        if let Some(p) = &parquet {
            sides.push((Side::Parquet, p));
        }
        discrepancies.extend(duplicates(&sides));
        let result = UnitResult {
            unit: unit.id(),
            discrepancies,
            hot,
            cold,
            parquet,
            repaired_rows: None,
        };
        Ok((result, absent))
    }

    /// Copies what `result` found missing: the Parquet rows hot lacks (`absent`) through the
    /// pipeline's writer into hot (its view copies them on to cold), then hot's rows (after
    /// `FINAL`) whose key cold lacks into cold, restricted to those keys so no copy of a row cold
    /// holds is added (which verify would report as a duplicate until a merge). Returns the rows copied.
    pub fn repair(
        &self,
        unit: &VerifyUnit,
        filter: &Filter,
        result: &UnitResult,
        absent: &[Event],
        writer: Option<&ClickHouseWriter>,
    ) -> Result<u64, UnitError> {
        let mut copied = 0;
        if !absent.is_empty() {
            let writer = writer.ok_or_else(|| UnitError::new("insert", "no ClickHouse writer"))?;
            self.handle
                .block_on(writer.insert(unit.data_type, absent))
                .map_err(|e| UnitError::new("insert", e))?;
            copied += absent.len() as u64;
        }
        let cold_lacks = result.discrepancies.iter().any(|d| {
            matches!(
                d,
                Discrepancy::Missing {
                    side: Side::Cold,
                    ..
                }
            )
        });
        if cold_lacks || !absent.is_empty() {
            let (hot, cold) = (self.db(Side::Hot), self.db(Side::Cold));
            let n = self
                .handle
                .block_on(self.missing(hot, cold, unit, filter))
                .map_err(|e| UnitError::new("query", e))?;
            if n > 0 {
                let dt = unit.data_type;
                let cols = columns(dt)
                    .iter()
                    .map(|c| c.name)
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO {cold}.{dt} ({cols}) {}",
                    self.absent_sql(hot, cold, unit, filter)
                );
                self.handle
                    .block_on(self.client.query(&sql).execute())
                    .map_err(|e| UnitError::new("copy", format!("{e}; query: {sql}")))?;
                copied += n;
            }
        }
        Ok(copied)
    }
}
