//! `job backfill`'s I/O: the gaps and stored trades in ClickHouse, the venue's history over REST, the
//! publish through JetStream, the wait until ClickHouse holds what was published, and the fill
//! record. The decisions are pure and elsewhere: which trades are missing
//! ([`marketprism_venues::history::missing`]), which requests page the venue's history
//! ([`marketprism_venues::history`]).

use super::backfill::GapUnit;
use super::replay_io::{Output, OutputStats, connect_clickhouse};
use crate::error::{Error, Result};
use clickhouse::{Client, Row};
use marketprism_config::{ClickHouseConfig, Config, ExchangeConfig};
use marketprism_jobs::UnitError;
use marketprism_model::instruments::InstrumentTable;
use marketprism_model::{Exchange, now_ms};
use marketprism_pipeline::store::Dialect;
use marketprism_pipeline::store::gap_fills::{self, GapFill};
use marketprism_venues::history::{self, Stored, Window, trade_id};
use marketprism_venues::rate_limit::RateLimiter;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::runtime::Handle;

#[derive(Row, Deserialize)]
struct GapRow {
    exchange: String,
    market_type: String,
    symbol: String,
    start_ms: i64,
    end_ms: i64,
    cause: String,
}

#[derive(Row, Deserialize)]
struct StoredRow {
    trade_id: String,
    ts: i64,
    /// As text: Decimal columns differ between the ClickHouse versions' row formats.
    raw_quantity: String,
}

/// Trade gaps recorded in `[from_ms, to_ms)` (by start), of the given exchanges and symbols (empty:
/// all), leaving out `refused` ones (the venue never listed or served the stream: there is no history
/// to fetch). One row per gap key (`FINAL`).
pub async fn recorded_gaps(
    client: &Client,
    dialect: Dialect,
    hot: &str,
    from_ms: i64,
    to_ms: i64,
    exchanges: &[Exchange],
    symbols: &[String],
) -> Result<Vec<GapUnit>> {
    let start = dialect.ms("start_ms");
    let end = dialect.ms("end_ms");
    let sql = format!(
        "SELECT exchange, market_type, symbol, {start} AS start_ms, {end} AS end_ms, cause \
         FROM {hot}.gaps FINAL WHERE data_type = 'trades' AND cause != 'refused' \
         AND {start} >= {from_ms} AND {start} < {to_ms} ORDER BY start_ms, exchange, symbol"
    );
    let rows: Vec<GapRow> = client
        .query(&sql)
        .fetch_all()
        .await
        .map_err(|e| Error::Other(format!("ClickHouse {hot}.gaps: {e}")))?;
    Ok(rows
        .into_iter()
        .filter(|r| {
            (exchanges.is_empty() || exchanges.iter().any(|x| x.as_str() == r.exchange))
                && (symbols.is_empty() || symbols.contains(&r.symbol))
        })
        .map(|r| GapUnit {
            exchange: r.exchange,
            market_type: r.market_type,
            symbol: r.symbol,
            start_ms: r.start_ms,
            end_ms: r.end_ms,
            cause: r.cause,
        })
        .collect())
}

#[derive(Row, Deserialize)]
struct FillRow {
    exchange: String,
    market_type: String,
    symbol: String,
    gap_start_ms: i64,
    cause: String,
    holes_left: i64,
}

/// Trade ids still missing over `units`, as their `gap_fills` rows record them (units filled by this
/// run or an earlier, interrupted one alike; -1, "ids say nothing", counts 0).
pub async fn recorded_holes(client: &Client, hot: &str, units: &[GapUnit]) -> Result<u64> {
    let (Some(from), Some(to)) = (
        units.iter().map(|u| u.start_ms).min(),
        units.iter().map(|u| u.start_ms).max(),
    ) else {
        return Ok(0);
    };
    let key = |e: &str, m: &str, s: &str, t: i64, c: &str| {
        (e.to_owned(), m.to_owned(), s.to_owned(), t, c.to_owned())
    };
    let planned: std::collections::HashSet<_> = units
        .iter()
        .map(|u| key(&u.exchange, &u.market_type, &u.symbol, u.start_ms, &u.cause))
        .collect();
    let sql = format!(
        "SELECT exchange, market_type, symbol, gap_start_ms, cause, holes_left FROM {hot}.{} FINAL \
         WHERE data_type = 'trades' AND gap_start_ms >= {from} AND gap_start_ms <= {to}",
        gap_fills::TABLE
    );
    let rows: Vec<FillRow> = client
        .query(&sql)
        .fetch_all()
        .await
        .map_err(|e| Error::Other(format!("ClickHouse {hot}.{}: {e}", gap_fills::TABLE)))?;
    Ok(rows
        .iter()
        .filter(|r| {
            planned.contains(&key(
                &r.exchange,
                &r.market_type,
                &r.symbol,
                r.gap_start_ms,
                &r.cause,
            ))
        })
        .map(|r| r.holes_left.max(0) as u64)
        .sum())
}

/// Everything a unit needs, shared by all units of a run.
pub struct Backfiller {
    pub client: Client,
    pub dialect: Dialect,
    pub clickhouse: ClickHouseConfig,
    pub exchanges: HashMap<Exchange, ExchangeConfig>,
    pub http: marketprism_venues::RestClient,
    pub limiters: HashMap<Exchange, RateLimiter>,
    pub instruments: HashMap<Exchange, InstrumentTable>,
    pub output: Output,
    pub handle: Handle,
    pub margin_ms: i64,
    pub land_timeout: Duration,
    pub max_pages: usize,
}

/// What one unit did (summed into the run's details).
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitFigures {
    pub fetched: u64,
    pub published: u64,
    pub holes_left: u64,
}

impl Backfiller {
    pub async fn connect(config: &Config, clickhouse: ClickHouseConfig) -> Result<Backfiller> {
        let nats = config
            .outputs
            .nats
            .clone()
            .or(config.sink.as_ref().map(|s| s.nats.clone()))
            .ok_or_else(|| {
                Error::Other(
                    "invalid config: job backfill publishes through NATS: set `outputs.nats` or `sink.nats`"
                        .into(),
                )
            })?;
        let (client, dialect) = connect_clickhouse(&clickhouse).await?;
        for sql in gap_fills::ddl(&clickhouse) {
            client
                .query(&sql)
                .execute()
                .await
                .map_err(|e| Error::Other(format!("ClickHouse: {e}: {sql}")))?;
        }
        let output = Output::nats(&nats).await?;
        Ok(Backfiller {
            client,
            dialect,
            clickhouse,
            exchanges: config
                .exchanges
                .iter()
                .map(|e| (e.exchange, e.clone()))
                .collect(),
            http: marketprism_venues::rest_client(&config.tls.client),
            limiters: HashMap::new(),
            instruments: HashMap::new(),
            output,
            handle: Handle::current(),
            margin_ms: 0,
            land_timeout: Duration::from_secs(120),
            max_pages: 1000,
        })
    }

    /// Fills one gap: fetch the window, publish what is not stored, wait until ClickHouse holds it,
    /// record the fill. Every step is idempotent (message ids, ReplacingMergeTree keys).
    pub fn fill(&mut self, gap: &GapUnit) -> std::result::Result<UnitFigures, UnitError> {
        let exchange = super::plan::parse_exchange(&gap.exchange).ok_or_else(|| {
            UnitError::new("config", format!("unknown exchange {}", gap.exchange))
        })?;
        let config = self.exchanges.get(&exchange).cloned().ok_or_else(|| {
            UnitError::new(
                "config",
                format!(
                    "{} is not in the config's exchanges: no endpoint to ask",
                    gap.exchange
                ),
            )
        })?;
        let window = Window {
            from_ms: gap.start_ms - self.margin_ms,
            to_ms: gap.end_ms + self.margin_ms,
        };
        let handle = self.handle.clone();
        let limiter = self
            .limiters
            .entry(exchange)
            .or_insert_with(|| marketprism_venues::rest_limiter(exchange))
            .clone();
        if !self.instruments.contains_key(&exchange) {
            let table = handle
                .block_on(marketprism_venues::instruments::fetch(
                    &config, &self.http, &limiter,
                ))
                .map_err(|(url, status, detail)| {
                    UnitError::new("instruments", format!("{url}: {status:?} {detail}"))
                })?;
            self.instruments.insert(exchange, table);
        }
        let symbol = marketprism_model::Symbol::new(gap.symbol.as_str())
            .map_err(|e| UnitError::new("config", format!("symbol {}: {e}", gap.symbol)))?;
        let inst = self.instruments[&exchange]
            .by_symbol(&symbol)
            .cloned()
            .ok_or_else(|| {
                UnitError::new(
                    "instruments",
                    format!("{} does not list {}", gap.exchange, gap.symbol),
                )
            })?;
        // The stream as the live collector writes it (a requested window names no market type).
        let gap = &GapUnit {
            market_type: inst.market_type.as_str().into(),
            ..gap.clone()
        };
        let (_, rest) = marketprism_venues::plan::base_urls(&config);
        let fetched = handle
            .block_on(history::fetch_trades(
                &self.http,
                &limiter,
                exchange,
                &rest,
                &inst,
                window,
                self.max_pages,
            ))
            .map_err(|e| UnitError::new("fetch", e))?;
        let stored = handle
            .block_on(self.stored(gap, window))
            .map_err(|e| UnitError::new("query", e))?;
        let n_fetched = fetched.len() as u64;
        let lost = history::missing(fetched, &stored, history::stream_aggregates(exchange));
        let mut stats = OutputStats::default();
        for event in &lost {
            self.output.send(&handle, event, &mut stats)?;
        }
        self.output.flush(&handle, &mut stats)?;
        let ids: Vec<&str> = lost.iter().map(trade_id).collect();
        handle
            .block_on(self.landed(gap, &ids))
            .map_err(|e| UnitError::new("land", e))?;
        let holes_left = if history::ids_are_contiguous(exchange) {
            // The stored trades of the window and its stored neighbours on either side: a window
            // whose every trade is gone (the venue no longer has them) still shows its hole.
            let mut after = handle
                .block_on(self.stored(gap, window))
                .map_err(|e| UnitError::new("query", e))?;
            after.extend(
                handle
                    .block_on(self.neighbours(gap, window))
                    .map_err(|e| UnitError::new("query", e))?,
            );
            history::id_holes(after.iter().map(|s| s.trade_id.as_str())).map_or(-1, |h| h as i64)
        } else {
            -1
        };
        let fill = GapFill {
            exchange: gap.exchange.clone(),
            market_type: gap.market_type.clone(),
            symbol: gap.symbol.clone(),
            data_type: "trades".into(),
            gap_start_ms: gap.start_ms,
            cause: gap.cause.clone(),
            gap_end_ms: gap.end_ms,
            window_from_ms: window.from_ms,
            window_to_ms: window.to_ms,
            fetched: n_fetched,
            published: lost.len() as u64,
            holes_left,
            first_trade_id: ids.first().map(|s| s.to_string()).unwrap_or_default(),
            last_trade_id: ids.last().map(|s| s.to_string()).unwrap_or_default(),
            source: history::source(exchange).into(),
            filled_at_ms: now_ms(),
        };
        handle
            .block_on(self.record(&fill))
            .map_err(|e| UnitError::new("record", e))?;
        Ok(UnitFigures {
            fetched: n_fetched,
            published: lost.len() as u64,
            holes_left: holes_left.max(0) as u64,
        })
    }

    /// The stream's trades stored in `window` (hot database, before `FINAL`: a copy is a copy).
    async fn stored(
        &self,
        gap: &GapUnit,
        window: Window,
    ) -> std::result::Result<Vec<Stored>, clickhouse::error::Error> {
        let ts = self.dialect.ms("ts_ms");
        let cond = format!("{ts} >= {} AND {ts} <= {}", window.from_ms, window.to_ms);
        self.select_stored(gap, "DISTINCT", &cond, "").await
    }

    /// The last stored trade before `window` and the first after it (by time, then id).
    async fn neighbours(
        &self,
        gap: &GapUnit,
        window: Window,
    ) -> std::result::Result<Vec<Stored>, clickhouse::error::Error> {
        let ts = self.dialect.ms("ts_ms");
        let mut out = Vec::new();
        for (cond, order) in [
            (format!("{ts} < {}", window.from_ms), "DESC"),
            (format!("{ts} > {}", window.to_ms), "ASC"),
        ] {
            let tail = format!("ORDER BY ts {order}, toUInt64OrZero(trade_id) {order} LIMIT 1");
            out.extend(self.select_stored(gap, "", &cond, &tail).await?);
        }
        Ok(out)
    }

    /// `SELECT [modifier] trade_id, ts FROM hot.trades WHERE <the gap's stream> AND cond tail`.
    async fn select_stored(
        &self,
        gap: &GapUnit,
        modifier: &str,
        cond: &str,
        tail: &str,
    ) -> std::result::Result<Vec<Stored>, clickhouse::error::Error> {
        let sql = format!(
            "SELECT {modifier} trade_id, {ts} AS ts, toString(raw_quantity) AS raw_quantity FROM {db}.trades \
             WHERE exchange = ? AND market_type = ? AND symbol = ? AND {cond} {tail}",
            ts = self.dialect.ms("ts_ms"),
            db = self.clickhouse.hot_database,
        );
        let rows: Vec<StoredRow> = self
            .client
            .query(&sql)
            .bind(gap.exchange.as_str())
            .bind(gap.market_type.as_str())
            .bind(gap.symbol.as_str())
            .fetch_all()
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Stored {
                trade_id: r.trade_id,
                ts_ms: r.ts,
                raw_quantity: r.raw_quantity.parse().ok(),
            })
            .collect())
    }

    /// Waits until the hot `trades` table holds every id of `ids` (the sink lands what JetStream
    /// acked), at most `land_timeout`.
    async fn landed(&self, gap: &GapUnit, ids: &[&str]) -> std::result::Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.land_timeout;
        let mut missing: Vec<&str> = ids.to_vec();
        loop {
            let mut still = Vec::new();
            for chunk in missing.chunks(5_000) {
                let sql = format!(
                    "SELECT DISTINCT trade_id FROM {}.trades WHERE exchange = ? AND market_type = ? AND symbol = ? AND has(?, trade_id)",
                    self.clickhouse.hot_database
                );
                let found: Vec<String> = self
                    .client
                    .query(&sql)
                    .bind(gap.exchange.as_str())
                    .bind(gap.market_type.as_str())
                    .bind(gap.symbol.as_str())
                    .bind(chunk)
                    .fetch_all()
                    .await
                    .map_err(|e| e.to_string())?;
                let found: std::collections::HashSet<String> = found.into_iter().collect();
                still.extend(chunk.iter().filter(|id| !found.contains(**id)));
            }
            if still.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{} of {} published trades not in ClickHouse after {:?} (is the sink running?), e.g. {}",
                    still.len(),
                    ids.len(),
                    self.land_timeout,
                    still[0]
                ));
            }
            missing = still;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn record(&self, fill: &GapFill) -> std::result::Result<(), clickhouse::error::Error> {
        let mut insert = self
            .client
            .clone()
            .with_database(&self.clickhouse.hot_database)
            .insert::<GapFill>(gap_fills::TABLE)
            .await?;
        insert.write(fill).await?;
        insert.end().await
    }
}
