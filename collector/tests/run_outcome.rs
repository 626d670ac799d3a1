//! The `run` command's outcome, through the binary: a run that collected what it was configured to
//! collect exits 0; one whose streams never delivered (TLS refused, a server that speaks no WebSocket)
//! exits non-zero and says which stream and why, never `errors: []` with exit 0.
#![forbid(unsafe_code)]

use marketprism_simulator::tls::SimulatorCa;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_marketprism-collector");

/// Runs `run --config` with `yaml` in `dir`; (exit success, summary JSON, stderr).
fn run(dir: &Path, yaml: &str) -> (bool, Value, String) {
    let config = dir.join("run.yaml");
    std::fs::write(&config, yaml).unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("summary JSON: {e}\nstderr: {stderr}"));
    (out.status.success(), summary, stderr)
}

/// A TLS server with a certificate from `ca` that answers every request with a line of text:
/// a TLS endpoint that is not a WebSocket (nor a venue's REST API).
async fn tls_not_websocket(ca: &SimulatorCa) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut buf = [0u8; 1024];
                    let _ = tls.read(&mut buf).await;
                    let _ = tls.write_all(b"hello, I am not a WebSocket\r\n").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr.to_string()
}

fn trades_config(addr: &str, extra: &str) -> String {
    format!(
        "collector: {{instance_id: outcome, duration_s: 4}}\nexchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]\n    endpoints: {{ws_url: \"wss://{addr}\", rest_url: \"https://{addr}\"}}\noutputs: {{parquet: {{dir: out}}}}\nhttp: {{listen: \"127.0.0.1:0\"}}\n{extra}"
    )
}

fn problems(summary: &Value) -> Vec<String> {
    summary["problems"]
        .as_array()
        .expect("problems list")
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_that_speaks_no_websocket_fails_the_run_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = SimulatorCa::generate().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.ca_pem()).unwrap();
    let addr = tls_not_websocket(&ca).await;
    let yaml = trades_config(&addr, "tls: {ca_file: ca.pem}\n");
    let (ok, summary, stderr) = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || run(&dir, &yaml)
    })
    .await
    .unwrap();
    assert!(!ok, "a run that collected nothing must fail: {summary}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let problems = problems(&summary);
    assert_eq!(
        problems[0], "binance_spot/trades/BTC-USDT: never delivered",
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            // The first request, the venue's instrument list over https://, fails past TLS.
            .any(
                |p| p.starts_with("instruments:binance_spot: instrument list https://")
                    && !p.contains("certificate")
            ),
        "the connection's own error, past TLS: {problems:?}"
    );
    assert_eq!(summary["streams"][0]["status"], "never_delivered");
    assert!(
        stderr.contains("never delivered"),
        "the exit error repeats it: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = SimulatorCa::generate().unwrap();
    let addr = tls_not_websocket(&ca).await;
    let yaml = trades_config(&addr, "");
    let (ok, summary, _) = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || run(&dir, &yaml)
    })
    .await
    .unwrap();
    assert!(!ok);
    let problems = problems(&summary);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("binance_spot") && p.contains("UnknownIssuer")),
        "verification is on and the reason is named: {problems:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ca_file_fails_at_start_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.yaml");
    std::fs::write(
        &config,
        trades_config("127.0.0.1:9", "tls: {ca_file: /nonexistent/ca.pem}\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls.ca_file") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_tls_simulator_delivers_every_configured_stream_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "collector: {instance_id: outcome, duration_s: 6}\nsimulator: {tls: true, rate_per_s: 20, slow_interval_ms: 200}\nexchanges:\n  - exchange: okx_derivatives\n    symbols: [BTC-USDT]\n    data_types: [trades, orderbooks, funding_rates, open_interests, lsr_top_positions]\n    poll_interval_s: 1\n  - exchange: deribit_derivatives\n    symbols: [BTC-USD]\n    data_types: [trades, volatility_indices]\noutputs: {parquet: {dir: out}}\nhttp: {listen: \"127.0.0.1:0\"}\n".to_owned();
    let (ok, summary, stderr) = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || run(&dir, &yaml)
    })
    .await
    .unwrap();
    assert!(ok, "{summary}\n{stderr}");
    let streams = summary["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 7, "{summary}");
    for s in streams {
        assert_eq!(s["status"], "delivered", "{s}");
        assert!(s["events"].as_u64().unwrap() > 0, "{s}");
    }
    // The end of the run is no lost connection: nothing not ready, no warning of one.
    assert_eq!(summary["not_ready"], serde_json::json!({}), "{summary}");
    assert!(!stderr.contains("exchange connection lost"), "{stderr}");
}
