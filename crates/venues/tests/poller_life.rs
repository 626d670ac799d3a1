//! REST pollers never die: a 418 ban with Retry-After, a 500 and a garbage body are all survived, and
//! history endpoints emit each row once; an outage whose hole the history cannot fill is a Gap.

use marketprism_config::Config;
use marketprism_model::{Event, Payload};
use marketprism_venues::plan::poll_plans;
use marketprism_venues::poller::run_poller;
use marketprism_venues::rate_limit::RateLimiter;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Serves `responses[i]` (status line + headers, body) to the i-th request, the last one forever after.
async fn http_script(responses: Vec<(&'static str, String)>, hits: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let n = hits.fetch_add(1, Ordering::SeqCst);
            let (head, body) = responses[n.min(responses.len() - 1)].clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                let resp = format!(
                    "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(resp.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

async fn next(rx: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an event in time")
        .unwrap()
}

#[tokio::test]
async fn poller_survives_ban_errors_and_garbage_and_dedupes_history() {
    let hits = Arc::new(AtomicUsize::new(0));
    let rows = |ts: &[&str]| {
        format!("[{}]", ts.iter().map(|t| format!(r#"{{"symbol":"BTCUSDT","longShortRatio":"1.5","longAccount":"0.6","shortAccount":"0.4","timestamp":"{t}"}}"#)).collect::<Vec<_>>().join(","))
    };
    let url = http_script(
        vec![
            ("HTTP/1.1 418 I'm a teapot\r\nRetry-After: 1", String::new()),
            ("HTTP/1.1 500 Internal Server Error", "oops".into()),
            ("HTTP/1.1 200 OK", "not json".into()),
            ("HTTP/1.1 200 OK", rows(&["1700000001000", "1700000002000"])),
            ("HTTP/1.1 200 OK", rows(&["1700000002000", "1700000003000"])),
            ("HTTP/1.1 503 Service Unavailable", "down".into()),
            ("HTTP/1.1 200 OK", rows(&["1700000005000", "1700000006000"])),
        ],
        Arc::clone(&hits),
    )
    .await;
    let yaml = format!(
        "exchanges:\n  - exchange: binance_derivatives\n    symbols: [BTC-USDT]\n    data_types: [lsr_top_positions]\n    endpoints: {{rest_url: \"{url}\"}}\n"
    );
    let config = Config::from_yaml(&yaml).unwrap();
    let plan = poll_plans(
        &config.exchanges[0],
        &marketprism_venues::test_support::simulator_instruments(config.exchanges[0].exchange),
    )
    .remove(0);
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let limiter = RateLimiter::new(10, 10.0);
    let task = tokio::spawn(run_poller(
        plan,
        Duration::from_millis(50),
        marketprism_venues::rest_client(&Default::default()),
        limiter,
        tx,
        shutdown.clone(),
    ));
    let mut ts = Vec::new();
    for _ in 0..3 {
        let e = next(&mut rx).await;
        assert!(matches!(e.payload, Payload::LsrTopPosition(_)), "{e:?}");
        ts.push(e.ts_ms);
    }
    assert_eq!(
        ts,
        [1_700_000_001_000, 1_700_000_002_000, 1_700_000_003_000],
        "each history row once, oldest first"
    );
    // An outage after data was seen, whose history no longer reaches back to …3000: a recorded gap.
    let gap = next(&mut rx).await;
    let Payload::Gap(g) = &gap.payload else {
        panic!("expected the outage's gap, got {gap:?}")
    };
    assert_eq!(g.data_type.as_str(), "lsr_top_positions");
    assert!(g.detail.contains("503"), "{g:?}");
    assert!(g.start_ms <= g.end_ms);
    let after: Vec<i64> = [next(&mut rx).await, next(&mut rx).await]
        .iter()
        .map(|e| e.ts_ms)
        .collect();
    assert_eq!(after, [1_700_000_005_000, 1_700_000_006_000]);
    assert!(hits.load(Ordering::SeqCst) >= 7);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("poller stops on shutdown")
        .unwrap();
}
