//! The whole USD-M book path over real sockets, with recorded data: an in-test WebSocket server replays
//! the recorded depth diffs, an in-test HTTP server serves the recorded REST snapshot (after a first 429
//! with Retry-After), and the published top-of-book must equal the venue's own bookTicker.

mod common;

use common::{fixture, fixture_lines};
use futures::{SinkExt, StreamExt};
use marketprism_config::Config;
use marketprism_model::{Decimal, Payload};
use marketprism_telemetry::Health;
use marketprism_venues::connection::run_connection;
use marketprism_venues::connection::session::SessionCtx;
use marketprism_venues::plan::ws_plans;
use marketprism_venues::rate_limit::RateLimiter;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// A one-route HTTP server: the first request gets 429 + Retry-After: 1, later ones the snapshot.
async fn rest_server(body: String, hits: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let body = body.clone();
            let n = hits.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => got.extend_from_slice(&buf[..k]),
                    }
                }
                let request = String::from_utf8_lossy(&got);
                assert!(
                    request.starts_with("GET /fapi/v1/depth?symbol=AKROUSDT&limit=1000 "),
                    "{request}"
                );
                let resp = if n == 0 {
                    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
                } else {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = tcp.write_all(resp.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// Replays `frames`; after the first two it waits for the REST snapshot to be served, so most diffs
/// arrive on a live book and each yields a published snapshot.
async fn ws_server(frames: Vec<String>, rest_hits: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let Some(Ok(Message::Text(sub))) = ws.next().await else {
            panic!("no subscribe")
        };
        assert!(sub.contains("akrousdt@depth@100ms"), "{sub}");
        ws.send(Message::text(r#"{"result":null,"id":1}"#))
            .await
            .unwrap();
        for (i, f) in frames.into_iter().enumerate() {
            while i == 2 && rest_hits.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if i == 2 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            ws.send(Message::text(f)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        futures::future::pending::<()>().await;
    });
    format!("ws://{addr}")
}

#[tokio::test]
async fn usdm_book_over_sockets_matches_book_ticker_after_a_429() {
    let hits = Arc::new(AtomicUsize::new(0));
    let rest = rest_server(
        fixture("binance_usdm/depth_snapshot/bmoscon-cryptofeed__akrousdt_rest_depth1000.json"),
        Arc::clone(&hits),
    )
    .await;
    let ws = ws_server(
        fixture_lines("binance_usdm/depthUpdate/bmoscon-cryptofeed__akrousdt_depth100ms.jsonl"),
        Arc::clone(&hits),
    )
    .await;
    let yaml = format!(
        "exchanges:\n  - exchange: binance_derivatives\n    symbols: [AKRO-USDT]\n    data_types: [orderbooks]\n    orderbook: {{snapshot_levels: 5, snapshot_interval_ms: 10}}\n    endpoints: {{ws_url: \"{ws}\", rest_url: \"{rest}\"}}\n"
    );
    let config = Config::from_yaml(&yaml).unwrap();
    config.validate().unwrap();
    let plan = ws_plans(
        &config.exchanges[0],
        &marketprism_venues::test_support::simulator_instruments(config.exchanges[0].exchange),
    )
    .remove(0);
    assert_eq!(plan.url, format!("{ws}/public/ws"));
    let (tx, mut rx) = mpsc::channel(4096);
    let shutdown = CancellationToken::new();
    let ctx = Arc::new(SessionCtx {
        plan,
        // The production REST client and trust store (public roots), as `spawn_connectors` builds them.
        http: marketprism_venues::rest_client(&Default::default()),
        tls: Default::default(),
        limiter: RateLimiter::new(100, 100.0),
        signals: None,
    });
    tokio::spawn(run_connection(ctx, tx, Health::new(), shutdown.clone()));

    let oracle: BTreeMap<i64, (Decimal, Decimal, Decimal, Decimal)> = fixture_lines(
        "binance_usdm/bookTicker_oracle/bmoscon-cryptofeed__akrousdt_bookTicker.jsonl",
    )
    .iter()
    .map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let d = &v["data"];
        let dec = |k: &str| d[k].as_str().unwrap().parse::<Decimal>().unwrap();
        (
            d["u"].as_i64().unwrap(),
            (dec("b"), dec("B"), dec("a"), dec("A")),
        )
    })
    .collect();
    let last_u = 600_859_999_999_999; // run until the final recorded diff is published
    let final_u =
        fixture_lines("binance_usdm/depthUpdate/bmoscon-cryptofeed__akrousdt_depth100ms.jsonl")
            .last()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["data"]["u"]
                    .as_i64()
                    .unwrap()
            })
            .unwrap();
    assert!(final_u < last_u);
    let (mut compared, mut snapshots) = (0, 0);
    loop {
        let e = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("book events")
            .unwrap();
        let Payload::Orderbook(book) = &e.payload else {
            panic!("only book snapshots expected: {e:?}")
        };
        assert_eq!(
            (e.symbol.as_str(), e.exchange.as_str()),
            ("AKRO-USDT", "binance_derivatives")
        );
        assert!(book.bids.len() <= 5 && book.bids[0].0 < book.asks[0].0);
        snapshots += 1;
        if let Some(t) = oracle.get(&book.last_update_id) {
            assert_eq!(
                (
                    book.bids[0].0,
                    book.bids[0].1,
                    book.asks[0].0,
                    book.asks[0].1
                ),
                *t,
                "at u={}",
                book.last_update_id
            );
            compared += 1;
        }
        if book.last_update_id == final_u {
            break;
        }
    }
    assert!(
        compared >= 5 && snapshots > 150,
        "compared {compared} of {snapshots}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "one 429, then one successful snapshot after Retry-After"
    );
    shutdown.cancel();
}
