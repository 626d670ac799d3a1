//! The collector config YAML each shard (and the sink) gets, rendered from the spec.
//!
//! These structs mirror the parts of `marketprism_config::Config` the operator sets; the
//! operator does not link the collector crate (it would pull Arrow, Parquet and ClickHouse into the
//! operator image). `tests/tests/operator_config.rs` parses every rendering with the collector's own
//! `Config::from_yaml` + `validate`, so the two cannot drift. Secrets are never rendered: the pods get
//! them as environment variables from Secret references.

use crate::crd::{CollectorSetSpec, DataTypeName, SinkPlacement, StreamLimitsSpec, Venue};
use crate::planner::{Shard, fnv1a64};
use crate::{Error, Result};
use marketprism_config::{
    BatchConfig, ClickHouseConfig, CollectorSection, Config, EndpointsConfig, ExchangeConfig,
    HttpConfig, LeaseConfig, NatsConfig, OrderBookConfig, OutputsConfig, SignalsSection,
    SinkConfig, StreamLimits, ZSection,
};
use marketprism_model::{DataType, Exchange, Symbol};
use std::collections::BTreeMap;
use std::net::SocketAddr;

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
    fn new(config: &Config) -> Result<Rendered> {
        let body = serde_yaml::to_string(config).map_err(|e| Error::Serialize {
            what: "collector config",
            reason: e.to_string(),
        })?;
        let yaml = format!("# Rendered by marketprism-operator; edits are overwritten.\n{body}");
        let hash = format!("{:016x}", fnv1a64(yaml.as_bytes()));
        Ok(Rendered { yaml, hash })
    }
}

/// The shard's part of a venue's `signals`: its symbols among them (none: no section).
fn signals_section(
    spec: Option<&crate::crd::SignalsSpec>,
    shard_symbols: &[Symbol],
) -> Result<Option<SignalsSection>> {
    let Some(spec) = spec else { return Ok(None) };
    let symbols: Vec<Symbol> = spec
        .symbols
        .iter()
        .map(|s| symbol(s))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|s| shard_symbols.contains(s))
        .collect();
    if symbols.is_empty() {
        return Ok(None);
    }
    let z_window = spec
        .z_window
        .map(|w| number("signals.zWindow", w))
        .transpose()?;
    Ok(Some(SignalsSection {
        symbols,
        ofi_weights: spec.ofi_weights.clone(),
        z: ZSection {
            window: z_window,
            ..ZSection::default()
        },
        max_silence_ms: spec.max_silence_ms,
        ..SignalsSection::default()
    }))
}

/// The collector config for one shard: only its symbols, NATS output, the shard Lease.
pub fn shard_config(
    spec: &CollectorSetSpec,
    shard: &Shard,
    object_name: &str,
    namespace: &str,
) -> Result<Rendered> {
    let exchanges = exchange_configs(spec, |venue| {
        shard
            .units
            .iter()
            .filter(|u| u.venue == venue)
            .map(|u| u.symbol.clone())
            .collect()
    })?;
    Rendered::new(&Config {
        collector: collector_section(object_name),
        exchanges,
        outputs: OutputsConfig {
            nats: Some(nats_config(spec)?),
            parquet: None,
        },
        http: http_config(METRICS_PORT),
        lease: Some(LeaseConfig {
            name: object_name.to_owned(),
            namespace: namespace.to_owned(),
            duration_s: LEASE_DURATION_S,
            // The pod's name, from `POD_NAME` at start.
            holder: String::new(),
        }),
        ..Config::default()
    })
}

/// The exchange entries of `spec` with the symbols `symbols_of(venue)` picks (entries without a
/// symbol left out): a shard's units, or every symbol for the report.
fn exchange_configs(
    spec: &CollectorSetSpec,
    symbols_of: impl Fn(crate::crd::Venue) -> Vec<String>,
) -> Result<Vec<ExchangeConfig>> {
    let mut exchanges = Vec::new();
    for ex in &spec.exchanges {
        let symbols = symbols_of(ex.venue)
            .iter()
            .map(|s| symbol(s))
            .collect::<Result<Vec<_>>>()?;
        if symbols.is_empty() {
            continue;
        }
        let ob = ex.orderbook.clone().unwrap_or_default();
        let mut orderbook = OrderBookConfig::default();
        if let Some(depth) = ob.depth {
            orderbook.depth = number("orderbook.depth", depth)?;
        }
        if let Some(levels) = ob.snapshot_levels {
            orderbook.snapshot_levels = number("orderbook.snapshot_levels", levels)?;
        }
        if let Some(interval) = ob.snapshot_interval_ms {
            orderbook.snapshot_interval_ms = number("orderbook.snapshot_interval_ms", interval)?;
        }
        orderbook.every_update = ob.every_update.unwrap_or(false);
        // The shard's symbols among them: the collector refuses symbols it does not collect.
        orderbook.every_update_symbols = ob
            .every_update_symbols
            .iter()
            .flatten()
            .map(|s| symbol(s))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|s| symbols.contains(s))
            .collect();
        let mut exchange = ExchangeConfig::new(
            exchange_of(ex.venue),
            symbols,
            ex.data_types.iter().map(|d| data_type_of(*d)).collect(),
        );
        exchange.orderbook = orderbook;
        exchange.signals = signals_section(ex.signals.as_ref(), &exchange.symbols)?;
        if let Some(e) = &ex.endpoints {
            exchange.endpoints = EndpointsConfig {
                ws_url: e.ws_url.clone(),
                rest_url: e.rest_url.clone(),
            };
        }
        exchanges.push(exchange);
    }
    Ok(exchanges)
}

/// The shared sink Deployment's config: the whole streams into ClickHouse, one durable consumer
/// per stream. `None` without ClickHouse or when sinks run as sidecars.
pub fn sink_config(spec: &CollectorSetSpec, object_name: &str) -> Result<Option<Rendered>> {
    if spec.sink.placement != SinkPlacement::Deployment {
        return Ok(None);
    }
    let Some(sink) = sink_section(spec, spec.sink.consumer.clone(), Vec::new(), None)? else {
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
    )?
    else {
        return Ok(None);
    };
    render_sink(&format!("{object_name}-sink"), sink, SIDECAR_METRICS_PORT).map(Some)
}

/// The report CronJob's config: every exchange entry of the set (the streams the report expects)
/// and the shared sink's section (the report reads its `sink.clickhouse`, credentials from the
/// environment). `None` without `report` or ClickHouse.
pub fn report_config(spec: &CollectorSetSpec, object_name: &str) -> Result<Option<Rendered>> {
    if spec.report.is_none() {
        return Ok(None);
    }
    store_config(spec, object_name, false)
}

/// The scheduled jobs' config (`spec.jobs`), the report's with, when `backfill` is scheduled,
/// `outputs.nats` (where backfill publishes what it refetched). `None` without a job kind or
/// without ClickHouse.
pub fn jobs_config(spec: &CollectorSetSpec, object_name: &str) -> Result<Option<Rendered>> {
    let Some(jobs) = &spec.jobs else {
        return Ok(None);
    };
    if jobs.verify.is_none() && jobs.backfill.is_none() {
        return Ok(None);
    }
    store_config(spec, object_name, jobs.backfill.is_some())
}

/// A config over what the set stored: every exchange entry with all its symbols (a stream that
/// wrote nothing is judged, not missed), the sink's section for `sink.clickhouse`, and with
/// `nats_output` the shards' `outputs.nats`. Collects nothing itself. `None` without ClickHouse.
fn store_config(
    spec: &CollectorSetSpec,
    object_name: &str,
    nats_output: bool,
) -> Result<Option<Rendered>> {
    let Some(sink) = sink_section(spec, spec.sink.consumer.clone(), Vec::new(), None)? else {
        return Ok(None);
    };
    let exchanges = exchange_configs(spec, |venue| {
        spec.exchanges
            .iter()
            .filter(|e| e.venue == venue)
            .flat_map(|e| e.symbols.clone())
            .collect()
    })?;
    let outputs = OutputsConfig {
        nats: nats_output.then(|| nats_config(spec)).transpose()?,
        parquet: None,
    };
    Rendered::new(&Config {
        collector: collector_section(object_name),
        exchanges,
        outputs,
        sink: Some(sink),
        http: http_config(METRICS_PORT),
        ..Config::default()
    })
    .map(Some)
}

/// The report's criteria file (`marketprism_report::Criteria::from_file_text`): the spec's
/// overrides per data type, in the file's snake_case names.
pub fn report_criteria(report: &crate::crd::ReportSpec) -> String {
    let mut data_types: BTreeMap<&str, BTreeMap<&str, serde_yaml::Value>> = BTreeMap::new();
    for (data_type, t) in &report.criteria {
        let limits = data_types.entry(data_type.as_str()).or_default();
        let floats = [
            ("max_empty_minute_ratio", t.max_empty_minute_ratio),
            ("max_duplicate_ratio", t.max_duplicate_ratio),
            ("max_latency_p50_ms", t.max_latency_p50_ms),
            ("max_latency_p99_ms", t.max_latency_p99_ms),
            ("min_events_per_hour", t.min_events_per_hour),
            ("max_gap_ratio", t.max_gap_ratio),
        ];
        for (name, value) in floats {
            if let Some(v) = value {
                limits.insert(name, v.into());
            }
        }
        if let Some(n) = t.min_rows {
            limits.insert("min_rows", n.into());
        }
    }
    let file = BTreeMap::from([("data_types", data_types)]);
    serde_yaml::to_string(&file).expect("maps of numbers always serialize")
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
) -> Result<Option<SinkConfig>> {
    let Some(ch) = spec.clickhouse.as_ref() else {
        return Ok(None);
    };
    let mut batching = BTreeMap::new();
    for (name, b) in spec.sink.batching.entries() {
        let data_type = DataType::parse(name).ok_or_else(|| invalid("sink.batching", name))?;
        let batch = BatchConfig {
            max_rows: number("sink.batching.max_rows", b.max_rows)?,
            max_wait_ms: number("sink.batching.max_wait_ms", b.max_wait_ms)?,
        };
        batching.insert(data_type, batch);
    }
    let clickhouse = ClickHouseConfig {
        url: ch.url.clone(),
        hot_database: ch.hot_database.clone(),
        cold_database: ch.cold_database.clone(),
        create_schema: ch.create_schema,
        // Many sinks (one per shard) inserting: let 23.8+ servers merge them into fewer parts,
        // answering only after the write so the ack still follows the insert.
        async_insert: true,
        ..ClickHouseConfig::default()
    };
    let mut sink = SinkConfig::new(nats_config(spec)?, clickhouse);
    sink.consumer = consumer;
    sink.batching = batching;
    sink.subjects = subjects;
    sink.inactive_threshold_s = inactive_threshold_s;
    Ok(Some(sink))
}

fn render_sink(instance_id: &str, sink: SinkConfig, port: u16) -> Result<Rendered> {
    Rendered::new(&Config {
        collector: collector_section(instance_id),
        sink: Some(sink),
        http: http_config(port),
        ..Config::default()
    })
}

fn collector_section(instance_id: &str) -> CollectorSection {
    CollectorSection {
        instance_id: instance_id.to_owned(),
        ..CollectorSection::default()
    }
}

fn http_config(port: u16) -> HttpConfig {
    HttpConfig {
        listen: SocketAddr::from(([0, 0, 0, 0], port)),
    }
}

fn nats_config(spec: &CollectorSetSpec) -> Result<NatsConfig> {
    // The collector's defaults fill any limit the spec leaves out.
    let limits = |defaults: StreamLimits, s: &Option<StreamLimitsSpec>| -> Result<StreamLimits> {
        let Some(s) = s else { return Ok(defaults) };
        Ok(StreamLimits {
            max_bytes: s.max_bytes.unwrap_or(defaults.max_bytes),
            max_age_s: match s.max_age_s {
                Some(v) => number("nats.max_age_s", v)?,
                None => defaults.max_age_s,
            },
            duplicate_window_s: match s.duplicate_window_s {
                Some(v) => number("nats.duplicate_window_s", v)?,
                None => defaults.duplicate_window_s,
            },
            name: defaults.name,
        })
    };
    let defaults = NatsConfig::default();
    Ok(NatsConfig {
        url: spec.nats.url.clone(),
        market_data_stream: limits(
            defaults.market_data_stream.clone(),
            &spec.nats.market_data_stream,
        )?,
        orderbook_stream: limits(
            defaults.orderbook_stream.clone(),
            &spec.nats.orderbook_stream,
        )?,
        batch_linger_ms: spec
            .nats
            .batch_linger_ms
            .map_or(defaults.batch_linger_ms, u64::from),
        ..defaults
    })
}

/// The collector's name of a venue: an exhaustive match, so a venue added to one side only breaks the build.
fn exchange_of(venue: Venue) -> Exchange {
    match venue {
        Venue::BinanceSpot => Exchange::BinanceSpot,
        Venue::BinanceDerivatives => Exchange::BinanceDerivatives,
        Venue::OkxSpot => Exchange::OkxSpot,
        Venue::OkxDerivatives => Exchange::OkxDerivatives,
        Venue::DeribitDerivatives => Exchange::DeribitDerivatives,
        Venue::GateSpot => Exchange::GateSpot,
        Venue::GateDerivatives => Exchange::GateDerivatives,
        Venue::MexcSpot => Exchange::MexcSpot,
        Venue::MexcDerivatives => Exchange::MexcDerivatives,
    }
}

/// The collector's data type of a CRD data type name (exhaustive, as [`exchange_of`]).
fn data_type_of(name: DataTypeName) -> DataType {
    match name {
        DataTypeName::Orderbooks => DataType::Orderbooks,
        DataTypeName::Trades => DataType::Trades,
        DataTypeName::FundingRates => DataType::FundingRates,
        DataTypeName::OpenInterests => DataType::OpenInterests,
        DataTypeName::Liquidations => DataType::Liquidations,
        DataTypeName::LsrTopPositions => DataType::LsrTopPositions,
        DataTypeName::LsrAllAccounts => DataType::LsrAllAccounts,
        DataTypeName::VolatilityIndices => DataType::VolatilityIndices,
    }
}

fn symbol(s: &str) -> Result<Symbol> {
    Symbol::new(s).map_err(|e| invalid("exchanges.symbols", &format!("{s}: {e}")))
}

/// A spec number as the collector's unsigned type (the CRD schema keeps them positive; a spec that
/// bypassed it fails here instead of in the pod).
fn number<T: TryFrom<i64>>(field: &str, value: impl Into<i64>) -> Result<T> {
    let value = value.into();
    T::try_from(value).map_err(|_| invalid(field, &value.to_string()))
}

fn invalid(field: &str, value: &str) -> Error {
    Error::Serialize {
        what: "collector config",
        reason: format!("{field}: {value} is not a value the collector takes"),
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
    fn publish_batching_renders_as_set_and_defaults_to_the_collectors() {
        let mut s = spec(vec![exchange(Venue::BinanceSpot, symbols(1))], 10);
        let linger = |s: &CollectorSetSpec| nats_config(s).unwrap().batch_linger_ms;
        assert_eq!(linger(&s), marketprism_config::DEFAULT_BATCH_LINGER_MS);
        s.nats.batch_linger_ms = Some(0);
        assert_eq!(linger(&s), 0, "batching off");
        let shard = &plan(&s, &[])[0];
        let yaml = shard_config(&s, shard, "set-s0", "markets").unwrap().yaml;
        let config: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(config["outputs"]["nats"]["batch_linger_ms"], 0, "{yaml}");
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

    #[test]
    fn signals_render_per_shard_as_the_collector_signals_section() {
        let mut s = spec(vec![exchange(Venue::BinanceDerivatives, symbols(4))], 2);
        s.exchanges[0].signals = Some(crate::crd::SignalsSpec {
            symbols: vec!["S0-USDT".into(), "S3-USDT".into()],
            z_window: Some(50),
            max_silence_ms: Some(0),
            ofi_weights: None,
        });
        let shards = plan(&s, &[]);
        assert_eq!(shards.len(), 2);
        let mut rendered = Vec::new();
        for (i, shard) in shards.iter().enumerate() {
            let yaml = shard_config(&s, shard, &format!("set-s{i}"), "markets")
                .unwrap()
                .yaml;
            let config = Config::from_yaml(&yaml).unwrap();
            config.validate().unwrap();
            let ex = &config.exchanges[0];
            if let Some(signals) = &ex.signals {
                assert!(signals.symbols.iter().all(|x| ex.symbols.contains(x)));
                assert_eq!(
                    (signals.z.window, signals.max_silence_ms),
                    (Some(50), Some(0))
                );
                rendered.extend(signals.symbols.iter().map(|x| x.to_string()));
            }
        }
        rendered.sort();
        assert_eq!(
            rendered,
            ["S0-USDT", "S3-USDT"],
            "each signals symbol on its own shard"
        );
    }

    #[test]
    fn tick_by_tick_symbols_render_on_their_shard_and_validate() {
        let mut s = spec(vec![exchange(Venue::BinanceSpot, symbols(4))], 2);
        s.exchanges[0].orderbook = Some(crate::crd::OrderBookSpec {
            every_update_symbols: Some(vec!["S1-USDT".into(), "S2-USDT".into()]),
            ..Default::default()
        });
        let mut rendered = Vec::new();
        for (i, shard) in plan(&s, &[]).iter().enumerate() {
            let yaml = shard_config(&s, shard, &format!("set-s{i}"), "markets")
                .unwrap()
                .yaml;
            let config = Config::from_yaml(&yaml).unwrap();
            config.validate().unwrap();
            let ob = &config.exchanges[0].orderbook;
            assert!(!ob.every_update);
            rendered.extend(ob.every_update_symbols.iter().map(|x| x.to_string()));
        }
        rendered.sort();
        assert_eq!(rendered, ["S1-USDT", "S2-USDT"]);
    }
}
