//! `sink:`: the JetStream → ClickHouse sink (`marketprism-collector sink`).

use super::nats::{NatsConfig, StreamLimits, is_nats_name};
use crate::error::ConfigError;
use marketprism_model::DataType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// Unset: derived from the batching, see [`SinkConfig::max_ack_pending`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ack_pending: Option<i64>,
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
    /// Consume only these subjects (without `nats.subject_prefix`; `*` wildcards allowed), e.g. one
    /// shard's symbols when the sink runs as that shard's sidecar. `orderbook.…` subjects filter the
    /// orderbook stream, the others the market data stream; a stream left without a subject gets no
    /// consumer. Empty: everything in both streams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// Seconds without a pull after which NATS deletes the durable consumers: set for per-shard
    /// sidecars, whose consumers would otherwise outlive a retired shard and keep its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_threshold_s: Option<u64>,
}

impl SinkConfig {
    /// A sink from `nats` into `clickhouse`, every other setting at its default.
    pub fn new(nats: NatsConfig, clickhouse: ClickHouseConfig) -> Self {
        SinkConfig {
            nats,
            clickhouse,
            consumer: default_consumer(),
            batching: BTreeMap::new(),
            max_ack_pending: None,
            ack_wait_s: default_ack_wait_s(),
            fetch_batch: default_fetch_batch(),
            dead_letter_stream: default_dead_letter_stream(),
            subjects: Vec::new(),
            inactive_threshold_s: None,
        }
    }
}

fn default_consumer() -> String {
    "marketprism-sink".into()
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

    /// Sum of every type's `max_rows`: what the sink may hold unacked when every batch is full.
    fn rows_held_when_full(&self) -> i64 {
        let held: usize = DataType::ALL
            .into_iter()
            .map(|d| self.batch_for(d).max_rows)
            .sum();
        i64::try_from(held).unwrap_or(i64::MAX)
    }

    /// The consumers' `max_ack_pending`: as configured, else room for every batch twice (one
    /// inserting, one filling) plus a pull, at least 250k; so batching set in a CollectorSet needs no second knob.
    pub fn max_ack_pending(&self) -> i64 {
        self.max_ack_pending.unwrap_or_else(|| {
            let pull = i64::try_from(self.fetch_batch).unwrap_or(i64::MAX);
            self.rows_held_when_full()
                .saturating_mul(2)
                .saturating_add(pull)
                .max(250_000)
        })
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
    /// Trust for `https://` servers (from `tls.ca_file`; see [`crate::TlsConfig`]).
    #[serde(skip)]
    pub tls: crate::tls::ClientTls,
    /// Create databases and tables at start (DDL chosen from the server version).
    pub create_schema: bool,
    /// Days rows stay in the hot database (TTL on ClickHouse 23.8+; ignored by 18.x, which has no TTL).
    pub hot_ttl_days: u32,
    /// Days rows stay in the cold database (TTL on ClickHouse 23.8+).
    pub cold_ttl_days: u32,
    /// On ClickHouse 23.8+, insert with `async_insert=1, wait_for_async_insert=1`: the server merges
    /// small inserts from many sinks (one per shard as sidecars) into one part, and answers only once
    /// the data is written, so the ack still follows the insert. Ignored on older servers.
    pub async_insert: bool,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            hot_database: "marketprism_hot".into(),
            cold_database: "marketprism_cold".into(),
            user: None,
            password: None,
            tls: crate::tls::ClientTls::default(),
            create_schema: true,
            hot_ttl_days: 3,
            cold_ttl_days: 3650,
            async_insert: false,
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
    /// Defaults, chosen for ClickHouse (each insert makes one part per partition, in the hot table and
    /// again in the cold one through its materialized view; it wants about one insert per second per
    /// table of ≥1k rows, else merges fall behind and inserts fail with TOO_MANY_PARTS):
    /// - orderbooks, trades (hundreds to thousands per second): 20k rows or 1 s, so inserts stay
    ///   near one per second and rows land within about a second; 20k book rows of 20 levels are ~10 MB.
    /// - funding rates, open interest, liquidations (a few per second, liquidations bursty): 10k or 2 s.
    /// - long/short ratios, volatility index, gaps (minutes apart): 10k or 5 s; 5 s is fresh enough for
    ///   data polled every minute and keeps these tables at ≤ 1 tiny part per 5 s.
    ///
    /// `max_rows` is a ceiling for bursts, not the usual size: it is 10k even for the slow types because
    /// a burst (a replay after an outage, the benchmark's equal mix) cut into 1k-row inserts made
    /// ClickHouse spend most of its time creating part files (measured: 5 CPU-s per 300k events,
    /// against 1.4 with 20k rows). The consumers' default `max_ack_pending` follows these (twice their
    /// sum), so a full batch can wait while the previous one inserts.
    pub fn default_for(data_type: DataType) -> BatchConfig {
        let (max_rows, max_wait_ms) = match data_type {
            DataType::Orderbooks | DataType::Trades => (20_000, 1_000),
            DataType::FundingRates | DataType::OpenInterests | DataType::Liquidations => {
                (10_000, 2_000)
            }
            DataType::LsrTopPositions
            | DataType::LsrAllAccounts
            | DataType::VolatilityIndices
            | DataType::Gaps
            | DataType::SignalEvents => (10_000, 5_000),
            // A row per top-level change or trade of the (few) signals symbols: small, frequent batches.
            DataType::SignalOfi | DataType::SignalCvd | DataType::SignalFusion => (10_000, 1_000),
        };
        BatchConfig {
            max_rows,
            max_wait_ms,
        }
    }
}

impl SinkConfig {
    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
        self.nats.validate(&format!("{at}.nats"))?;
        self.clickhouse.validate(&format!("{at}.clickhouse"))?;
        for (dt, b) in &self.batching {
            if b.max_rows == 0 || b.max_wait_ms == 0 {
                return Err(ConfigError::Invalid {
                    field: format!("{at}.batching.{dt}"),
                    reason: "max_rows and max_wait_ms must be at least 1".to_owned(),
                });
            }
        }
        self.validate_consumer(at)
    }

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
        let held = self.rows_held_when_full();
        if self.max_ack_pending.is_some_and(|n| n < held) {
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
        let token_ok = |t: &str| t == "*" || (!t.is_empty() && !t.contains(['>', ' ', '.']));
        if self
            .subjects
            .iter()
            .any(|s| s.split('.').count() < 2 || !s.split('.').all(token_ok))
        {
            return invalid(
                "subjects",
                "dot-separated tokens (at least two), `*` wildcards only, no `>`",
            );
        }
        if self.inactive_threshold_s.is_some_and(|s| s < 60) {
            return invalid("inactive_threshold_s", "must be at least 60");
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

impl ClickHouseConfig {
    /// Credentials come only from the environment: `MARKETPRISM_CLICKHOUSE_USER` / `_PASSWORD`.
    pub fn credentials_from_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        self.user = var("MARKETPRISM_CLICKHOUSE_USER");
        self.password = var("MARKETPRISM_CLICKHOUSE_PASSWORD");
    }

    pub(super) fn validate(&self, at: &str) -> Result<(), ConfigError> {
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
        if !self.url.starts_with("http://") && !self.url.starts_with("https://") {
            return invalid("url", "must start with http:// or https://");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;
    use crate::test_support::MINIMAL;

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
        assert_eq!(
            sink.max_ack_pending(),
            302_000,
            "defaults: 2 × (110k + 40k of the signal tables) + 2k"
        );
        let big = Config::from_yaml(&format!(
            "{base}  batching:\n    trades: {{max_rows: 1000000, max_wait_ms: 1000}}\n"
        ))
        .unwrap();
        big.validate().unwrap();
        assert_eq!(
            big.sink.as_ref().unwrap().max_ack_pending(),
            2 * (1_000_000 + 20_000 + 3 * 10_000 + 4 * 10_000 + 4 * 10_000) + 2_000,
            "follows the batching when unset"
        );
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
                format!("{base}  subjects: [\"trade.>\"]\n"),
                "sink.subjects",
            ),
            (format!("{base}  subjects: [trade]\n"), "sink.subjects"),
            (
                format!("{base}  inactive_threshold_s: 10\n"),
                "sink.inactive_threshold_s",
            ),
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
}
