//! Every shipped collector config parses and validates: a broken sample is caught here, not by a user.

use marketprism_config::Config;
use std::path::Path;

fn load(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::from_yaml(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
    config
}

#[test]
fn demo_runs_the_simulator_for_every_data_type_into_parquet() {
    let c = load("demo.yaml");
    assert!(c.simulator.is_some(), "the demo is offline");
    assert!(c.outputs.nats.is_none() && c.outputs.effective_parquet().is_some());
    let mut types: Vec<_> = c
        .exchanges
        .iter()
        .flat_map(|e| e.data_types.iter().copied())
        .collect();
    types.sort();
    types.dedup();
    assert_eq!(types.len(), 8, "all 8 data types: {types:?}");
    // Every product line the collector has, with every data type it offers.
    for exchange in marketprism_model::Exchange::ALL {
        let e = c
            .exchanges
            .iter()
            .find(|e| e.exchange == exchange)
            .unwrap_or_else(|| panic!("{exchange} is not in the demo"));
        let offered: Vec<_> = marketprism_model::DataType::ALL
            .into_iter()
            .filter(|&d| marketprism_venues::plan::offered(exchange, d))
            .filter(|d| *d != marketprism_model::DataType::Gaps && !d.is_signal())
            .collect();
        let mut listed = e.data_types.clone();
        listed.sort();
        let mut want = offered.clone();
        want.sort();
        assert_eq!(listed, want, "{exchange}: every data type it offers");
    }
    assert_eq!(c.exchanges.len(), marketprism_model::Exchange::ALL.len());
    // Order-flow signals on one symbol of each venue (Binance USD-M, OKX swaps, Deribit).
    let with_signals: Vec<(&str, usize)> = c
        .exchanges
        .iter()
        .filter_map(|e| Some((e.exchange.as_str(), e.signals.as_ref()?.symbols.len())))
        .collect();
    assert_eq!(
        with_signals,
        vec![
            ("binance_derivatives", 1),
            ("okx_derivatives", 1),
            ("deribit_derivatives", 1)
        ]
    );
}

#[test]
fn local_points_at_the_2026_endpoints() {
    let c = load("local.yaml");
    let usdm = c
        .exchanges
        .iter()
        .find(|e| e.exchange.as_str() == "binance_derivatives")
        .unwrap();
    assert_eq!(
        usdm.endpoints.ws_url.as_deref(),
        Some("wss://fstream.binance.com")
    );
    assert!(c.simulator.is_none());
}

#[test]
fn synthetic_config_loads() {
    let c = load("synthetic.yaml");
    assert!(c.collector.synthetic.is_some());
}
