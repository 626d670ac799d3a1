//! The collector config YAML each shard (and the sink) gets, rendered from the spec.
//!
//! These structs mirror the parts of `marketprism_config::Config` the operator sets; the
//! operator does not link the collector crate (it would pull Arrow, Parquet and ClickHouse into the
//! operator image). `tests/tests/operator_config.rs` parses every rendering with the collector's own
//! `Config::from_yaml` + `validate`, so the two cannot drift. Secrets are never rendered: the pods get
//! them as environment variables from Secret references.

use crate::crd::{CollectorSetSpec, DataTypeName, SinkPlacement, StreamLimitsSpec};
use crate::planner::{Shard, fnv1a64};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;

/// Port of `/livez`, `/readyz` and `/metrics` in collector and sink pods.
pub const METRICS_PORT: u16 = 9100;
/// The same for a sink sidecar (it shares the collector pod's network namespace).
pub const SIDECAR_METRICS_PORT: u16 = 9101;
/// Where the ConfigMap is mounted; the key is `config.yaml` (and `sink.yaml` for a sidecar).
pub const CONFIG_DIR: &str = "/etc/marketprism";
pub const CONFIG_KEY: &str = "config.yaml";
pub const SIDECAR_CONFIG_KEY: &str = "sink.yaml";
/// Seconds without a pull before NATS deletes a sidecar's durable consumers: longer than any
/// outage of a whole shard should last (a shard back within it resumes where it stopped), short
/// enough that a retired shard's consumers do not linger.
pub const SIDECAR_CONSUMER_INACTIVE_S: u64 = 24 * 3600;
/// Seconds a shard Lease stays valid without renewal.
pub const LEASE_DURATION_S: u64 = 15;

#[derive(Serialize)]
struct CollectorConfig<'a> {
    collector: CollectorSection,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exchanges: Vec<ExchangeConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outputs: Option<Outputs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sink: Option<SinkConfig>,
    http: HttpConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease: Option<LeaseConfig>,
}

#[derive(Serialize)]
struct CollectorSection {
    instance_id: String,
}

#[derive(Serialize)]
struct ExchangeConfig<'a> {
    exchange: &'static str,
    symbols: Vec<&'a str>,
    data_types: Vec<crate::crd::DataTypeName>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    orderbook: BTreeMap<&'static str, i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints: Option<Endpoints<'a>>,
}

/// The collector's `EndpointsConfig`: base URLs it appends the venue paths to.
#[derive(Serialize)]
struct Endpoints<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    ws_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rest_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Outputs {
    nats: NatsConfig,
}

#[derive(Serialize)]
struct NatsConfig {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    market_data_stream: Option<StreamLimits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    orderbook_stream: Option<StreamLimits>,
}

#[derive(Serialize)]
struct StreamLimits {
    name: &'static str,
    max_bytes: i64,
    max_age_s: i64,
    duplicate_window_s: i64,
}

#[derive(Serialize)]
struct SinkConfig {
    nats: NatsConfig,
    clickhouse: ClickHouseConfig,
    consumer: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    batching: BTreeMap<&'static str, Batch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subjects: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inactive_threshold_s: Option<u64>,
}

#[derive(Serialize)]
struct ClickHouseConfig {
    url: String,
    hot_database: String,
    cold_database: String,
    create_schema: bool,
    async_insert: bool,
}

#[derive(Serialize)]
struct Batch {
    max_rows: i64,
    max_wait_ms: i64,
}

#[derive(Serialize)]
struct HttpConfig {
    listen: String,
}

#[derive(Serialize)]
struct LeaseConfig {
    name: String,
    namespace: String,
    duration_s: u64,
}

/// A rendered config file and the hash that rolls pods when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub yaml: String,
    pub hash: String,
}

/// What one Deployment's pods mount: their config and, for a collector with a sink sidecar, the sink's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodConfig {
    pub main: Rendered,
    pub sidecar: Option<Rendered>,
}

impl PodConfig {
    /// Changes when either file changes, so pods roll for a sink change too.
    pub fn hash(&self) -> String {
        match &self.sidecar {
            None => self.main.hash.clone(),
            Some(s) => format!(
                "{:016x}",
                fnv1a64(format!("{}/{}", self.main.hash, s.hash).as_bytes())
            ),
        }
    }
}

impl Rendered {
    fn new(config: &CollectorConfig<'_>) -> Result<Rendered> {
        let body = serde_yaml::to_string(config).map_err(|e| Error::Serialize {
            what: "collector config",
            reason: e.to_string(),
        })?;
        let yaml = format!("# Rendered by marketprism-operator; edits are overwritten.\n{body}");
        let hash = format!("{:016x}", fnv1a64(yaml.as_bytes()));
        Ok(Rendered { yaml, hash })
    }
}

/// The collector config for one shard: only its symbols, NATS output, the shard Lease.
pub fn shard_config(
    spec: &CollectorSetSpec,
    shard: &Shard,
    object_name: &str,
    namespace: &str,
) -> Result<Rendered> {
    let exchanges = spec
        .exchanges
        .iter()
        .filter_map(|ex| {
            let symbols: Vec<&str> = shard
                .units
                .iter()
                .filter(|u| u.venue == ex.venue)
                .map(|u| u.symbol.as_str())
                .collect();
            if symbols.is_empty() {
                return None;
            }
            let ob = ex.orderbook.clone().unwrap_or_default();
            let orderbook = [
                ("depth", ob.depth.map(i64::from)),
                ("snapshot_levels", ob.snapshot_levels.map(i64::from)),
                ("snapshot_interval_ms", ob.snapshot_interval_ms),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            Some(ExchangeConfig {
                exchange: ex.venue.as_str(),
                symbols,
                data_types: ex.data_types.clone(),
                orderbook,
                endpoints: ex.endpoints.as_ref().map(|e| Endpoints {
                    ws_url: e.ws_url.as_deref(),
                    rest_url: e.rest_url.as_deref(),
                }),
            })
        })
        .collect();
    Rendered::new(&CollectorConfig {
        collector: CollectorSection {
            instance_id: object_name.to_owned(),
        },
        exchanges,
        outputs: Some(Outputs {
            nats: nats_config(spec),
        }),
        sink: None,
        http: http_config(),
        lease: Some(LeaseConfig {
            name: object_name.to_owned(),
            namespace: namespace.to_owned(),
            duration_s: LEASE_DURATION_S,
        }),
    })
}

/// The shared sink Deployment's config: the whole streams into ClickHouse, one durable consumer
/// per stream. `None` without ClickHouse or when sinks run as sidecars.
pub fn sink_config(spec: &CollectorSetSpec, object_name: &str) -> Result<Option<Rendered>> {
    if spec.sink.placement != SinkPlacement::Deployment {
        return Ok(None);
    }
    let Some(sink) = sink_section(spec, spec.sink.consumer.clone(), Vec::new(), None) else {
        return Ok(None);
    };
    render_sink(object_name, sink, METRICS_PORT).map(Some)
}

/// A shard's sink sidecar config: only the shard's subjects (every data type and gaps of its
/// symbols, order books from the orderbook stream), through durable consumers named after the
/// shard, so the active and standby pods' sidecars share them and each message is inserted once.
/// `None` without ClickHouse or with a shared sink Deployment.
pub fn sidecar_sink_config(
    spec: &CollectorSetSpec,
    shard: &Shard,
    object_name: &str,
) -> Result<Option<Rendered>> {
    if spec.sink.placement != SinkPlacement::Sidecar {
        return Ok(None);
    }
    let consumer = format!("{}-{object_name}", spec.sink.consumer);
    let Some(sink) = sink_section(
        spec,
        consumer,
        shard_subjects(spec, shard),
        Some(SIDECAR_CONSUMER_INACTIVE_S),
    ) else {
        return Ok(None);
    };
    render_sink(&format!("{object_name}-sink"), sink, SIDECAR_METRICS_PORT).map(Some)
}

/// `*.{venue}.*.{symbol}` (the market data stream: every type and gaps of the symbol) and, when the
/// venue collects order books, `orderbook.{venue}.*.{symbol}`; subjects as the collector publishes
/// them (`{type}.{exchange}.{market type}.{symbol}`), the market type left open.
pub fn shard_subjects(spec: &CollectorSetSpec, shard: &Shard) -> Vec<String> {
    let mut subjects = Vec::new();
    for unit in &shard.units {
        let venue = unit.venue.as_str();
        subjects.push(format!("*.{venue}.*.{}", unit.symbol));
        let books = spec
            .exchanges
            .iter()
            .find(|e| e.venue == unit.venue)
            .is_some_and(|e| e.data_types.contains(&DataTypeName::Orderbooks));
        if books {
            subjects.push(format!("orderbook.{venue}.*.{}", unit.symbol));
        }
    }
    subjects
}

fn sink_section(
    spec: &CollectorSetSpec,
    consumer: String,
    subjects: Vec<String>,
    inactive_threshold_s: Option<u64>,
) -> Option<SinkConfig> {
    let ch = spec.clickhouse.as_ref()?;
    let batching = spec
        .sink
        .batching
        .entries()
        .into_iter()
        .map(|(k, b)| {
            (
                k,
                Batch {
                    max_rows: b.max_rows,
                    max_wait_ms: b.max_wait_ms,
                },
            )
        })
        .collect();
    Some(SinkConfig {
        nats: nats_config(spec),
        clickhouse: ClickHouseConfig {
            url: ch.url.clone(),
            hot_database: ch.hot_database.clone(),
            cold_database: ch.cold_database.clone(),
            create_schema: ch.create_schema,
            // Many sinks (one per shard) inserting: let 23.8+ servers merge them into fewer parts,
            // answering only after the write so the ack still follows the insert.
            async_insert: true,
        },
        consumer,
        batching,
        subjects,
        inactive_threshold_s,
    })
}

fn render_sink(instance_id: &str, sink: SinkConfig, port: u16) -> Result<Rendered> {
    Rendered::new(&CollectorConfig {
        collector: CollectorSection {
            instance_id: instance_id.to_owned(),
        },
        exchanges: Vec::new(),
        outputs: None,
        sink: Some(sink),
        http: HttpConfig {
            listen: format!("0.0.0.0:{port}"),
        },
        lease: None,
    })
}

fn http_config() -> HttpConfig {
    HttpConfig {
        listen: format!("0.0.0.0:{METRICS_PORT}"),
    }
}

fn nats_config(spec: &CollectorSetSpec) -> NatsConfig {
    // The collector's defaults fill any limit the spec leaves out (a stream block must be complete).
    let limits = |name, defaults: (i64, i64, i64), s: &Option<StreamLimitsSpec>| {
        s.as_ref().map(|s| StreamLimits {
            name,
            max_bytes: s.max_bytes.unwrap_or(defaults.0),
            max_age_s: s.max_age_s.unwrap_or(defaults.1),
            duplicate_window_s: s.duplicate_window_s.unwrap_or(defaults.2),
        })
    };
    NatsConfig {
        url: spec.nats.url.clone(),
        market_data_stream: limits(
            "MARKET_DATA",
            (2 << 30, 48 * 3600, 120),
            &spec.nats.market_data_stream,
        ),
        orderbook_stream: limits(
            "ORDERBOOK_SNAP",
            (5 << 30, 24 * 3600, 60),
            &spec.nats.orderbook_stream,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{EndpointsSpec, Venue};
    use crate::fixtures::{exchange, spec, symbols};
    use crate::planner::plan;
    use serde_yaml::Value;

    fn shard_exchanges(spec: &CollectorSetSpec) -> Vec<Value> {
        let shards = plan(spec, &[]);
        assert_eq!(shards.len(), 1);
        let yaml = shard_config(spec, &shards[0], "set-s0", "markets")
            .unwrap()
            .yaml;
        let config: Value = serde_yaml::from_str(&yaml).unwrap();
        config["exchanges"].as_sequence().unwrap().clone()
    }

    #[test]
    fn endpoints_render_as_the_collector_endpoints_section() {
        let mut s = spec(
            vec![
                exchange(Venue::BinanceDerivatives, symbols(2)),
                exchange(Venue::DeribitDerivatives, symbols(1)),
            ],
            10,
        );
        s.exchanges[0].endpoints = Some(EndpointsSpec {
            ws_url: Some("ws://sim:9200/binance_derivatives".into()),
            rest_url: Some("http://sim:9200/binance_derivatives".into()),
        });
        s.exchanges[1].endpoints = Some(EndpointsSpec {
            ws_url: Some("wss://test.deribit.com".into()),
            rest_url: None,
        });
        let exchanges = shard_exchanges(&s);
        let binance = &exchanges[0]["endpoints"];
        assert_eq!(binance["ws_url"], "ws://sim:9200/binance_derivatives");
        assert_eq!(binance["rest_url"], "http://sim:9200/binance_derivatives");
        let deribit = exchanges[1]["endpoints"].as_mapping().unwrap();
        assert_eq!(
            deribit.len(),
            1,
            "an unset URL is left to the collector default"
        );
        assert_eq!(deribit["ws_url"], "wss://test.deribit.com");
    }

    #[test]
    fn no_endpoints_section_without_overrides() {
        let s = spec(vec![exchange(Venue::BinanceSpot, symbols(3))], 10);
        let exchanges = shard_exchanges(&s);
        assert!(exchanges[0].get("endpoints").is_none());
    }

    #[test]
    fn changing_an_endpoint_changes_the_config_hash() {
        let mut s = spec(vec![exchange(Venue::OkxSpot, symbols(2))], 10);
        let shard = &plan(&s, &[])[0];
        let before = shard_config(&s, shard, "set-s0", "markets").unwrap().hash;
        s.exchanges[0].endpoints = Some(EndpointsSpec {
            ws_url: None,
            rest_url: Some("http://proxy:8080".into()),
        });
        let after = shard_config(&s, shard, "set-s0", "markets").unwrap().hash;
        assert_ne!(before, after, "pods roll when their endpoints change");
    }
}
