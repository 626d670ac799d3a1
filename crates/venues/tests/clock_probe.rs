//! The clock probe against a scripted HTTP server: a good reply sets the offset and round-trip gauges;
//! a venue that is down, answers 503 or garbage is counted by reason, and the task goes on probing.

use marketprism_model::Exchange;
use marketprism_venues::clock::{probe, run_clock, time_url};
use marketprism_venues::rate_limit::RateLimiter;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("one recorder per process")
    })
}

fn metric(name: &str, needles: &[&str]) -> Option<f64> {
    recorder()
        .render()
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && needles.iter().all(|n| l.contains(n)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// An HTTP/1.1 server whose answer depends on the path's first segment: `/ahead` (Binance shape,
/// 3 s ahead), `/garbage` (200 with HTML), `/down` (503). Returns the base URL.
async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = tcp.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split(' ').nth(1).unwrap_or("");
                let (status, body) = if path.starts_with("/ahead") {
                    (
                        "200 OK",
                        format!(r#"{{"serverTime":{}}}"#, now_ms() + 3_000),
                    )
                } else if path.starts_with("/garbage") {
                    ("200 OK", "<html>maintenance</html>".to_owned())
                } else {
                    ("503 Service Unavailable", "{}".to_owned())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(resp.as_bytes()).await;
            });
        }
    });
    base
}

/// A port nothing listens on.
async fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[tokio::test]
async fn probe_measures_the_offset_and_names_each_failure() {
    let http = marketprism_venues::rest_client(&Default::default());
    let limiter = RateLimiter::new(10, 10.0);
    let base = server().await;
    let url = |prefix: &str| time_url(Exchange::BinanceSpot, &format!("{base}{prefix}"));
    let s = probe(Exchange::BinanceSpot, &url("/ahead"), &http, &limiter)
        .await
        .unwrap();
    assert!((s.offset_s - 3.0).abs() < 0.5, "{s:?}");
    assert!(s.rtt_s >= 0.0 && s.rtt_s < 2.0, "{s:?}");
    let reason = |r: Result<_, marketprism_venues::clock::ProbeError>| r.unwrap_err().reason;
    assert_eq!(
        reason(probe(Exchange::BinanceSpot, &url("/garbage"), &http, &limiter).await),
        "parse"
    );
    assert_eq!(
        reason(probe(Exchange::BinanceSpot, &url("/down"), &http, &limiter).await),
        "status"
    );
    let down = time_url(Exchange::BinanceSpot, &closed_port().await);
    assert_eq!(
        reason(probe(Exchange::BinanceSpot, &down, &http, &limiter).await),
        "io"
    );
}

#[tokio::test]
async fn the_task_reports_gauges_counts_failures_and_keeps_probing() {
    recorder();
    let http = marketprism_venues::rest_client(&Default::default());
    let base = server().await;
    let shutdown = CancellationToken::new();
    let every = Duration::from_millis(50);
    let spawn = |exchange, rest: String| {
        tokio::spawn(run_clock(
            exchange,
            rest,
            every,
            http.clone(),
            RateLimiter::new(100, 100.0),
            shutdown.clone(),
        ))
    };
    // Each venue its own label, so the counts are this test's alone.
    let ok = spawn(Exchange::BinanceDerivatives, format!("{base}/ahead"));
    let garbage = spawn(Exchange::OkxSpot, format!("{base}/garbage"));
    let down = spawn(Exchange::DeribitDerivatives, closed_port().await);
    let failures = |e: &str, reason: &str| {
        metric(
            "marketprism_exchange_clock_probe_failures_total",
            &[
                &format!("exchange=\"{e}\""),
                &format!("reason=\"{reason}\""),
            ],
        )
        .unwrap_or(0.0)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while failures("okx_spot", "parse") < 3.0 || failures("deribit_derivatives", "io") < 3.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "failures not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let offset = metric(
        "marketprism_exchange_clock_offset_seconds",
        &["exchange=\"binance_derivatives\""],
    )
    .expect("offset gauge");
    assert!((offset - 3.0).abs() < 0.5, "offset {offset}");
    assert!(
        metric(
            "marketprism_exchange_clock_rtt_seconds",
            &["exchange=\"binance_derivatives\""]
        )
        .is_some()
    );
    // Failing venues never get an offset; nothing panicked and every task ends at shutdown.
    assert_eq!(
        metric(
            "marketprism_exchange_clock_offset_seconds",
            &["exchange=\"okx_spot\""]
        ),
        None
    );
    shutdown.cancel();
    for task in [ok, garbage, down] {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("ends at shutdown")
            .expect("no panic");
    }
}
