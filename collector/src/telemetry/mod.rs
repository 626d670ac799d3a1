//! Probes and metrics: `/livez`, `/readyz`, `/metrics` on one HTTP port, and the log setup.

pub mod http;

pub use marketprism_telemetry::{Health, ReadinessGuard};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Install the process-wide Prometheus recorder. Histograms get explicit buckets (seconds or rows)
/// so they render as Prometheus histograms, not summaries; `marketprism_exchange_latency_seconds`
/// gets [`marketprism_venues::LATENCY_BUCKETS`].
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    const SECONDS: &[f64] = &[
        0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    const ROWS: &[f64] = &[
        1.0, 10.0, 100.0, 500.0, 1_000.0, 5_000.0, 10_000.0, 50_000.0, 100_000.0,
    ];
    // A full name is matched before any suffix: the venue latency gets its 1 ms–10 s buckets.
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("marketprism_exchange_latency_seconds".into()),
            marketprism_venues::LATENCY_BUCKETS,
        )
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_rows".into()), ROWS))
        .map_err(|e| e.to_string())?
        .install_recorder()
        .map_err(|e| e.to_string())
}

/// Logs go to stderr (stdout carries command output such as the run summary or DDL).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
