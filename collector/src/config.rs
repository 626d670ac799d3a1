//! The collector's YAML configuration: what to collect, where to send it, how to serve probes.
//!
//! The operator renders this file per shard; humans write it for local runs. Every section has defaults
//! so a minimal file works. Unknown fields are rejected, and errors name the field path and what is allowed.
//! Secrets never live here: they come from the environment (see [`Config::apply_env`]).

use crate::error::ConfigError;
use crate::model::{DataType, Exchange, Symbol};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub collector: CollectorSection,
    #[serde(default)]
    pub exchanges: Vec<ExchangeConfig>,
    #[serde(default)]
    pub outputs: OutputsConfig,
    /// JetStream → ClickHouse sink (`marketprism-collector sink`).
    #[serde(default)]
    pub sink: Option<SinkConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    /// Run the built-in exchange simulator and point every exchange without an explicit endpoint at it.
    #[serde(default)]
    pub simulator: Option<SimulatorConfig>,
    /// The shard's instance lock (set by the operator; absent for local runs).
    #[serde(default)]
    pub lease: Option<LeaseConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorSection {
    /// Stable name of this collector instance (pod name in Kubernetes); used in logs and Parquet file names.
    pub instance_id: String,
    /// Stop after this many seconds (demo runs); run until a signal when absent.
    pub duration_s: Option<u64>,
    /// Capacity of the bounded channel between connectors and outputs.
    pub channel_capacity: usize,
    /// A deterministic synthetic event source (all 8 data types and gaps), for tests and benchmarks.
    pub synthetic: Option<SyntheticConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticConfig {
    pub seed: u64,
    /// Events per second (all types together).
    pub rate_per_s: u64,
    /// Stop producing after this many events; endless when absent.
    #[serde(default)]
    pub count: Option<u64>,
}

impl Default for CollectorSection {
    fn default() -> Self {
        CollectorSection {
            instance_id: "local".into(),
            duration_s: None,
            channel_capacity: 65_536,
            synthetic: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    pub exchange: Exchange,
    pub symbols: Vec<Symbol>,
    pub data_types: Vec<DataType>,
    /// Endpoint overrides; the venue's 2026 production endpoints otherwise.
    #[serde(default)]
    pub endpoints: EndpointsConfig,
    #[serde(default)]
    pub orderbook: OrderBookConfig,
    /// Seconds between REST polls for slow data (open interest, long/short ratios).
    #[serde(default = "default_poll_interval_s")]
    pub poll_interval_s: u64,
    /// Seconds without data after which a stream is declared stale and reconnected.
    #[serde(default = "default_stale_after_s")]
    pub stale_after_s: u64,
    /// Seconds after which a connection is replaced, make-before-break, ahead of the venue's 24 h cut.
    #[serde(default = "default_rotate_after_s")]
    pub rotate_after_s: u64,
    /// Seconds to wait for the venue's ack of every subscription before reconnecting.
    #[serde(default = "default_subscribe_timeout_s")]
    pub subscribe_timeout_s: u64,
    /// Period of the long/short ratio polls, as the venue names it (`5m`; OKX also `1H`, ...).
    #[serde(default = "default_lsr_period")]
    pub lsr_period: String,
}

fn default_poll_interval_s() -> u64 {
    60
}
fn default_stale_after_s() -> u64 {
    30
}
fn default_rotate_after_s() -> u64 {
    // MarketPrism's figure: 24 h minus 5 min of margin for the overlap.
    86_100
}
fn default_subscribe_timeout_s() -> u64 {
    10
}
fn default_lsr_period() -> String {
    "5m".into()
}

/// Endpoint overrides (the simulator, a proxy, testnet). Each is a base URL without a path:
/// scheme, host and port (`ws://127.0.0.1:9000`, `https://fapi.binance.com`); the connector appends the
/// venue's own paths, exactly as on the real venue:
///
/// | exchange | ws_url default + appended paths | rest_url default + paths |
/// |---|---|---|
/// | binance_spot | `wss://stream.binance.com:9443` + `/ws` | `https://api.binance.com` + `/api/v3/depth` |
/// | binance_derivatives | `wss://fstream.binance.com` + `/public/ws` (depth) and `/market/ws` (aggTrade, markPrice, forceOrder) | `https://fapi.binance.com` + `/fapi/v1/depth`, `/fapi/v1/openInterest`, `/futures/data/…` |
/// | okx_spot, okx_derivatives | `wss://ws.okx.com:8443` + `/ws/v5/public` | `https://www.okx.com` + `/api/v5/market/books`, `/api/v5/public/open-interest`, `/api/v5/rubik/stat/contracts/…` |
/// | deribit_derivatives | `wss://www.deribit.com` + `/ws/api/v2` | (not used: everything is on the WebSocket) |
///
/// A trailing `/` on an override is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointsConfig {
    pub ws_url: Option<String>,
    pub rest_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrderBookConfig {
    /// Levels per side kept in the local book.
    pub depth: usize,
    /// Levels per side published in each snapshot.
    pub snapshot_levels: usize,
    /// Milliseconds between published snapshots (one is also published after every resync).
    pub snapshot_interval_ms: u64,
    /// Verify OKX crc32 checksums when the venue still sends them (`checksum == 0` means absent).
    pub verify_checksum: bool,
    /// Where OKX books start from: `rest` (`/api/v5/market/books` with `seqId`, the 2026 procedure)
    /// or `ws` (the legacy first push of the `books` channel).
    pub okx_snapshot: OkxSnapshotSource,
    /// Levels asked for in a Binance REST snapshot (`limit`; its request weight grows with it).
    pub rest_snapshot_limit: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OkxSnapshotSource {
    Rest,
    Ws,
}

impl Default for OrderBookConfig {
    fn default() -> Self {
        OrderBookConfig {
            depth: 400,
            snapshot_levels: 20,
            snapshot_interval_ms: 1_000,
            verify_checksum: false,
            okx_snapshot: OkxSnapshotSource::Rest,
            rest_snapshot_limit: 1_000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsConfig {
    pub nats: Option<NatsConfig>,
    /// Written when configured, and by default when no NATS is configured.
    pub parquet: Option<ParquetConfig>,
}

impl OutputsConfig {
    /// The embedded default: Parquet under `./data` when nothing else is configured.
    pub fn effective_parquet(&self) -> Option<ParquetConfig> {
        match (&self.nats, &self.parquet) {
            (_, Some(p)) => Some(p.clone()),
            (None, None) => Some(ParquetConfig::default()),
            (Some(_), None) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// `nats://host:port`; overridden by `MARKETPRISM_NATS_URL`.
    pub url: String,
    /// Credentials come only from the environment: `MARKETPRISM_NATS_USER`/`_PASSWORD` or `_TOKEN`.
    #[serde(skip)]
    pub credentials: Option<NatsCredentials>,
    pub market_data_stream: StreamLimits,
    pub orderbook_stream: StreamLimits,
    /// Publishes awaiting their JetStream ack at once.
    pub max_in_flight: usize,
    /// Events buffered while NATS is unreachable; beyond it events are dropped and counted.
    pub buffer_capacity: usize,
    /// Prepended (with a `.`) to every subject and stream subject filter; empty in production.
    /// Lets several deployments or test runs share one NATS server without overlapping streams.
    pub subject_prefix: String,
    /// Milliseconds to wait for one publish ack before retrying it (same `Nats-Msg-Id`, so it is safe).
    pub ack_timeout_ms: u64,
    /// At shutdown, milliseconds to keep publishing the buffer before counting the rest as dropped.
    pub drain_timeout_ms: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            credentials: None,
            market_data_stream: StreamLimits {
                name: "MARKET_DATA".into(),
                max_bytes: 2 * 1024 * 1024 * 1024,
                max_age_s: 48 * 3600,
                duplicate_window_s: 120,
            },
            orderbook_stream: StreamLimits {
                name: "ORDERBOOK_SNAP".into(),
                max_bytes: 5 * 1024 * 1024 * 1024,
                max_age_s: 24 * 3600,
                duplicate_window_s: 60,
            },
            max_in_flight: 4_096,
            buffer_capacity: 200_000,
            subject_prefix: String::new(),
            ack_timeout_ms: 5_000,
            drain_timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsCredentials {
    UserPassword { user: String, password: String },
    Token(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamLimits {
    pub name: String,
    pub max_bytes: i64,
    pub max_age_s: u64,
    pub duplicate_window_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParquetConfig {
    pub dir: PathBuf,
    /// Milliseconds between flushes: the most a kill -9 can lose.
    pub flush_interval_ms: u64,
    /// Rows per partition that force a flush before the interval.
    pub max_rows: usize,
}

impl Default for ParquetConfig {
    fn default() -> Self {
        ParquetConfig {
            dir: PathBuf::from("data"),
            flush_interval_ms: 5_000,
            max_rows: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The JetStream to consume from (same shape as the publisher's).
    #[serde(default)]
    pub nats: NatsConfig,
    pub clickhouse: ClickHouseConfig,
    /// Durable consumer name prefix; one durable per stream.
    #[serde(default = "default_consumer")]
    pub consumer: String,
    /// Per data type overrides of [`BatchConfig::default_for`].
    #[serde(default)]
    pub batching: BTreeMap<DataType, BatchConfig>,
    /// Delivered but unacked messages per consumer. Must exceed the sum of the batches held at once
    /// (every type's `max_rows`, twice while an insert runs), else batches only ever flush on time.
    #[serde(default = "default_max_ack_pending")]
    pub max_ack_pending: i64,
    /// Seconds before JetStream redelivers an unacked message: above a normal insert, so healthy
    /// batches are not redelivered; redeliveries while ClickHouse is down are deduplicated in the batch.
    #[serde(default = "default_ack_wait_s")]
    pub ack_wait_s: u64,
    /// Messages per pull request.
    #[serde(default = "default_fetch_batch")]
    pub fetch_batch: usize,
    /// Where undecodable messages go (subjects `deadletter.>` under the subject prefix).
    #[serde(default = "default_dead_letter_stream")]
    pub dead_letter_stream: StreamLimits,
}

fn default_consumer() -> String {
    "marketprism-sink".into()
}
fn default_max_ack_pending() -> i64 {
    200_000
}
fn default_ack_wait_s() -> u64 {
    60
}
fn default_fetch_batch() -> usize {
    2_000
}
fn default_dead_letter_stream() -> StreamLimits {
    StreamLimits {
        name: "DEAD_LETTER".into(),
        max_bytes: 256 * 1024 * 1024,
        max_age_s: 7 * 24 * 3600,
        duplicate_window_s: 120,
    }
}

impl SinkConfig {
    pub fn batch_for(&self, data_type: DataType) -> BatchConfig {
        self.batching
            .get(&data_type)
            .copied()
            .unwrap_or_else(|| BatchConfig::default_for(data_type))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// `http://host:8123`; overridden by `MARKETPRISM_CLICKHOUSE_URL`.
    pub url: String,
    pub hot_database: String,
    pub cold_database: String,
    /// Credentials only from `MARKETPRISM_CLICKHOUSE_USER` / `MARKETPRISM_CLICKHOUSE_PASSWORD`.
    #[serde(skip)]
    pub user: Option<String>,
    #[serde(skip)]
    pub password: Option<String>,
    /// Create databases and tables at start (DDL chosen from the server version).
    pub create_schema: bool,
    /// Days rows stay in the hot database (TTL on ClickHouse 23.8+; ignored by 18.x, which has no TTL).
    pub hot_ttl_days: u32,
    /// Days rows stay in the cold database (TTL on ClickHouse 23.8+).
    pub cold_ttl_days: u32,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            hot_database: "marketprism_hot".into(),
            cold_database: "marketprism_cold".into(),
            user: None,
            password: None,
            create_schema: true,
            hot_ttl_days: 3,
            cold_ttl_days: 3650,
        }
    }
}

/// When a per-type batch is flushed: at `max_rows` rows or `max_wait_ms` after its first row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    pub max_rows: usize,
    pub max_wait_ms: u64,
}

impl BatchConfig {
    /// Defaults, chosen for ClickHouse (each insert makes one part per partition; it wants about one
    /// insert per second per table of ≥1k rows, else merges fall behind and inserts fail with TOO_MANY_PARTS):
    /// - orderbooks, trades (hundreds to thousands per second): 20k rows or 1 s, so inserts stay
    ///   near one per second and rows land within about a second; 20k book rows of 20 levels are ~10 MB.
    /// - funding rates, open interest, liquidations (a few per second, liquidations bursty): 5k or 2 s.
    /// - long/short ratios, volatility index, gaps (minutes apart): 1k or 5 s; 5 s is fresh enough for
    ///   data polled every minute and keeps these tables at ≤ 1 tiny part per 5 s.
    ///
    /// The sum of `max_rows` per stream (39k for MARKET_DATA) stays well under the consumer's
    /// default `max_ack_pending` (200k), so size-triggered flushes can happen while a batch is inserting.
    pub fn default_for(data_type: DataType) -> BatchConfig {
        let (max_rows, max_wait_ms) = match data_type {
            DataType::Orderbooks | DataType::Trades => (20_000, 1_000),
            DataType::FundingRates | DataType::OpenInterests | DataType::Liquidations => {
                (5_000, 2_000)
            }
            DataType::LsrTopPositions
            | DataType::LsrAllAccounts
            | DataType::VolatilityIndices
            | DataType::Gaps => (1_000, 5_000),
        };
        BatchConfig {
            max_rows,
            max_wait_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `/livez`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 9100)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub seed: u64,
    /// Events per second per symbol and stream.
    pub rate_per_s: u32,
    /// Listen address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Milliseconds between slow updates (mark price/funding, open interest, liquidations, DVOL).
    pub slow_interval_ms: u64,
    /// Levels per side of each simulated book.
    pub book_levels: usize,
    /// How the OKX `books` channel behaves (2026 transition).
    pub okx_book_mode: OkxBookMode,
    /// Binance spot: ping frame every 20 s, cut after 60 s without a pong.
    pub binance_spot_ping_interval_ms: u64,
    pub binance_spot_pong_timeout_ms: u64,
    /// Binance USD-M: ping frame every 3 min, cut after 10 min without a pong.
    pub binance_usdm_ping_interval_ms: u64,
    pub binance_usdm_pong_timeout_ms: u64,
    /// Binance inbound message limits per connection and second (spot 5, USD-M 10); 0 disables.
    pub binance_spot_max_inbound_per_s: u32,
    pub binance_usdm_max_inbound_per_s: u32,
    /// Binance REST weight budget per minute (spot 6000, USD-M 2400); beyond it 429.
    pub binance_spot_weight_per_min: u32,
    pub binance_usdm_weight_per_min: u32,
    /// OKX: close with 4004 after this long without a client frame.
    pub okx_idle_timeout_ms: u64,
    /// Deribit: how long one "second" of `public/set_heartbeat` lasts (shorten for tests; the ≥ 10 rule still applies).
    pub deribit_heartbeat_second_ms: u64,
    /// Every connection is closed after this long (24 h on the real venues).
    pub connection_lifetime_ms: u64,
    /// Binance: delay between the `serverShutdown` event and the close.
    pub server_shutdown_grace_ms: u64,
}

/// OKX `books` channel behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OkxBookMode {
    /// WS snapshot first, real crc32 checksum in every message.
    Legacy,
    /// WS snapshot still sent (to be ignored), checksum always 0, REST snapshot carries `seqId` (from 2026-06-23).
    ZeroChecksum,
    /// No WS snapshot, checksum 0: the book must come from REST `/api/v5/market/books` (from August 2026).
    RestSnapshot,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            seed: 42,
            rate_per_s: 50,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            slow_interval_ms: 1_000,
            book_levels: 100,
            okx_book_mode: OkxBookMode::Legacy,
            binance_spot_ping_interval_ms: 20_000,
            binance_spot_pong_timeout_ms: 60_000,
            binance_usdm_ping_interval_ms: 180_000,
            binance_usdm_pong_timeout_ms: 600_000,
            binance_spot_max_inbound_per_s: 5,
            binance_usdm_max_inbound_per_s: 10,
            binance_spot_weight_per_min: 6_000,
            binance_usdm_weight_per_min: 2_400,
            okx_idle_timeout_ms: 30_000,
            deribit_heartbeat_second_ms: 1_000,
            connection_lifetime_ms: 24 * 3_600_000,
            server_shutdown_grace_ms: 1_000,
        }
    }
}

impl SimulatorConfig {
    /// Checks serde cannot express; errors name the field under `simulator.`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("simulator.{f}"),
                reason: reason.to_owned(),
            })
        };
        if self.rate_per_s == 0 || self.rate_per_s > 1_000_000 {
            return invalid("rate_per_s", "must be between 1 and 1000000");
        }
        if self.book_levels < 5 || self.book_levels > 5_000 {
            return invalid("book_levels", "must be between 5 and 5000");
        }
        let positive = [
            ("slow_interval_ms", self.slow_interval_ms),
            ("okx_idle_timeout_ms", self.okx_idle_timeout_ms),
            (
                "deribit_heartbeat_second_ms",
                self.deribit_heartbeat_second_ms,
            ),
            ("connection_lifetime_ms", self.connection_lifetime_ms),
            (
                "binance_spot_ping_interval_ms",
                self.binance_spot_ping_interval_ms,
            ),
            (
                "binance_usdm_ping_interval_ms",
                self.binance_usdm_ping_interval_ms,
            ),
        ];
        for (f, v) in positive {
            if v == 0 {
                return invalid(f, "must be at least 1");
            }
        }
        if self.binance_spot_pong_timeout_ms <= self.binance_spot_ping_interval_ms {
            return invalid(
                "binance_spot_pong_timeout_ms",
                "must exceed binance_spot_ping_interval_ms",
            );
        }
        if self.binance_usdm_pong_timeout_ms <= self.binance_usdm_ping_interval_ms {
            return invalid(
                "binance_usdm_pong_timeout_ms",
                "must exceed binance_usdm_ping_interval_ms",
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    #[serde(default = "default_lease_duration_s")]
    pub duration_s: u64,
    /// Holder identity; the pod name (from `POD_NAME`) when empty.
    #[serde(default)]
    pub holder: String,
}

fn default_lease_duration_s() -> u64 {
    15
}

impl Config {
    /// Read, parse, apply environment overrides and validate.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::from_yaml(&text)?;
        config.apply_env(|k| std::env::var(k).ok());
        config.validate()?;
        Ok(config)
    }

    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        serde_yaml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Environment overrides: URLs, and the only place credentials come from.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        let nats_creds = match (
            var("MARKETPRISM_NATS_USER"),
            var("MARKETPRISM_NATS_PASSWORD"),
            var("MARKETPRISM_NATS_TOKEN"),
        ) {
            (Some(user), Some(password), _) => {
                Some(NatsCredentials::UserPassword { user, password })
            }
            (_, _, Some(token)) => Some(NatsCredentials::Token(token)),
            _ => None,
        };
        let nats_url = var("MARKETPRISM_NATS_URL");
        let sink_nats = self.sink.as_mut().map(|s| &mut s.nats);
        for nats in self.outputs.nats.iter_mut().chain(sink_nats) {
            if let Some(url) = &nats_url {
                nats.url = url.clone();
            }
            nats.credentials = nats_creds.clone();
        }
        if let Some(sink) = &mut self.sink {
            if let Some(url) = var("MARKETPRISM_CLICKHOUSE_URL") {
                sink.clickhouse.url = url;
            }
            sink.clickhouse.user = var("MARKETPRISM_CLICKHOUSE_USER");
            sink.clickhouse.password = var("MARKETPRISM_CLICKHOUSE_PASSWORD");
        }
        if let Some(lease) = &mut self.lease
            && lease.holder.is_empty()
        {
            lease.holder = var("POD_NAME").unwrap_or_default();
        }
    }

    /// Checks serde cannot express. Each error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        for (i, ex) in self.exchanges.iter().enumerate() {
            let at = |f: &str| format!("exchanges[{i}].{f}");
            if ex.symbols.is_empty() {
                return invalid(at("symbols"), "list at least one symbol, e.g. [BTC-USDT]");
            }
            if ex.data_types.is_empty() {
                return invalid(
                    at("data_types"),
                    "list at least one data type, e.g. [trades]",
                );
            }
            if ex.data_types.contains(&DataType::Gaps) {
                return invalid(
                    at("data_types"),
                    "gaps are always recorded; do not list them",
                );
            }
            let mut seen = std::collections::BTreeSet::new();
            for s in &ex.symbols {
                if !seen.insert(s) {
                    return invalid(at("symbols"), &format!("{s} is listed twice"));
                }
            }
            let ob = &ex.orderbook;
            if ob.depth == 0 || ob.depth > 5_000 {
                return invalid(at("orderbook.depth"), "must be between 1 and 5000");
            }
            if ob.snapshot_levels == 0 || ob.snapshot_levels > ob.depth {
                return invalid(
                    at("orderbook.snapshot_levels"),
                    "must be between 1 and orderbook.depth",
                );
            }
            if ob.snapshot_interval_ms < 10 {
                return invalid(at("orderbook.snapshot_interval_ms"), "must be at least 10");
            }
            if ex.poll_interval_s == 0 {
                return invalid(at("poll_interval_s"), "must be at least 1");
            }
            if ex.stale_after_s == 0 {
                return invalid(at("stale_after_s"), "must be at least 1");
            }
            if ex.rotate_after_s < 60 {
                return invalid(at("rotate_after_s"), "must be at least 60");
            }
            if ex.subscribe_timeout_s == 0 {
                return invalid(at("subscribe_timeout_s"), "must be at least 1");
            }
            if ![5, 10, 20, 50, 100, 500, 1000, 5000].contains(&ob.rest_snapshot_limit) {
                return invalid(
                    at("orderbook.rest_snapshot_limit"),
                    "must be one of 5, 10, 20, 50, 100, 500, 1000, 5000",
                );
            }
            for (f, url, schemes) in [
                (
                    "endpoints.ws_url",
                    &ex.endpoints.ws_url,
                    ["ws://", "wss://"],
                ),
                (
                    "endpoints.rest_url",
                    &ex.endpoints.rest_url,
                    ["http://", "https://"],
                ),
            ] {
                if let Some(url) = url
                    && !schemes.iter().any(|s| url.starts_with(s))
                {
                    return invalid(
                        at(f),
                        &format!("must start with {} or {}", schemes[0], schemes[1]),
                    );
                }
            }
        }
        if self.collector.channel_capacity == 0 {
            return invalid("collector.channel_capacity".into(), "must be at least 1");
        }
        if let Some(syn) = &self.collector.synthetic
            && syn.rate_per_s == 0
        {
            return invalid(
                "collector.synthetic.rate_per_s".into(),
                "must be at least 1",
            );
        }
        if let Some(nats) = &self.outputs.nats {
            nats.validate("outputs.nats")?;
        }
        if let Some(p) = &self.outputs.parquet {
            if p.flush_interval_ms == 0 {
                return invalid(
                    "outputs.parquet.flush_interval_ms".into(),
                    "must be at least 1",
                );
            }
            if p.max_rows == 0 {
                return invalid("outputs.parquet.max_rows".into(), "must be at least 1");
            }
        }
        if let Some(sink) = &self.sink {
            sink.nats.validate("sink.nats")?;
            sink.clickhouse.validate("sink.clickhouse")?;
            if !sink.clickhouse.url.starts_with("http://")
                && !sink.clickhouse.url.starts_with("https://")
            {
                return invalid(
                    "sink.clickhouse.url".into(),
                    "must start with http:// or https://",
                );
            }
            for (dt, b) in &sink.batching {
                if b.max_rows == 0 || b.max_wait_ms == 0 {
                    return invalid(
                        format!("sink.batching.{dt}"),
                        "max_rows and max_wait_ms must be at least 1",
                    );
                }
            }
            sink.validate_consumer("sink")?;
        }
        if let Some(sim) = &self.simulator {
            sim.validate()?;
        }
        if let Some(lease) = &self.lease
            && lease.duration_s < 3
        {
            return invalid("lease.duration_s".into(), "must be at least 3");
        }
        Ok(())
    }
}

impl ClickHouseConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("{at}.{f}"),
                reason: reason.to_owned(),
            })
        };
        let is_identifier =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        // Database names are spliced into DDL, so only plain identifiers are allowed.
        if !is_identifier(&self.hot_database) {
            return invalid("hot_database", "letters, digits and _ only");
        }
        if !is_identifier(&self.cold_database) || self.cold_database == self.hot_database {
            return invalid(
                "cold_database",
                "letters, digits and _ only, and not the hot database",
            );
        }
        if self.hot_ttl_days == 0 || self.cold_ttl_days < self.hot_ttl_days {
            return invalid(
                "hot_ttl_days",
                "must be at least 1 and not above cold_ttl_days",
            );
        }
        Ok(())
    }
}

impl NatsConfig {
    fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("{at}.{f}"),
                reason: reason.to_owned(),
            })
        };
        if !self.url.starts_with("nats://") && !self.url.starts_with("tls://") {
            return invalid("url", "must start with nats:// or tls://");
        }
        if self.max_in_flight == 0 {
            return invalid("max_in_flight", "must be at least 1");
        }
        for (f, s) in [
            ("market_data_stream", &self.market_data_stream),
            ("orderbook_stream", &self.orderbook_stream),
        ] {
            if s.max_bytes <= 0 || s.max_age_s == 0 || s.duplicate_window_s == 0 {
                return invalid(
                    f,
                    "max_bytes, max_age_s and duplicate_window_s must be positive",
                );
            }
            if s.duplicate_window_s > s.max_age_s {
                return invalid(f, "duplicate_window_s must not exceed max_age_s");
            }
            if !is_nats_name(&s.name) {
                return invalid(f, "name: letters, digits, - and _ only");
            }
        }
        if self.market_data_stream.name == self.orderbook_stream.name {
            return invalid(
                "orderbook_stream",
                "name must differ from market_data_stream",
            );
        }
        let prefix_ok =
            self.subject_prefix.is_empty() || self.subject_prefix.split('.').all(is_nats_name);
        if !prefix_ok {
            return invalid(
                "subject_prefix",
                "dot-separated tokens of letters, digits, - and _ (no wildcards), or empty",
            );
        }
        if self.ack_timeout_ms == 0 {
            return invalid("ack_timeout_ms", "must be at least 1");
        }
        Ok(())
    }
}

/// Stream, consumer and subject-token names: no `.`, `*`, `>` or whitespace.
fn is_nats_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl SinkConfig {
    fn validate_consumer(&self, at: &str) -> Result<(), ConfigError> {
        let invalid = |f: &str, reason: &str| {
            Err(ConfigError::Invalid {
                field: format!("{at}.{f}"),
                reason: reason.to_owned(),
            })
        };
        if !is_nats_name(&self.consumer) {
            return invalid("consumer", "letters, digits, - and _ only");
        }
        let held: usize = DataType::ALL
            .into_iter()
            .map(|d| self.batch_for(d).max_rows)
            .sum();
        if self.max_ack_pending < i64::try_from(held).unwrap_or(i64::MAX) {
            return invalid(
                "max_ack_pending",
                &format!("must be at least the sum of the batches' max_rows ({held})"),
            );
        }
        if self.ack_wait_s < 5 {
            return invalid("ack_wait_s", "must be at least 5");
        }
        if self.fetch_batch == 0 {
            return invalid("fetch_batch", "must be at least 1");
        }
        let dl = &self.dead_letter_stream;
        if !is_nats_name(&dl.name) || dl.max_bytes <= 0 || dl.max_age_s == 0 {
            return invalid(
                "dead_letter_stream",
                "needs a name (letters, digits, - and _) and positive max_bytes and max_age_s",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades, orderbooks]\n";

    #[test]
    fn minimal_config_defaults_to_parquet() {
        let c = Config::from_yaml(MINIMAL).unwrap();
        c.validate().unwrap();
        assert_eq!(c.exchanges[0].orderbook.depth, 400);
        assert_eq!(
            c.outputs.effective_parquet().unwrap().dir,
            PathBuf::from("data")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let bad = MINIMAL.replace("trades,", "trade,");
        let err = Config::from_yaml(&bad).unwrap_err().to_string();
        assert!(err.contains("exchanges[0].data_types"), "{err}");
        assert!(err.contains("trades"), "lists allowed values: {err}");

        let bad = MINIMAL.replace("BTC-USDT", "btcusdt");
        let err = Config::from_yaml(&bad).unwrap_err().to_string();
        assert!(err.contains("exchanges[0].symbols"), "{err}");

        let bad = format!("{MINIMAL}    orderbook: {{depth: 10, snapshot_levels: 20}}\n");
        let err = Config::from_yaml(&bad)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("exchanges[0].orderbook.snapshot_levels"),
            "{err}"
        );

        let err = Config::from_yaml("bogus: 1\n").unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn clickhouse_section_is_validated() {
        let base = format!("{MINIMAL}sink:\n  clickhouse:\n    url: http://127.0.0.1:8123\n");
        let c = Config::from_yaml(&base).unwrap();
        c.validate().unwrap();
        let ch = &c.sink.as_ref().unwrap().clickhouse;
        assert_eq!((ch.hot_ttl_days, ch.cold_ttl_days), (3, 3650));
        for (extra, field) in [
            ("    hot_ttl_days: 0\n", "sink.clickhouse.hot_ttl_days"),
            (
                "    hot_ttl_days: 10\n    cold_ttl_days: 5\n",
                "sink.clickhouse.hot_ttl_days",
            ),
            (
                "    hot_database: \"a;b\"\n",
                "sink.clickhouse.hot_database",
            ),
            (
                "    cold_database: marketprism_hot\n",
                "sink.clickhouse.cold_database",
            ),
        ] {
            let err = Config::from_yaml(&format!("{base}{extra}"))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{extra}: {err}");
        }
    }

    #[test]
    fn stream_settings_are_validated() {
        let base = format!(
            "{MINIMAL}sink:\n  clickhouse:\n    url: http://127.0.0.1:8123\n  nats:\n    subject_prefix: t1.run-2\n"
        );
        let c = Config::from_yaml(&base).unwrap();
        c.validate().unwrap();
        let sink = c.sink.as_ref().unwrap();
        assert_eq!(sink.nats.subject_prefix, "t1.run-2");
        assert_eq!(sink.max_ack_pending, 200_000);
        assert_eq!(sink.dead_letter_stream.name, "DEAD_LETTER");
        for (edit, field) in [
            (base.replace("t1.run-2", "t1.>"), "sink.nats.subject_prefix"),
            (
                format!("{base}  max_ack_pending: 100\n"),
                "sink.max_ack_pending",
            ),
            (format!("{base}  consumer: a.b\n"), "sink.consumer"),
            (format!("{base}  ack_wait_s: 1\n"), "sink.ack_wait_s"),
            (
                format!(
                    "{base}    orderbook_stream: {{name: MARKET_DATA, max_bytes: 1, max_age_s: 9, duplicate_window_s: 1}}\n"
                ),
                "sink.nats.orderbook_stream",
            ),
        ] {
            let err = Config::from_yaml(&edit)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{edit}: {err}");
        }
    }

    #[test]
    fn simulator_section_defaults_and_validation() {
        let c = Config::from_yaml("simulator:\n  seed: 7\n").unwrap();
        c.validate().unwrap();
        let sim = c.simulator.unwrap();
        assert_eq!((sim.seed, sim.okx_book_mode), (7, OkxBookMode::Legacy));
        assert_eq!(sim.binance_spot_ping_interval_ms, 20_000);
        let bad = Config::from_yaml(
            "simulator:\n  binance_spot_ping_interval_ms: 500\n  binance_spot_pong_timeout_ms: 100\n",
        )
        .unwrap();
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("simulator.binance_spot_pong_timeout_ms"),
            "{err}"
        );
        let err = Config::from_yaml("simulator:\n  rate_per_s: 0\n")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("simulator.rate_per_s"), "{err}");
        let err = Config::from_yaml("simulator:\n  okx_book_mode: nope\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("legacy"), "lists the modes: {err}");
    }

    #[test]
    fn exchange_connection_fields_default_and_validate() {
        let c = Config::from_yaml(MINIMAL).unwrap();
        let ex = &c.exchanges[0];
        assert_eq!(
            (
                ex.rotate_after_s,
                ex.subscribe_timeout_s,
                ex.lsr_period.as_str()
            ),
            (86_100, 10, "5m")
        );
        assert_eq!(ex.orderbook.okx_snapshot, OkxSnapshotSource::Rest);
        let check = |extra: &str| {
            Config::from_yaml(&format!("{MINIMAL}{extra}"))
                .unwrap()
                .validate()
                .map_err(|e| e.to_string())
        };
        check("    endpoints: {ws_url: \"ws://127.0.0.1:9000\", rest_url: \"http://127.0.0.1:9000\"}\n").unwrap();
        let err = check("    endpoints: {ws_url: \"http://127.0.0.1:9000\"}\n").unwrap_err();
        assert!(err.contains("exchanges[0].endpoints.ws_url"), "{err}");
        let err = check("    rotate_after_s: 5\n").unwrap_err();
        assert!(err.contains("exchanges[0].rotate_after_s"), "{err}");
        let err = check("    orderbook: {rest_snapshot_limit: 7}\n").unwrap_err();
        assert!(err.contains("orderbook.rest_snapshot_limit"), "{err}");
        let c =
            Config::from_yaml(&format!("{MINIMAL}    orderbook: {{okx_snapshot: ws}}\n")).unwrap();
        assert_eq!(c.exchanges[0].orderbook.okx_snapshot, OkxSnapshotSource::Ws);
    }

    #[test]
    fn credentials_come_from_env_only() {
        let yaml = format!("{MINIMAL}outputs:\n  nats:\n    url: nats://10.0.0.1:4222\n");
        let mut c = Config::from_yaml(&yaml).unwrap();
        let env: BTreeMap<&str, &str> = [
            ("MARKETPRISM_NATS_USER", "u"),
            ("MARKETPRISM_NATS_PASSWORD", "p"),
            ("MARKETPRISM_NATS_URL", "nats://127.0.0.1:4333"),
        ]
        .into();
        c.apply_env(|k| env.get(k).map(|v| v.to_string()));
        let nats = c.outputs.nats.as_ref().unwrap();
        assert_eq!(nats.url, "nats://127.0.0.1:4333");
        assert!(
            matches!(&nats.credentials, Some(NatsCredentials::UserPassword { user, .. }) if user == "u")
        );
        assert!(
            !serde_yaml::to_string(&c).unwrap().contains("p\n"),
            "credentials never serialized"
        );
        let err = Config::from_yaml(&format!("{yaml}    password: x\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("password"), "{err}");
    }
}
