//! Replay's I/O: the lazy sources (Parquet files, ClickHouse hour pages) and the outputs (stdout
//! NDJSON, JetStream with the live message ids).

use super::merge::Lazy;
use super::plan::{Filter, Partition, exchange_of};
use crate::error::{Error, Result};
use async_nats::jetstream::{self, context::PublishAckFuture};
use clickhouse::{Client, Row};
use marketprism_config::{ClickHouseConfig, NatsConfig};
use marketprism_jobs::UnitError;
use marketprism_model::{DataType, Event, subject_of_msg_id};
use marketprism_pipeline::publish::streams::{connect, ensure_streams, prefixed};
use marketprism_pipeline::store::clickhouse::clickhouse_client;
use marketprism_pipeline::store::columns::{columns, sort_key};
use marketprism_pipeline::store::parquet::read_file;
use marketprism_pipeline::store::rows::*;
use marketprism_pipeline::store::{Dialect, TableRow};
use serde::Deserialize;
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::runtime::Handle;

/// A ClickHouse page: one hour of exchange time (ms).
pub const PAGE_MS: i64 = 3_600_000;

/// Publishes awaiting their JetStream ack at once.
const ACK_WINDOW: usize = 512;

/// One merge input, not yet read.
#[derive(Debug, Clone)]
pub enum Source {
    /// A Parquet file of a partition.
    File { path: PathBuf, data_type: DataType },
    /// `[from_ms, to_ms)` of one ClickHouse table.
    Page {
        data_type: DataType,
        from_ms: i64,
        to_ms: i64,
    },
}

/// A source's events, sorted by `ts_ms`.
pub type Events = std::iter::Map<std::vec::IntoIter<Event>, fn(Event) -> Result<Event, UnitError>>;

fn events(mut v: Vec<Event>) -> Events {
    // Stable: equal times keep their stored order.
    v.sort_by_key(|e| e.ts_ms);
    v.into_iter()
        .map(Ok as fn(Event) -> Result<Event, UnitError>)
}

/// `[min, max]` of a Parquet file's `ts_ms` from its footer statistics (no rows read); `None`
/// when the file has none or cannot be read (it is then opened first, and a damage shows there).
pub fn parquet_ts_bounds(path: &Path) -> Option<(i64, i64)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;
    let reader = SerializedFileReader::new(std::fs::File::open(path).ok()?).ok()?;
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for rg in reader.metadata().row_groups() {
        let col = rg
            .columns()
            .iter()
            .find(|c| c.column_descr().name() == "ts_ms")?;
        match col.statistics()? {
            Statistics::Int64(s) => {
                lo = lo.min(*s.min_opt()?);
                hi = hi.max(*s.max_opt()?);
            }
            _ => return None,
        }
    }
    Some((lo, hi))
}

/// The Parquet sources of `part` under `root`: its files of the selected exchanges whose `ts_ms`
/// range meets the partition's, each with its lower bound (sorted by path).
pub fn parquet_sources(root: &Path, part: &Partition, filter: &Filter) -> Vec<Lazy<Source>> {
    let day_dir = root.join(format!("date={}", part.day));
    let mut files = Vec::new();
    for ex in std::fs::read_dir(&day_dir).into_iter().flatten().flatten() {
        let name = ex.file_name().to_string_lossy().into_owned();
        if exchange_of(&name).is_none_or(|x| !filter.wants_exchange(x)) {
            continue;
        }
        let dir = ex.path().join(format!("data_type={}", part.data_type));
        for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let fname = f.file_name().to_string_lossy().into_owned();
            if super::plan::is_data_file(&fname) {
                files.push(f.path());
            }
        }
    }
    files.sort();
    let window = Filter {
        from_ms: part.from_ms,
        to_ms: part.to_ms,
        ..filter.clone()
    };
    files
        .into_iter()
        .filter_map(|path| {
            let min_ts = match parquet_ts_bounds(&path) {
                Some((lo, hi)) if lo > hi => return None, // no rows
                Some((lo, hi)) if !window.overlaps(lo, hi) => return None,
                Some((lo, _)) => lo,
                None => i64::MIN,
            };
            Some(Lazy {
                min_ts,
                source: Source::File {
                    path,
                    data_type: part.data_type,
                },
            })
        })
        .collect()
}

/// Reads a ClickHouse database for replay.
pub struct ClickHouseSource {
    client: Client,
    database: String,
    dialect: Dialect,
}

#[derive(Row, Deserialize)]
struct Span {
    rows: u64,
    lo: i64,
    hi: i64,
}

/// A client for `config`'s server and the server's dialect (from `SELECT version()`); an
/// unreachable server is an error naming it.
pub async fn connect_clickhouse(config: &ClickHouseConfig) -> Result<(Client, Dialect)> {
    let client = clickhouse_client(config);
    let version: String = client
        .query("SELECT version()")
        .fetch_one()
        .await
        .map_err(|e| Error::Other(format!("ClickHouse {}: {e}", config.url)))?;
    Ok((client, Dialect::from_version(&version)))
}

impl ClickHouseSource {
    pub async fn connect(config: &ClickHouseConfig, database: &str) -> Result<Self> {
        let (client, dialect) = connect_clickhouse(config).await?;
        Ok(Self {
            client,
            database: database.to_owned(),
            dialect,
        })
    }

    /// `ts_ms` as UTC ms in SQL (see [`Dialect::ms`]).
    fn ts(&self) -> String {
        self.dialect.ms("ts_ms")
    }

    /// The SQL condition of `filter`'s exchanges and symbols and `[from_ms, to_ms)` of exchange time.
    pub fn condition(&self, filter: &Filter, from_ms: i64, to_ms: i64) -> String {
        let ts = self.ts();
        let mut sql = format!("{ts} >= {from_ms} AND {ts} < {to_ms}");
        // Exchanges are enum names and symbols validated `A-Z0-9-`: nothing to escape.
        let list = |v: Vec<&str>| {
            v.iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !filter.exchanges.is_empty() {
            let ex = list(filter.exchanges.iter().map(|x| x.as_str()).collect());
            sql.push_str(&format!(" AND exchange IN ({ex})"));
        }
        if !filter.symbols.is_empty() {
            let sym = list(filter.symbols.iter().map(String::as_str).collect());
            sql.push_str(&format!(" AND symbol IN ({sym})"));
        }
        sql
    }

    /// The hour pages of `part` holding rows, each with its lower bound.
    pub async fn sources(&self, part: &Partition, filter: &Filter) -> Result<Vec<Lazy<Source>>> {
        let (db, table, ts) = (&self.database, part.data_type, self.ts());
        let cond = self.condition(filter, part.from_ms, part.to_ms);
        let sql = format!(
            "SELECT count() AS rows, min({ts}) AS lo, max({ts}) AS hi FROM {db}.{table} WHERE {cond}"
        );
        let span: Span = self
            .client
            .query(&sql)
            .fetch_one()
            .await
            .map_err(|e| Error::Other(format!("{e}; query: {sql}")))?;
        let mut out = Vec::new();
        if span.rows == 0 {
            return Ok(out);
        }
        let mut from = span.lo.div_euclid(PAGE_MS) * PAGE_MS;
        while from <= span.hi {
            let to = (from + PAGE_MS).min(part.to_ms);
            out.push(Lazy {
                min_ts: from.max(span.lo),
                source: Source::Page {
                    data_type: part.data_type,
                    from_ms: from.max(part.from_ms),
                    to_ms: to,
                },
            });
            from += PAGE_MS;
        }
        Ok(out)
    }

    /// The events of `data_type` selected by `filter` in `[from_ms, to_ms)` of exchange time, after
    /// `FINAL`, ordered by `ts_ms` and the sort key.
    pub async fn page(
        &self,
        data_type: DataType,
        filter: &Filter,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Event>> {
        let cols = columns(data_type);
        let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
        let key = sort_key(data_type).join(", ");
        let sql = format!(
            "SELECT {} FROM {}.{data_type} FINAL WHERE {} ORDER BY ts_ms, {key}",
            names.join(", "),
            self.database,
            self.condition(filter, from_ms, to_ms)
        );
        macro_rules! fetch {
            ($($dt:ident => $row:ty),* $(,)?) => {
                match data_type {
                    $(DataType::$dt => self.fetch::<$row>(&sql).await,)*
                }
            };
        }
        fetch!(
            Orderbooks => OrderbookRow, Trades => TradeRow, FundingRates => FundingRateRow,
            OpenInterests => OpenInterestRow, Liquidations => LiquidationRow,
            LsrTopPositions => LsrTopPositionRow, LsrAllAccounts => LsrAllAccountRow,
            VolatilityIndices => VolatilityIndexRow, Gaps => GapRow, SignalOfi => SignalOfiRow,
            SignalCvd => SignalCvdRow, SignalFusion => SignalFusionRow,
            SignalEvents => SignalEventRow,
        )
    }

    async fn fetch<R: TableRow>(&self, sql: &str) -> Result<Vec<Event>> {
        let rows: Vec<R> = self
            .client
            .query(sql)
            .fetch_all()
            .await
            .map_err(|e| Error::Other(format!("{e}; query: {sql}")))?;
        rows.iter()
            .map(|r| r.to_event().map_err(|e| Error::Other(e.to_string())))
            .collect()
    }
}

/// Opens a source: reads its events (filtered, sorted by `ts_ms`). Failures are step `read`.
pub fn open_source(
    source: Source,
    filter: &Filter,
    clickhouse: Option<&ClickHouseSource>,
    handle: &Handle,
) -> Result<Events, UnitError> {
    let read =
        |e: &dyn std::fmt::Display, what: &str| UnitError::new("read", format!("{what}: {e}"));
    let all = match source {
        Source::File { path, data_type } => {
            let what = path.display().to_string();
            read_file(&path, data_type)
                .map_err(|e| read(&e, &what))?
                .to_events()
                .map_err(|e| read(&e, &what))?
        }
        Source::Page {
            data_type,
            from_ms,
            to_ms,
        } => {
            let ch = clickhouse.ok_or_else(|| UnitError::new("read", "no ClickHouse source"))?;
            handle
                .block_on(ch.page(data_type, filter, from_ms, to_ms))
                .map_err(|e| read(&e, data_type.as_str()))?
        }
    };
    Ok(events(
        all.into_iter().filter(|e| filter.matches(e)).collect(),
    ))
}

/// Where replayed events go.
pub enum Output {
    /// NDJSON of the normalized `Event`, one per line.
    Stdout(std::io::BufWriter<std::io::Stdout>),
    /// JetStream: subject and `Nats-Msg-Id` exactly as the live publisher makes them for a message
    /// of one event (replay never batches: a second replay is recognized by JetStream's duplicate window).
    Nats {
        js: Box<jetstream::Context>,
        prefix: String,
        acks: VecDeque<PublishAckFuture>,
    },
}

/// What an output did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct OutputStats {
    /// Events written or published (and acked).
    pub events: u64,
    /// Of the published, those JetStream dropped as duplicates of a message id in its window.
    pub duplicates: u64,
}

impl Output {
    /// Connects to NATS and makes sure the data streams exist (as the live publisher does).
    pub async fn nats(config: &NatsConfig) -> Result<Output> {
        let client = connect(config, "marketprism-replay").await?;
        let js = jetstream::new(client);
        ensure_streams(&js, config).await?;
        Ok(Output::Nats {
            js: Box::new(js),
            prefix: config.subject_prefix.clone(),
            acks: VecDeque::new(),
        })
    }

    /// Writes or publishes one event (a publish is acked by [`Self::flush`] or when the window is full).
    pub fn send(
        &mut self,
        handle: &Handle,
        event: &Event,
        stats: &mut OutputStats,
    ) -> Result<(), UnitError> {
        match self {
            Output::Stdout(out) => {
                serde_json::to_writer(&mut *out, event).map_err(|e| UnitError::new("write", e))?;
                out.write_all(b"\n")
                    .map_err(|e| UnitError::new("write", e))?;
                stats.events += 1;
            }
            Output::Nats { js, prefix, acks } => {
                if acks.len() >= ACK_WINDOW {
                    let ack = acks.pop_front().expect("non-empty window");
                    wait_ack(handle, ack, stats)?;
                }
                // The live publisher's id and subject (`publish::publisher`): never re-derived here.
                let msg_id = event.msg_id();
                let subject = prefixed(prefix, subject_of_msg_id(&msg_id));
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", msg_id.as_str());
                let payload =
                    serde_json::to_vec(event).map_err(|e| UnitError::new("publish", e))?;
                let ack = handle
                    .block_on(js.publish_with_headers(subject, headers, payload.into()))
                    .map_err(|e| UnitError::new("publish", e))?;
                acks.push_back(ack);
            }
        }
        Ok(())
    }

    /// Makes everything sent so far durable: stdout flushed, every publish acked.
    pub fn flush(&mut self, handle: &Handle, stats: &mut OutputStats) -> Result<(), UnitError> {
        match self {
            Output::Stdout(out) => out.flush().map_err(|e| UnitError::new("write", e)),
            Output::Nats { acks, .. } => {
                while let Some(ack) = acks.pop_front() {
                    wait_ack(handle, ack, stats)?;
                }
                Ok(())
            }
        }
    }

    /// Drops publishes still awaiting acks (after a failure: their unit is redone).
    pub fn reset(&mut self) {
        if let Output::Nats { acks, .. } = self {
            acks.clear();
        }
    }
}

fn wait_ack(
    handle: &Handle,
    ack: PublishAckFuture,
    stats: &mut OutputStats,
) -> Result<(), UnitError> {
    let ack = handle
        .block_on(ack.into_future())
        .map_err(|e| UnitError::new("publish", e))?;
    stats.events += 1;
    stats.duplicates += u64::from(ack.duplicate);
    Ok(())
}
