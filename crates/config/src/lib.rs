//! The collector's YAML configuration: what to collect, where to send it, how to serve probes.
//!
//! The operator renders this file per shard; humans write it for local runs. Every section has defaults
//! so a minimal file works. Unknown fields are rejected, and errors name the field path and what is allowed.
//! Secrets never live here: they come from the environment (see [`Config::apply_env`]).

#![forbid(unsafe_code)]

mod collector;
mod error;
mod exchange;
mod lease;
mod nats;
mod parquet;
mod signals;
mod simulator;
mod sink;
pub mod tls;
mod tls_section;

pub use collector::{CollectorSection, SyntheticConfig};
pub use error::ConfigError;
pub use exchange::{EndpointsConfig, ExchangeConfig, OkxSnapshotSource, OrderBookConfig};
pub use lease::{LeaseConfig, NOT_READY_ANNOTATION};
pub use nats::{DEFAULT_BATCH_LINGER_MS, NatsConfig, NatsCredentials, StreamLimits};
pub use parquet::{ParquetCompactConfig, ParquetConfig};
pub use signals::{ScaleModeName, SignalsSection, ZModeName, ZSection};
pub use simulator::{OkxBookMode, SimulatorConfig};
pub use sink::{BatchConfig, ClickHouseConfig, SinkConfig};
pub use tls_section::TlsConfig;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;

/// The whole file. Serializing it gives YAML that [`Config::from_yaml`] reads back to the same value
/// (unset optional sections are left out): the operator renders every shard's file this way.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub collector: CollectorSection,
    #[serde(default)]
    pub exchanges: Vec<ExchangeConfig>,
    #[serde(default)]
    pub outputs: OutputsConfig,
    /// JetStream → ClickHouse sink (`marketprism-collector sink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<SinkConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    /// Run the built-in exchange simulator and point every exchange without an explicit endpoint at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulator: Option<SimulatorConfig>,
    /// The shard's instance lock (set by the operator; absent for local runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseConfig>,
    /// Extra certificate authorities every client trusts (`tls.ca_file`).
    #[serde(default, skip_serializing_if = "TlsConfig::is_unset")]
    pub tls: TlsConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsConfig>,
    /// Written when configured, and by default when no NATS is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
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
        config.resolve_tls()?;
        Ok(config)
    }

    /// Build the trust store of `tls.ca_file` once and hand it to every client section
    /// (NATS, ClickHouse; the venue connectors take it from `tls.client`).
    pub fn resolve_tls(&mut self) -> Result<(), ConfigError> {
        self.tls.resolve()?;
        let client = self.tls.client.clone();
        if let Some(nats) = &mut self.outputs.nats {
            nats.tls = client.clone();
        }
        if let Some(sink) = &mut self.sink {
            sink.nats.tls = client.clone();
            sink.clickhouse.tls = client;
        }
        Ok(())
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
            sink.clickhouse.credentials_from_env(&var);
        }
        if let Some(ca) = var("MARKETPRISM_TLS_CA_FILE").filter(|v| !v.is_empty()) {
            self.tls.ca_file = Some(ca.into());
        }
        if let Some(lease) = &mut self.lease
            && lease.holder.is_empty()
        {
            lease.holder = var("POD_NAME").unwrap_or_default();
        }
    }

    /// Checks serde cannot express. Each error names the field and what is allowed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, ex) in self.exchanges.iter().enumerate() {
            ex.validate(&format!("exchanges[{i}]"))?;
        }
        self.collector.validate("collector")?;
        if let Some(nats) = &self.outputs.nats {
            nats.validate("outputs.nats")?;
        }
        if let Some(p) = &self.outputs.parquet {
            p.validate("outputs.parquet")?;
        }
        if let Some(sink) = &self.sink {
            sink.validate("sink")?;
        }
        if let Some(sim) = &self.simulator {
            sim.validate()?;
        }
        if let Some(lease) = &self.lease {
            lease.validate("lease")?;
        }
        Ok(())
    }
}

/// Fixtures shared by the section tests.
#[cfg(test)]
pub(crate) mod test_support {
    pub(crate) const MINIMAL: &str = "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades, orderbooks]\n";
}

#[cfg(test)]
mod tests {
    use super::test_support::MINIMAL;
    use super::*;
    use std::path::PathBuf;

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
    fn a_serialized_config_reads_back_to_the_same_value() {
        let full = format!(
            "{MINIMAL}    endpoints: {{ws_url: \"ws://sim:9200\"}}\noutputs:\n  nats: {{url: \"nats://n:4222\"}}\nsink:\n  clickhouse: {{url: \"http://ch:8123\"}}\n  subjects: [\"trade.>\"]\nlease: {{name: s0, namespace: m}}\ntls: {{ca_file: /ca.pem}}\n"
        );
        for yaml in [MINIMAL, "{}", full.as_str()] {
            let config = Config::from_yaml(yaml).unwrap();
            let text = serde_yaml::to_string(&config).unwrap();
            let back = Config::from_yaml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back, config, "{text}");
        }
        let text = serde_yaml::to_string(&Config::from_yaml(MINIMAL).unwrap()).unwrap();
        for unset in [
            "endpoints",
            "sink",
            "lease",
            "simulator",
            "tls",
            "synthetic",
            "null",
        ] {
            assert!(!text.contains(unset), "{unset} left out when unset: {text}");
        }
    }
}
