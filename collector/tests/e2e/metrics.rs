//! The metrics users of the harvester watch, from a whole run of the binary (its own process, so its
//! `/metrics` is its alone): the built-in simulator's clocks run 4 s ahead (`clock_skew_ms`), and the
//! collector's `/metrics` shows that offset per venue, the latency histogram, the last-event time of
//! each configured stream (and of no other), the frames received per channel, and the signal scale
//! and floor counters.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_marketprism-collector");
const SKEW_S: f64 = 4.0;
const VENUES: [&str; 5] = [
    "binance_spot",
    "binance_derivatives",
    "okx_spot",
    "okx_derivatives",
    "deribit_derivatives",
];

fn config(port: u16) -> String {
    let entry = |exchange: &str, symbol: &str, extra: &str| {
        format!(
            "  - exchange: {exchange}\n    symbols: [{symbol}]\n    data_types: [trades, orderbooks]\n{extra}"
        )
    };
    let signals = "    signals: {symbols: [BTC-USDT], max_silence_ms: 0, z: {window: 10}}\n";
    format!(
        "collector: {{instance_id: metrics, duration_s: 25}}\nsimulator: {{seed: 3, rate_per_s: 20, clock_skew_ms: {}}}\nexchanges:\n{}{}{}{}{}outputs: {{parquet: {{dir: out}}}}\nhttp: {{listen: \"127.0.0.1:{port}\"}}\n",
        (SKEW_S * 1_000.0) as i64,
        entry("binance_spot", "BTC-USDT", ""),
        entry("binance_derivatives", "BTC-USDT", signals),
        entry("okx_spot", "BTC-USDT", ""),
        entry("okx_derivatives", "BTC-USDT", ""),
        entry("deribit_derivatives", "BTC-USD", ""),
    )
}

async fn get_metrics(port: u16) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

/// The value of the first series of `name` whose line holds every needle.
fn value(text: &str, name: &str, needles: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && needles.iter().all(|n| l.contains(n)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn venue(e: &str) -> String {
    format!("exchange=\"{e}\"")
}

/// Everything the test waits for is on `/metrics`.
fn complete(text: &str) -> bool {
    VENUES.iter().all(|e| {
        value(
            text,
            "marketprism_exchange_clock_offset_seconds",
            &[&venue(e)],
        )
        .is_some()
            && value(
                text,
                "marketprism_exchange_latency_seconds_count",
                &[&venue(e), "data_type=\"trades\""],
            )
            .is_some_and(|n| n > 0.0)
    }) && value(
        text,
        "marketprism_signal_z_rows_total",
        &["signal=\"cvd\"", "symbol=\"BTC-USDT\""],
    )
    .is_some_and(|n| n > 0.0)
}

fn run_dir(dir: &Path, yaml: &str) -> std::process::Child {
    std::fs::write(dir.join("run.yaml"), yaml).unwrap();
    let log = std::fs::File::create(dir.join("stderr.log")).unwrap();
    Command::new(BIN)
        .args(["run", "--config", "run.yaml"])
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("run the binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_reports_clock_offset_latency_last_event_and_signal_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = run_dir(dir.path(), &config(port));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    while !complete(&text) {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
            panic!("metrics incomplete:\n{text}\nstderr:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        text = get_metrics(port).await.unwrap_or_default();
    }
    let _ = child.kill();
    let _ = child.wait();

    for e in VENUES {
        let offset = value(
            &text,
            "marketprism_exchange_clock_offset_seconds",
            &[&venue(e)],
        )
        .unwrap();
        assert!(
            (offset - SKEW_S).abs() < 1.0,
            "{e}: offset {offset} s, skew {SKEW_S} s"
        );
        let rtt = value(
            &text,
            "marketprism_exchange_clock_rtt_seconds",
            &[&venue(e)],
        )
        .unwrap();
        assert!((0.0..1.0).contains(&rtt), "{e}: round trip {rtt} s");
        // Every frame is counted per venue and channel: trades and books frames, and the acks.
        for channel in ["trades", "orderbooks", "control"] {
            let frames = value(
                &text,
                "marketprism_exchange_frames_received_total",
                &[&venue(e), &format!("channel=\"{channel}\"")],
            );
            assert!(
                frames.is_some_and(|n| n > 0.0),
                "{e}: {channel} frames {frames:?}"
            );
        }
        // The latency histogram has the 1 ms–10 s buckets of its own.
        assert!(
            value(
                &text,
                "marketprism_exchange_latency_seconds_bucket",
                &[&venue(e), "le=\"0.12\""]
            )
            .is_some(),
            "{e}: latency buckets"
        );
    }
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = "marketprism_exchange_last_event_timestamp_seconds";
    let t = value(
        &text,
        last,
        &[
            &venue("okx_derivatives"),
            "data_type=\"trades\"",
            "symbol=\"BTC-USDT\"",
            "market_type=\"perpetual\"",
        ],
    )
    .expect("last-event time of a configured stream");
    assert!((now_s - t).abs() < 30.0, "last event {t}, now {now_s}");
    // Label cardinality is the configured streams: ETH is served by the simulator but not configured,
    // and gaps or signal rows are no stream of their own.
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{last}{{")))
        .collect();
    assert!(series.iter().all(|l| !l.contains("ETH")), "{series:?}");
    assert!(
        series
            .iter()
            .all(|l| l.contains("data_type=\"trades\"") || l.contains("data_type=\"orderbooks\"")),
        "{series:?}"
    );
    assert!(
        series.len() <= 10,
        "5 entries × 2 types at most: {series:?}"
    );
    // Signal metrics of the one signals symbol.
    let sig = ["exchange=\"binance_derivatives\"", "symbol=\"BTC-USDT\""];
    assert!(
        value(
            &text,
            "marketprism_signal_scale",
            &[&sig[..], &["signal=\"cvd\""]].concat()
        )
        .is_some()
    );
    let floor = value(&text, "marketprism_signal_floor_hits_total", &sig).unwrap_or(0.0);
    let rows = value(
        &text,
        "marketprism_signal_z_rows_total",
        &[&sig[..], &["signal=\"cvd\""]].concat(),
    )
    .unwrap();
    assert!(floor <= rows, "floor hits {floor} of {rows} z rows");
    // No probe failed against the simulator.
    assert!(
        !text.contains("marketprism_exchange_clock_probe_failures_total{"),
        "{text}"
    );
}
