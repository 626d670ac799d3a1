//! The release binary on a production-shaped setup, every piece in its own process or over the wire:
//! `simulate --tls` (all nine product lines over `wss://`/`https://`, MEXC spot's protobuf included), `run` publishing to NATS over
//! TLS while holding its shard Lease through an HTTPS API server (kubeconfig with CA and token, found
//! through `KUBECONFIG` as in a pod), and `sink` inserting into ClickHouse over HTTPS. Asserts that
//! every configured data type landed in ClickHouse and that `run` exits 0 with no problem listed.
//!
//! `tests/run.sh` builds the binary and exports `MARKETPRISM_RELEASE_BIN`.
#![forbid(unsafe_code)]

use marketprism_tests::kube_fake::FakeApiServer;
use marketprism_tests::servers::{env_or_skip, tls_servers, unique_name};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..300 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("process {} ignored SIGTERM for 30 s", child.id());
}

const TYPES_DERIVATIVES: &str = "[trades, orderbooks, funding_rates, open_interests, liquidations, lsr_top_positions, lsr_all_accounts]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_binary_collects_every_type_over_tls_with_a_lease() {
    let test = "release_binary_collects_every_type_over_tls_with_a_lease";
    let (Some(bin), Some(servers)) = (
        env_or_skip("MARKETPRISM_RELEASE_BIN", test),
        tls_servers(test),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("smoke");

    // The simulator, TLS only; its CA goes to a file as a user would pass it.
    let sim_ca = dir.path().join("sim-ca.pem");
    let mut sim = Killed(
        Command::new(&bin)
            .args(["simulate", "--tls", "--listen", "127.0.0.1:0", "--ca-out"])
            .arg(&sim_ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("simulator starts"),
    );
    let mut line = String::new();
    BufReader::new(sim.0.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("simulator prints its endpoints");
    let endpoints: Value = serde_json::from_str(&line).expect("endpoints JSON");
    let ep = |venue: &str| {
        let e = &endpoints["endpoints"][venue];
        let (ws, rest) = (
            e["ws_url"].as_str().unwrap(),
            e["rest_url"].as_str().unwrap(),
        );
        assert!(
            ws.starts_with("wss://") && rest.starts_with("https://"),
            "{e}"
        );
        format!("{{ws_url: \"{ws}\", rest_url: \"{rest}\"}}")
    };

    // One CA file for every client: the simulator's CA and the test servers' CA.
    let ca_file = dir.path().join("ca-bundle.pem");
    let bundle = std::fs::read_to_string(&sim_ca).unwrap()
        + &std::fs::read_to_string(&servers.ca_file).unwrap();
    std::fs::write(&ca_file, bundle).unwrap();

    // The shard Lease, created by "the operator", held through the HTTPS fake.
    let api = FakeApiServer::start(dir.path()).await;
    api.put_lease("markets", "smoke-s0", json!({"leaseDurationSeconds": 6}));

    let upper = name.to_ascii_uppercase();
    let nats = format!(
        "{{url: \"{url}\", subject_prefix: {name}, market_data_stream: {{name: {upper}_MD, max_bytes: 268435456, max_age_s: 3600, duplicate_window_s: 120}}, orderbook_stream: {{name: {upper}_OB, max_bytes: 268435456, max_age_s: 3600, duplicate_window_s: 60}}}}",
        url = servers.nats_url
    );
    let config = format!(
        "collector: {{instance_id: smoke, duration_s: 25}}
exchanges:
  - {{exchange: binance_spot, symbols: [BTC-USDT], data_types: [trades, orderbooks], endpoints: {bs}}}
  - {{exchange: binance_derivatives, symbols: [BTC-USDT], data_types: {TYPES_DERIVATIVES}, poll_interval_s: 2, endpoints: {bd}}}
  - {{exchange: okx_spot, symbols: [BTC-USDT], data_types: [trades, orderbooks], endpoints: {os}}}
  - {{exchange: okx_derivatives, symbols: [BTC-USDT], data_types: {TYPES_DERIVATIVES}, poll_interval_s: 2, endpoints: {od}}}
  - {{exchange: deribit_derivatives, symbols: [BTC-USD], data_types: [trades, orderbooks, volatility_indices], endpoints: {dd}}}
  - {{exchange: gate_spot, symbols: [BTC-USDT], data_types: [trades, orderbooks], orderbook: {{every_update: true}}, endpoints: {gs}}}
  - {{exchange: gate_derivatives, symbols: [BTC-USDT], data_types: [trades, orderbooks, funding_rates, open_interests, liquidations], endpoints: {gd}}}
  - {{exchange: mexc_spot, symbols: [BTC-USDT], data_types: [trades, orderbooks], endpoints: {ms}}}
  - {{exchange: mexc_derivatives, symbols: [BTC-USDT], data_types: [trades, orderbooks, funding_rates, open_interests], endpoints: {md}}}
outputs:
  nats: {nats}
tls: {{ca_file: \"{ca}\"}}
lease: {{name: smoke-s0, namespace: markets, duration_s: 6}}
http: {{listen: \"127.0.0.1:0\"}}
sink:
  nats: {nats}
  clickhouse: {{url: \"{ch}\", hot_database: {name}_hot, cold_database: {name}_cold}}
  consumer: {name}-sink
  batching: {{orderbooks: {{max_rows: 1000, max_wait_ms: 300}}, trades: {{max_rows: 1000, max_wait_ms: 300}}, funding_rates: {{max_rows: 1000, max_wait_ms: 300}}, open_interests: {{max_rows: 1000, max_wait_ms: 300}}, liquidations: {{max_rows: 1000, max_wait_ms: 300}}, lsr_top_positions: {{max_rows: 1000, max_wait_ms: 300}}, lsr_all_accounts: {{max_rows: 1000, max_wait_ms: 300}}, volatility_indices: {{max_rows: 1000, max_wait_ms: 300}}, gaps: {{max_rows: 1000, max_wait_ms: 300}}}}
  dead_letter_stream: {{name: {upper}_DL, max_bytes: 67108864, max_age_s: 3600, duplicate_window_s: 120}}
",
        bs = ep("binance_spot"),
        bd = ep("binance_derivatives"),
        os = ep("okx_spot"),
        od = ep("okx_derivatives"),
        dd = ep("deribit_derivatives"),
        gs = ep("gate_spot"),
        gd = ep("gate_derivatives"),
        ms = ep("mexc_spot"),
        md = ep("mexc_derivatives"),
        ca = ca_file.display(),
        ch = servers.clickhouse_url,
    );
    let config_file = dir.path().join("smoke.yaml");
    std::fs::write(&config_file, &config).unwrap();

    let sink = Killed(
        Command::new(&bin)
            .args(["sink", "--config"])
            .arg(&config_file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sink starts"),
    );
    let run = Command::new(&bin)
        .args(["run", "--config"])
        .arg(&config_file)
        .env("KUBECONFIG", &api.kubeconfig)
        .env("POD_NAME", "smoke-pod-0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run starts");
    let out = tokio::task::spawn_blocking(move || run.wait_with_output())
        .await
        .unwrap()
        .expect("run ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "no panic in the release binary:\n{stderr}"
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "summary JSON ({e}):\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert!(
        out.status.success(),
        "run exits 0: {:?}\nproblems: {}\nerrors: {}",
        out.status,
        summary["problems"],
        summary["errors"]
    );
    assert_eq!(summary["problems"], json!([]));
    // Warm standby: sources start before the Lease is won, and what arrives until then is fenced
    // (counted, never written); the rows below prove the holder published.
    assert!(summary["fenced"].as_u64().is_some(), "{summary}");
    assert_eq!(
        api.holder("markets", "smoke-s0"),
        None,
        "the Lease was released at exit"
    );

    // Every configured type reached ClickHouse through NATS (TLS) and the sink (HTTPS).
    let ch = {
        let mut c = marketprism_config::ClickHouseConfig {
            url: servers.clickhouse_url.clone(),
            ..Default::default()
        };
        c.tls = marketprism_config::tls::ClientTls::with_extra_ca_file(&ca_file).unwrap();
        marketprism_pipeline::store::clickhouse::clickhouse_client(&c)
    };
    let tables = [
        "trades",
        "orderbooks",
        "funding_rates",
        "open_interests",
        "liquidations",
        "lsr_top_positions",
        "lsr_all_accounts",
        "volatility_indices",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut counts = Vec::new();
    loop {
        counts.clear();
        for t in tables {
            let n: u64 = ch
                .query(&format!("SELECT count() FROM {name}_hot.{t}"))
                .fetch_one()
                .await
                .unwrap_or(0);
            counts.push((t, n));
        }
        if counts.iter().all(|(_, n)| *n > 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rows per table after the run: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Every product line's trades and books landed, the new venues' included (the sink may still
    // be draining what the run published last).
    let mut missing = Vec::new();
    loop {
        missing.clear();
        for exchange in marketprism_model::Exchange::ALL {
            for t in ["trades", "orderbooks"] {
                let n: u64 = ch
                    .query(&format!(
                        "SELECT count() FROM {name}_hot.{t} WHERE exchange = '{exchange}'"
                    ))
                    .fetch_one()
                    .await
                    .unwrap_or(0);
                if n == 0 {
                    missing.push(format!("{exchange} {t}"));
                }
            }
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rows in ClickHouse for: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The data-quality report of what landed, as the report CronJob runs it: the release binary,
    // the same config (ClickHouse over HTTPS with the test CA), aggregated in the server.
    let report = Command::new(&bin)
        .args(["report", "--clickhouse", "--config"])
        .arg(&config_file)
        .args(["--json", "-"])
        .output()
        .expect("report runs");
    let report_err = String::from_utf8_lossy(&report.stderr);
    assert!(
        matches!(report.status.code(), Some(0 | 1)),
        "report judged (exit 0 or 1, not 2): {:?}\n{report_err}",
        report.status
    );
    let judged: Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(
        judged["verdict"] == "pass",
        report.status.success(),
        "exit code follows the verdict: {report_err}"
    );
    let streams = judged["streams"].as_array().unwrap();
    for t in tables {
        assert!(
            streams
                .iter()
                .any(|s| s["data_type"] == t && s["rows"].as_u64() > Some(0)),
            "the report lists {t} with rows: {report_err}"
        );
    }
    for s in streams.iter().filter(|s| s["data_type"] == "trades") {
        assert_eq!(s["duplicates"], 0, "one sink, no redelivery: {s}");
        assert!(s["latency"]["p99_ms"].as_i64().is_some(), "{s}");
    }
    let mut sink = sink;
    let status = terminate(&mut sink.0);
    assert!(status.success(), "sink exits 0 on SIGTERM: {status:?}");
    let _ = terminate(&mut sim.0);
    for db in ["hot", "cold"] {
        let _ = ch
            .query(&format!("DROP DATABASE IF EXISTS {name}_{db}"))
            .execute()
            .await;
    }
}
