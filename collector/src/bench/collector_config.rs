//! The benchmarked collector's config: the product lines of `config/demo.yaml` at the simulator's
//! endpoints, and where it writes (Parquet, or JetStream streams of the run's own).

use super::collector::CollectorBenchOptions;
use anyhow::{Context, bail};
use marketprism_config::NatsConfig;
use std::path::Path;
use std::time::Duration;

/// The product lines and data types of `config/demo.yaml` (signals and Gate's tick-by-tick book
/// included): `(exchange, symbols, data types, extra YAML lines)`.
const LINES: [(&str, &str, &str, &str); 9] = [
    (
        "binance_spot",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks",
        "",
    ),
    (
        "binance_derivatives",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks, funding_rates, open_interests, liquidations, lsr_top_positions, lsr_all_accounts",
        "    poll_interval_s: 5\n    signals: {symbols: [BTC-USDT], max_silence_ms: 0, z: {window: 50}}\n",
    ),
    ("okx_spot", "BTC-USDT, ETH-USDT", "trades, orderbooks", ""),
    (
        "okx_derivatives",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks, funding_rates, open_interests, liquidations, lsr_top_positions, lsr_all_accounts",
        "    poll_interval_s: 5\n    signals: {symbols: [BTC-USDT], max_silence_ms: 0, z: {window: 50}}\n",
    ),
    (
        "deribit_derivatives",
        "BTC-USD, ETH-USD",
        "volatility_indices, trades, orderbooks",
        "    signals: {symbols: [BTC-USD], max_silence_ms: 0, z: {window: 50}}\n",
    ),
    (
        "gate_spot",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks",
        "    orderbook: {every_update_symbols: [BTC-USDT]}\n",
    ),
    (
        "gate_derivatives",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks, funding_rates, open_interests, liquidations",
        "",
    ),
    ("mexc_spot", "BTC-USDT, ETH-USDT", "trades, orderbooks", ""),
    (
        "mexc_derivatives",
        "BTC-USDT, ETH-USDT",
        "trades, orderbooks, funding_rates, open_interests",
        "",
    ),
];

/// Where the benchmarked collector writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The embedded default: Parquet under the run's directory.
    Parquet { flush_interval_ms: Option<u64> },
    /// JetStream at `url`, streams `{run}_MD` and `{run}_OB`, subjects under the prefix `run`.
    JetStream { url: String, run: String },
}

impl Output {
    /// The output of a run with `opts` in its temporary directory `dir`.
    pub(super) fn of(opts: &CollectorBenchOptions, dir: &Path) -> Output {
        match &opts.nats_url {
            Some(url) => Output::JetStream {
                url: url.clone(),
                run: bench_run_name(dir),
            },
            None => Output::Parquet {
                flush_interval_ms: opts.flush_interval_ms,
            },
        }
    }

    /// The run's JetStream streams (none for Parquet).
    pub(super) fn streams(&self) -> Option<[String; 2]> {
        match self {
            Output::Parquet { .. } => None,
            Output::JetStream { run, .. } => Some([format!("{run}_MD"), format!("{run}_OB")]),
        }
    }
}

/// A name of letters, digits and `_` unique to this run (from its temporary directory's name).
fn bench_run_name(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tail: String = name.chars().filter(char::is_ascii_digit).collect();
    format!("BENCH_{}", &tail[tail.len().saturating_sub(12)..])
}

/// The collector's own NATS client (`publish::streams::connect`: TLS, credentials from the
/// environment) for `nats`, on a runtime of its own: the bench is blocking code.
fn on_jetstream<T>(
    nats: &NatsConfig,
    f: impl AsyncFnOnce(async_nats::jetstream::Context) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let client = marketprism_pipeline::publish::streams::connect(nats, "bench").await?;
            f(async_nats::jetstream::new(client)).await
        })
}

/// Fails, naming the URL, when the collector's JetStream cannot be reached.
pub(super) fn jetstream_preflight(nats: &NatsConfig) -> anyhow::Result<()> {
    let url = &nats.url;
    on_jetstream(nats, async |js| {
        // The client keeps retrying in the background: a request is what shows the server answers.
        tokio::time::timeout(Duration::from_secs(5), js.query_account())
            .await
            .map_err(|_| anyhow::anyhow!("--nats-url {url}: no JetStream answer within 5 s"))?
            .with_context(|| format!("--nats-url {url}: no JetStream"))?;
        Ok(())
    })
}

/// Deletes the collector's two streams when dropped (best effort: the bench's result does not
/// depend on it).
pub(super) struct DeleteStreams(pub NatsConfig);

impl Drop for DeleteStreams {
    fn drop(&mut self) {
        let names = [
            &self.0.market_data_stream.name,
            &self.0.orderbook_stream.name,
        ];
        let _ = on_jetstream(&self.0, async |js| {
            for name in names {
                let _ = tokio::time::timeout(Duration::from_secs(5), js.delete_stream(name)).await;
            }
            Ok(())
        });
    }
}

/// The collector's config: every product line at the simulator's endpoints (`endpoints`: the
/// `endpoints` object `simulate` prints), writing to `output` (Parquet under `dir`), metrics on `port`.
pub fn run_config(
    endpoints: &serde_json::Value,
    dir: &Path,
    port: u16,
    (worker_threads, wake_coalesce_ms): (Option<usize>, Option<u64>),
    output: &Output,
) -> anyhow::Result<String> {
    let mut yaml = String::from("collector:\n  instance_id: bench\n");
    if let Some(n) = worker_threads {
        yaml.push_str(&format!("  worker_threads: {n}\n"));
    }
    if let Some(ms) = wake_coalesce_ms {
        yaml.push_str(&format!("  wake_coalesce_ms: {ms}\n"));
    }
    yaml.push_str("exchanges:\n");
    for (exchange, symbols, data_types, extra) in LINES {
        let e = &endpoints[exchange];
        let (Some(ws), Some(rest)) = (e["ws_url"].as_str(), e["rest_url"].as_str()) else {
            bail!("the simulator printed no endpoints for {exchange}: {endpoints}");
        };
        yaml.push_str(&format!(
            "  - exchange: {exchange}\n    symbols: [{symbols}]\n    data_types: [{data_types}]\n    endpoints: {{ws_url: \"{ws}\", rest_url: \"{rest}\"}}\n{extra}"
        ));
    }
    match output {
        Output::Parquet { flush_interval_ms } => {
            yaml.push_str(&format!(
                "outputs:\n  parquet:\n    dir: \"{}\"\n",
                dir.join("data").display()
            ));
            if let Some(ms) = flush_interval_ms {
                yaml.push_str(&format!("    flush_interval_ms: {ms}\n"));
            }
        }
        Output::JetStream { url, run } => {
            let [md, ob] = output.streams().unwrap_or_default();
            let stream = |name: &str| {
                format!(
                    "{{name: {name}, max_bytes: 4294967296, max_age_s: 3600, duplicate_window_s: 120}}"
                )
            };
            yaml.push_str(&format!(
                "outputs:\n  nats:\n    url: \"{url}\"\n    subject_prefix: {run}\n    market_data_stream: {}\n    orderbook_stream: {}\n",
                stream(&md),
                stream(&ob)
            ));
        }
    }
    yaml.push_str(&format!("http:\n  listen: \"127.0.0.1:{port}\"\n"));
    Ok(yaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `endpoints` object `simulate` prints, every venue at `addr`.
    fn endpoints(addr: &str) -> serde_json::Value {
        marketprism_model::Exchange::ALL
            .iter()
            .map(|e| {
                let urls = serde_json::json!({"ws_url": format!("ws://{addr}"), "rest_url": format!("http://{addr}")});
                (e.as_str().to_owned(), urls)
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    #[test]
    fn the_run_config_has_every_product_line_at_the_simulator() {
        let endpoints = endpoints("127.0.0.1:9");
        let output = Output::Parquet {
            flush_interval_ms: Some(9_000),
        };
        let yaml = run_config(
            &endpoints,
            Path::new("/tmp/x"),
            9100,
            (Some(1), Some(5)),
            &output,
        )
        .unwrap();
        let config = marketprism_config::Config::from_yaml(&yaml).unwrap();
        assert_eq!(config.collector.worker_threads, 1);
        assert_eq!(config.collector.wake_coalesce_ms, 5);
        let parquet = config.outputs.parquet.as_ref().unwrap();
        assert_eq!(parquet.flush_interval_ms, 9_000);
        assert_eq!(config.exchanges.len(), 9);
        assert!(
            config.simulator.is_none(),
            "the simulator is another process"
        );
        assert!(
            config
                .exchanges
                .iter()
                .all(|e| e.endpoints.ws_url.as_deref() == Some("ws://127.0.0.1:9"))
        );
        let no_endpoints = serde_json::json!({});
        assert!(
            run_config(
                &no_endpoints,
                Path::new("/tmp/x"),
                9100,
                (None, None),
                &output
            )
            .is_err()
        );
    }

    #[test]
    fn the_jetstream_run_config_publishes_into_streams_of_its_own_and_writes_no_parquet() {
        let endpoints = endpoints("h:9");
        let dir = Path::new("/tmp/marketprism-bench-collector-42-1764000000123456789");
        let run = bench_run_name(dir);
        assert_eq!(run, "BENCH_000123456789");
        let output = Output::JetStream {
            url: "nats://127.0.0.1:4222".into(),
            run: run.clone(),
        };
        let yaml = run_config(&endpoints, dir, 9100, (None, None), &output).unwrap();
        let config = marketprism_config::Config::from_yaml(&yaml).unwrap();
        assert!(config.outputs.effective_parquet().is_none(), "{yaml}");
        let nats = config.outputs.nats.as_ref().unwrap();
        assert_eq!(nats.url, "nats://127.0.0.1:4222");
        assert_eq!(nats.subject_prefix, run);
        assert_eq!(nats.market_data_stream.name, "BENCH_000123456789_MD");
        assert_eq!(nats.orderbook_stream.name, "BENCH_000123456789_OB");
    }
}
