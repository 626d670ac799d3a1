//! `CollectorSet.spec`: what to collect, how to shard it, where to send it, how to run the pods.
//!
//! Schema validation lives next to the fields (enums, patterns, bounds) and CEL rules carry the
//! cross-field checks; [`crate::validate`] repeats the CEL logic in Rust for status reporting.
//! List bounds keep every CEL rule's estimated cost far below the apiserver's per-rule limit.

use super::status::CollectorSetStatus;
use k8s_openapi::api::core::v1::{Affinity, ResourceRequirements, Toleration};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most shards one CollectorSet may plan (bounds Deployments per object).
pub const MAX_SHARDS: i32 = 64;
/// `BASE-QUOTE[-SUFFIX...]`, upper case letters and digits: the collector's normalized symbol.
pub const SYMBOL_PATTERN: &str = "^[A-Z0-9]+-[A-Z0-9]+(-[A-Z0-9]+)*$";
/// DNS-label fragment used in object names.
pub const GROUP_NAME_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// Endpoint override schemes, as the collector's config validation requires them.
pub const WS_URL_PATTERN: &str = "^wss?://";
pub const REST_URL_PATTERN: &str = "^https?://";

/// A set of collector shards plus one sink, reconciled by `marketprism-operator`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
#[kube(
    group = "marketprism.io",
    version = "v1alpha1",
    kind = "CollectorSet",
    namespaced,
    shortname = "mpcs",
    status = "CollectorSetStatus",
    derive = "PartialEq",
    doc = "CollectorSet: collector shards and a sink that land exchange market data in NATS JetStream and ClickHouse.",
    validation = kube::core::Rule::new("self.metadata.name.size() <= 40").message("metadata.name must be at most 40 characters (child object names append a shard suffix)"),
    printcolumn(name = "Exchanges", type_ = "integer", json_path = ".status.exchanges"),
    printcolumn(name = "Shards", type_ = "integer", json_path = ".status.shardCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.ready"),
    printcolumn(name = "Paused", type_ = "boolean", json_path = ".spec.paused", priority = "1"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new(
    "self.exchanges.map(e, e.symbols.size()).sum() <= 64 * self.sharding.maxSymbolsPerShard"
).message("too many symbols for maxSymbolsPerShard: at most 64 shards are planned"))]
#[x_kube(validation = Rule::new("!has(self.jobs) || has(self.clickhouse)").message("spec.jobs verifies and backfills the set's ClickHouse tables: set spec.clickhouse"))]
#[x_kube(validation = Rule::new(
    "self.sharding.groups.all(g, g.members.all(m, self.exchanges.exists(e, e.venue == m.venue && m.symbols.all(s, s in e.symbols))))"
).message("sharding.groups may only name symbols declared under exchanges for the same venue"))]
#[serde(rename_all = "camelCase")]
pub struct CollectorSetSpec {
    /// Venues to collect, each listed once (at most every venue: 9).
    #[schemars(length(min = 1, max = 9))]
    #[x_kube(validation = Rule::new("self.all(e, self.exists_one(f, f.venue == e.venue))").message("each venue may be listed only once"))]
    pub exchanges: Vec<ExchangeSpec>,
    #[serde(default)]
    pub sharding: ShardingSpec,
    /// Pods per shard: one holds the shard Lease and publishes, the others stand by.
    #[serde(default = "default_replicas_per_shard")]
    #[schemars(range(min = 1, max = 3))]
    pub replicas_per_shard: i32,
    pub nats: NatsSpec,
    /// Where the sink writes; no sink runs when absent (data stays in JetStream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clickhouse: Option<ClickHouseSpec>,
    #[serde(default)]
    pub sink: SinkSpec,
    /// Collector image; the operator's `--collector-image` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Kubernetes' default for the image when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "image_pull_policy_schema")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Bounded so every CEL rule's cost estimate stays under the apiserver budget whichever list
    // the estimator sizes the rule by (kube-cel takes the first list of the object it finds).
    #[schemars(length(max = 16))]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Stop changing child objects (they keep running as they are).
    #[serde(default)]
    pub paused: bool,
    /// A scheduled data-quality report over ClickHouse (a CronJob `<set>-report`; needs
    /// `clickhouse`); its verdict is published in `status.report`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ReportSpec>,
    /// Scheduled `verify` and `backfill` jobs (CronJobs `<set>-verify`, `<set>-backfill`, a work
    /// volume `<set>-jobs`; needs `clickhouse`); their results are published in `status.jobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<super::jobs::JobsSpec>,
}

/// `marketprism-collector report` on a schedule: every run judges the last `window` of the set's
/// ClickHouse tables against the criteria and exits 0 (pass) or 1 (fail).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportSpec {
    /// Cron schedule, in the controller manager's time zone (usually UTC).
    #[serde(default = "default_report_schedule")]
    #[schemars(length(min = 9, max = 100))]
    pub schedule: String,
    /// The range each run judges, ending when it runs: a number and `s`, `m`, `h` or `d`.
    #[serde(default = "default_report_window")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,5}[smhd]$"))]
    pub window: String,
    /// Overrides of the acceptance criteria per data type (`trades`, `signal_events`, …); the OFI +
    /// CVD harvester's criteria otherwise (README "Data-quality report").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(length(max = 13))]
    pub criteria: BTreeMap<String, ReportThresholds>,
}

fn default_report_schedule() -> String {
    "5 * * * *".into()
}

fn default_report_window() -> String {
    "1h".into()
}

/// Limits of one data type; an absent field keeps its default.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportThresholds {
    /// Minutes without a row / whole minutes in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_empty_minute_ratio: Option<f64>,
    /// Rows repeating an earlier row's natural key / rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_duplicate_ratio: Option<f64>,
    /// Receive − exchange time, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_latency_p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_latency_p99_ms: Option<f64>,
    /// Rows per hour of the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub min_events_per_hour: Option<f64>,
    /// Time inside the stream's gaps / window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_gap_ratio: Option<f64>,
    /// Rows in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_rows: Option<i64>,
}

fn default_replicas_per_shard() -> i32 {
    2
}

/// The venues the collector supports.
#[derive(
    Serialize,
    Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Venue {
    BinanceSpot,
    BinanceDerivatives,
    OkxSpot,
    OkxDerivatives,
    DeribitDerivatives,
    GateSpot,
    GateDerivatives,
    MexcSpot,
    MexcDerivatives,
}

impl Venue {
    pub fn as_str(self) -> &'static str {
        match self {
            Venue::BinanceSpot => "binance_spot",
            Venue::BinanceDerivatives => "binance_derivatives",
            Venue::OkxSpot => "okx_spot",
            Venue::OkxDerivatives => "okx_derivatives",
            Venue::DeribitDerivatives => "deribit_derivatives",
            Venue::GateSpot => "gate_spot",
            Venue::GateDerivatives => "gate_derivatives",
            Venue::MexcSpot => "mexc_spot",
            Venue::MexcDerivatives => "mexc_derivatives",
        }
    }

    pub fn parse(s: &str) -> Option<Venue> {
        [
            Venue::BinanceSpot,
            Venue::BinanceDerivatives,
            Venue::OkxSpot,
            Venue::OkxDerivatives,
            Venue::DeribitDerivatives,
            Venue::GateSpot,
            Venue::GateDerivatives,
            Venue::MexcSpot,
            Venue::MexcDerivatives,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// The 8 market data types (gaps are always recorded and not listed).
#[derive(
    Serialize,
    Deserialize,
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DataTypeName {
    Orderbooks,
    Trades,
    FundingRates,
    OpenInterests,
    Liquidations,
    LsrTopPositions,
    LsrAllAccounts,
    VolatilityIndices,
}

impl DataTypeName {
    pub const ALL: [DataTypeName; 8] = [
        DataTypeName::Orderbooks,
        DataTypeName::Trades,
        DataTypeName::FundingRates,
        DataTypeName::OpenInterests,
        DataTypeName::Liquidations,
        DataTypeName::LsrTopPositions,
        DataTypeName::LsrAllAccounts,
        DataTypeName::VolatilityIndices,
    ];

    /// The name in the CRD and in the collector config (`funding_rates`).
    pub fn as_str(self) -> &'static str {
        match self {
            DataTypeName::Orderbooks => "orderbooks",
            DataTypeName::Trades => "trades",
            DataTypeName::FundingRates => "funding_rates",
            DataTypeName::OpenInterests => "open_interests",
            DataTypeName::Liquidations => "liquidations",
            DataTypeName::LsrTopPositions => "lsr_top_positions",
            DataTypeName::LsrAllAccounts => "lsr_all_accounts",
            DataTypeName::VolatilityIndices => "volatility_indices",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[x_kube(validation = super::offers::data_types_rule(Venue::BinanceSpot))]
#[x_kube(validation = super::offers::data_types_rule(Venue::BinanceDerivatives))]
#[x_kube(validation = super::offers::data_types_rule(Venue::OkxSpot))]
#[x_kube(validation = super::offers::data_types_rule(Venue::OkxDerivatives))]
#[x_kube(validation = super::offers::data_types_rule(Venue::DeribitDerivatives))]
#[x_kube(validation = super::offers::data_types_rule(Venue::GateSpot))]
#[x_kube(validation = super::offers::data_types_rule(Venue::GateDerivatives))]
#[x_kube(validation = super::offers::data_types_rule(Venue::MexcSpot))]
#[x_kube(validation = super::offers::data_types_rule(Venue::MexcDerivatives))]
#[x_kube(validation = Rule::new("!has(self.orderbook) || !has(self.orderbook.everyUpdateSymbols) || self.orderbook.everyUpdateSymbols.all(s, s in self.symbols)").message("orderbook.everyUpdateSymbols must be symbols of this venue"))]
#[serde(rename_all = "camelCase")]
pub struct ExchangeSpec {
    pub venue: Venue,
    /// Normalized symbols, e.g. `BTC-USDT`, each listed once.
    #[schemars(length(min = 1, max = 200), inner(regex(pattern = SYMBOL_PATTERN), length(max = 40)))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(t, t == s))").message("a symbol is listed twice"))]
    pub symbols: Vec<String>,
    #[schemars(length(min = 1, max = 8))]
    #[x_kube(validation = Rule::new("self.all(d, self.exists_one(x, x == d))").message("a data type is listed twice"))]
    pub data_types: Vec<DataTypeName>,
    /// Order book depth and snapshot cadence overrides (collector defaults otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook: Option<OrderBookSpec>,
    /// Override the venue's production endpoints (the exchange simulator, a proxy, a testnet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<EndpointsSpec>,
    /// Order-flow signals (OFI, CVD, fusion, events) for some of these symbols; they need the
    /// venue's `orderbooks` and `trades`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<SignalsSpec>,
}

/// `signals` of one venue: the symbols and the overrides of the reference defaults most often tuned
/// (the collector's `exchanges[].signals`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalsSpec {
    /// Symbols of this venue with signals, each also in `symbols`.
    #[schemars(length(min = 1, max = 200), inner(regex(pattern = SYMBOL_PATTERN), length(max = 40)))]
    pub symbols: Vec<String>,
    /// OFI weight per book level, level 1 first (default 0.40, 0.25, 0.20, 0.10, 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    pub ofi_weights: Option<Vec<f64>>,
    /// Robust z-score baseline window, points (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 100_000))]
    pub z_window: Option<i32>,
    /// Silence (no book change, no trade) that resets the state, ms (default 2000; 0: gaps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3_600_000))]
    pub max_silence_ms: Option<i64>,
}

/// Base URLs without the venue paths (`ws://simulator:9200/binance_spot`, `https://fapi.binance.com`):
/// the collector appends the venue's own paths, as on the real venue (its `EndpointsConfig`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointsSpec {
    /// WebSocket base URL (`ws://` or `wss://`, scheme, host, port and optional prefix); overrides
    /// the venue's production WebSocket endpoint. The collector appends the venue's paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = WS_URL_PATTERN), length(max = 512))]
    pub ws_url: Option<String>,
    /// REST base URL (`http://` or `https://`); overrides the venue's production REST endpoint.
    /// The collector appends the venue's paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = REST_URL_PATTERN), length(max = 512))]
    pub rest_url: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, KubeSchema)]
#[x_kube(validation = Rule::new("(has(self.snapshotLevels) ? self.snapshotLevels : 20) <= (has(self.depth) ? self.depth : 400)").message("snapshotLevels must not exceed depth (defaults: 20 levels, depth 400)"))]
#[serde(rename_all = "camelCase")]
pub struct OrderBookSpec {
    /// Levels per side kept locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5000))]
    pub depth: Option<i32>,
    /// Levels per side published in each snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 5000))]
    pub snapshot_levels: Option<i32>,
    /// Milliseconds between snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 3_600_000))]
    pub snapshot_interval_ms: Option<i64>,
    /// Tick by tick: publish the top `snapshotLevels` after every book update of every symbol of this venue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_update: Option<bool>,
    /// Tick by tick for these symbols only (each also in `symbols`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200), inner(regex(pattern = SYMBOL_PATTERN), length(max = 40)))]
    pub every_update_symbols: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShardingSpec {
    /// Symbols (venue + symbol pairs) per automatically planned shard.
    #[serde(default = "default_max_symbols_per_shard")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_symbols_per_shard: i32,
    /// Explicit shards; symbols in no group are planned automatically.
    #[serde(default)]
    #[schemars(length(max = 8))]
    #[x_kube(validation = Rule::new("self.all(g, self.exists_one(h, h.name == g.name))").message("group names must be unique"))]
    #[x_kube(validation = Rule::new(
        "self.all(g, g.members.all(m, m.symbols.all(s, self.exists_one(h, h.members.exists(n, n.venue == m.venue && s in n.symbols)))))"
    ).message("a venue's symbol may be in only one sharding group: remove it from all groups but one"))]
    pub groups: Vec<ShardGroup>,
}

impl Default for ShardingSpec {
    fn default() -> Self {
        ShardingSpec {
            max_symbols_per_shard: default_max_symbols_per_shard(),
            groups: Vec::new(),
        }
    }
}

fn default_max_symbols_per_shard() -> i32 {
    25
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShardGroup {
    /// Shard name suffix (`g-<name>`).
    #[schemars(length(min = 1, max = 20), regex(pattern = GROUP_NAME_PATTERN))]
    pub name: String,
    /// Each venue once (with the same venue twice, merge the symbols into one member).
    #[schemars(length(min = 1, max = 9))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.venue == m.venue))").message("each venue may be listed once per group: merge its symbols into one member"))]
    pub members: Vec<GroupMember>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupMember {
    pub venue: Venue,
    /// At most 16: the rule that a symbol is in one group only compares every grouped symbol with
    /// every other (8 groups × 5 members × 16 symbols, squared), which must stay within the
    /// apiserver's CEL cost budget.
    #[schemars(length(min = 1, max = 16), inner(regex(pattern = SYMBOL_PATTERN), length(max = 40)))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(t, t == s))").message("a symbol is listed twice"))]
    pub symbols: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NatsSpec {
    /// `nats://host:port` or `tls://host:port`.
    #[schemars(regex(pattern = "^(nats|tls)://[^\\s]+$"), length(max = 512))]
    pub url: String,
    /// Secret holding `user`+`password` or `token` (keys configurable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<NatsCredentialsRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub market_data_stream: Option<StreamLimitsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbook_stream: Option<StreamLimitsSpec>,
    /// Milliseconds a subject's events may wait to be published together as one batch message
    /// (default 20; 0 publishes every event as its own message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub batch_linger_ms: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NatsCredentialsRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default = "default_user_key")]
    pub user_key: String,
    #[serde(default = "default_password_key")]
    pub password_key: String,
    #[serde(default = "default_token_key")]
    pub token_key: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClickHouseCredentialsRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(default = "default_user_key")]
    pub user_key: String,
    #[serde(default = "default_password_key")]
    pub password_key: String,
}

fn default_user_key() -> String {
    "user".into()
}
fn default_password_key() -> String {
    "password".into()
}
fn default_token_key() -> String {
    "token".into()
}

/// JetStream stream limits; the collector's defaults for absent fields.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, KubeSchema)]
#[x_kube(validation = Rule::new("!has(self.duplicateWindowS) || !has(self.maxAgeS) || self.duplicateWindowS <= self.maxAgeS").message("duplicateWindowS must not exceed maxAgeS"))]
#[serde(rename_all = "camelCase")]
pub struct StreamLimitsSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1048576))]
    pub max_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 300))]
    pub max_age_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub duplicate_window_s: Option<i64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClickHouseSpec {
    /// `http(s)://host:8123`.
    #[schemars(regex(pattern = "^https?://[^\\s]+$"), length(max = 512))]
    pub url: String,
    #[serde(default = "default_hot_database")]
    #[schemars(regex(pattern = "^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 64))]
    pub hot_database: String,
    #[serde(default = "default_cold_database")]
    #[schemars(regex(pattern = "^[A-Za-z_][A-Za-z0-9_]*$"), length(max = 64))]
    pub cold_database: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<ClickHouseCredentialsRef>,
    /// Create databases and tables when the sink starts.
    #[serde(default = "default_true")]
    pub create_schema: bool,
}

fn default_hot_database() -> String {
    "marketprism_hot".into()
}
fn default_cold_database() -> String {
    "marketprism_cold".into()
}
fn default_true() -> bool {
    true
}

/// The JetStream → ClickHouse sink (runs only when `clickhouse` is set).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SinkSpec {
    /// `Sidecar` (default): a sink container in every collector pod, consuming that shard's subjects
    /// through one durable consumer per shard (active and standby pods share it). `Deployment`: one
    /// shared sink Deployment of `replicas` pods for the whole set, for sets with many shards.
    #[serde(default)]
    pub placement: SinkPlacement,
    /// Sink pods sharing one durable consumer (`placement: Deployment` only).
    #[serde(default = "default_sink_replicas")]
    #[schemars(range(min = 1, max = 10))]
    pub replicas: i32,
    /// Durable consumer name prefix (sidecars append `-<collectorset>-<shard>`).
    #[serde(default = "default_consumer")]
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]+$"), length(min = 1, max = 64))]
    pub consumer: String,
    #[serde(default)]
    pub batching: BatchingSpec,
    /// Sink container resources; sidecars default to 50m CPU / 128Mi requested, 512Mi limit, the
    /// Deployment to `spec.resources`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for SinkSpec {
    fn default() -> Self {
        SinkSpec {
            placement: SinkPlacement::default(),
            replicas: default_sink_replicas(),
            consumer: default_consumer(),
            batching: BatchingSpec::default(),
            resources: None,
        }
    }
}

/// Where the sink runs.
#[derive(
    Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum SinkPlacement {
    /// In every collector pod, one durable consumer per shard.
    #[default]
    Sidecar,
    /// One shared Deployment per CollectorSet, one durable consumer per stream.
    Deployment,
}

fn default_sink_replicas() -> i32 {
    2
}
fn default_consumer() -> String {
    "marketprism-sink".into()
}

/// Per data type batch overrides (the collector's per-type defaults otherwise).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "snake_case")]
pub struct BatchingSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orderbooks: Option<BatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trades: Option<BatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding_rates: Option<BatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_interests: Option<BatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liquidations: Option<BatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsr_top_positions: Option<BatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsr_all_accounts: Option<BatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility_indices: Option<BatchSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaps: Option<BatchSpec>,
}

impl BatchingSpec {
    /// (collector data type name, override) pairs that are set.
    pub fn entries(&self) -> Vec<(&'static str, BatchSpec)> {
        [
            ("orderbooks", self.orderbooks),
            ("trades", self.trades),
            ("funding_rates", self.funding_rates),
            ("open_interests", self.open_interests),
            ("liquidations", self.liquidations),
            ("lsr_top_positions", self.lsr_top_positions),
            ("lsr_all_accounts", self.lsr_all_accounts),
            ("volatility_indices", self.volatility_indices),
            ("gaps", self.gaps),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchSpec {
    #[schemars(range(min = 1, max = 1_000_000))]
    pub max_rows: i64,
    #[schemars(range(min = 1, max = 600_000))]
    pub max_wait_ms: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
pub enum ImagePullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// The three policies and nothing else: the derived schema of an `Option` enum also lists `null`,
/// which `kubectl explain` shows as a fourth choice and the apiserver would store.
fn image_pull_policy_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "enum": ["Always", "IfNotPresent", "Never"],
        "description": "Kubernetes' default for the image when unset."
    })
}

impl ImagePullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}
