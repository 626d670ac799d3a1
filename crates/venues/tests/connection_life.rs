//! Connection life against small in-test WebSocket servers on 127.0.0.1: ack-gated subscribe,
//! keep-alive per venue, reconnect with a gap record, serverShutdown, and make-before-break rotation.

use futures::{SinkExt, StreamExt};
use marketprism_config::{Config, ExchangeConfig};
use marketprism_model::{DataType, Event, GapCause, Payload};
use marketprism_telemetry::Health;
use marketprism_venues::connection::run_connection;
use marketprism_venues::connection::session::SessionCtx;
use marketprism_venues::keepalive::KeepAlivePolicy;
use marketprism_venues::plan::{WsPlan, ws_plans};
use marketprism_venues::rate_limit::RateLimiter;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

type Server = WebSocketStream<tokio::net::TcpStream>;
const WAIT: Duration = Duration::from_secs(15);

/// Accept connections forever; each is handed to `handler(index, ws)` on its own task.
async fn serve<F, Fut>(handler: F) -> String
where
    F: Fn(usize, Server) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((tcp, _)) = listener.accept().await {
            let handler = Arc::clone(&handler);
            let i = n;
            n += 1;
            tokio::spawn(async move {
                if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                    handler(i, ws).await;
                }
            });
        }
    });
    format!("ws://{addr}")
}

fn exchange(yaml_body: &str, ws_url: &str) -> ExchangeConfig {
    let yaml = format!(
        "exchanges:\n  - {yaml_body}\n    endpoints: {{ws_url: \"{ws_url}\", rest_url: \"http://127.0.0.1:9\"}}\n"
    );
    let c = Config::from_yaml(&yaml).unwrap();
    c.validate().unwrap();
    c.exchanges[0].clone()
}

fn start(plan: WsPlan) -> (mpsc::Receiver<Event>, CancellationToken, Health) {
    let (tx, rx) = mpsc::channel(1024);
    let shutdown = CancellationToken::new();
    let health = Health::new();
    let ctx = Arc::new(SessionCtx {
        plan,
        // The production REST client and trust store (public roots), as `spawn_connectors` builds them.
        http: marketprism_venues::rest_client(&Default::default()),
        tls: Default::default(),
        limiter: RateLimiter::new(100, 100.0),
        signals: None,
    });
    tokio::spawn(run_connection(ctx, tx, health.clone(), shutdown.clone()));
    (rx, shutdown, health)
}

async fn next_event(rx: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("an event in time")
        .expect("channel open")
}

async fn next_text(ws: &mut Server) -> String {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

fn binance_trade(id: u64) -> String {
    format!(
        r#"{{"e":"trade","E":{t},"s":"BTCUSDT","t":{id},"p":"42000.10","q":"0.5","T":{t},"m":false}}"#,
        t = 1_700_000_000_000u64 + id
    )
}

fn trade_id(e: &Event) -> Option<String> {
    match &e.payload {
        Payload::Trade(t) => Some(t.trade_id.clone()),
        _ => None,
    }
}

#[tokio::test]
async fn binance_acks_answers_pings_and_records_a_gap_across_a_reconnect() {
    let (pong_tx, mut pong_rx) = mpsc::channel::<Vec<u8>>(4);
    let url = serve(move |i, mut ws| {
        let pong_tx = pong_tx.clone();
        async move {
            let sub = next_text(&mut ws).await;
            assert!(
                sub.contains(r#""method":"SUBSCRIBE""#) && sub.contains("btcusdt@trade"),
                "{sub}"
            );
            ws.send(Message::text(r#"{"result":null,"id":1}"#))
                .await
                .unwrap();
            if i == 0 {
                ws.send(Message::Ping(b"keepalive-42".to_vec().into()))
                    .await
                    .unwrap();
                // The client must answer with a pong carrying the same payload.
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Pong(p))) => {
                            pong_tx.send(p.to_vec()).await.unwrap();
                            break;
                        }
                        Some(Ok(_)) => {}
                        _ => return,
                    }
                }
                ws.send(Message::text(binance_trade(1))).await.unwrap();
                tokio::time::sleep(Duration::from_millis(100)).await;
                // Drop without a close handshake: the client sees an abrupt end.
            } else {
                ws.send(Message::text(binance_trade(2))).await.unwrap();
                futures::future::pending::<()>().await;
            }
        }
    })
    .await;
    let ex = exchange(
        "exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]",
        &url,
    );
    let plan = ws_plans(
        &ex,
        &marketprism_venues::test_support::simulator_instruments(ex.exchange),
    )
    .remove(0);
    assert_eq!(plan.url, format!("{url}/ws"));
    let (mut rx, shutdown, health) = start(plan);
    let first = next_event(&mut rx).await;
    assert_eq!(trade_id(&first).as_deref(), Some("1"));
    assert_eq!(pong_rx.recv().await.unwrap(), b"keepalive-42");
    assert!(health.is_ready());
    let gap = next_event(&mut rx).await;
    let Payload::Gap(g) = &gap.payload else {
        panic!("expected a gap, got {gap:?}")
    };
    assert_eq!(
        (g.data_type, g.cause),
        (DataType::Trades, GapCause::Disconnect)
    );
    assert!(
        g.start_ms <= g.end_ms && g.end_ms - g.start_ms < 60_000,
        "{g:?}"
    );
    assert_eq!(gap.symbol.as_str(), "BTC-USDT");
    let second = next_event(&mut rx).await;
    assert_eq!(trade_id(&second).as_deref(), Some("2"));
    shutdown.cancel();
}

/// The venue goes away and the run stops before a reconnect succeeds: the outage still ends as a
/// `disconnect` gap row, up to the stop, instead of vanishing with the run.
#[tokio::test]
async fn an_outage_still_open_when_the_run_stops_is_recorded_as_a_gap() {
    let url = serve(move |i, mut ws| async move {
        if i > 0 {
            // Every reconnect is dropped at once: the venue stays down.
            return;
        }
        next_text(&mut ws).await;
        ws.send(Message::text(r#"{"result":null,"id":1}"#))
            .await
            .unwrap();
        ws.send(Message::text(binance_trade(1))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    })
    .await;
    let ex = exchange(
        "exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]",
        &url,
    );
    let plan = ws_plans(
        &ex,
        &marketprism_venues::test_support::simulator_instruments(ex.exchange),
    )
    .remove(0);
    let (mut rx, shutdown, _health) = start(plan);
    let first = next_event(&mut rx).await;
    assert_eq!(trade_id(&first).as_deref(), Some("1"));
    // Down for a while (reconnects refused), then the run stops.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    shutdown.cancel();
    let mut rest = Vec::new();
    while let Some(e) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("the connection ends after the stop")
    {
        rest.push(e);
    }
    let gaps: Vec<_> = rest
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Gap(g) => Some(g),
            _ => None,
        })
        .collect();
    assert_eq!(gaps.len(), 1, "{rest:?}");
    assert_eq!(
        (gaps[0].data_type, gaps[0].cause),
        (DataType::Trades, GapCause::Disconnect)
    );
    assert!(gaps[0].start_ms < gaps[0].end_ms, "{:?}", gaps[0]);
}

#[tokio::test]
async fn no_subscribe_ack_means_reconnect() {
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&connections);
    let url = serve(move |i, mut ws| {
        seen.fetch_add(1, Ordering::SeqCst);
        async move {
            let _sub = next_text(&mut ws).await;
            if i >= 1 {
                ws.send(Message::text(r#"{"result":null,"id":1}"#))
                    .await
                    .unwrap();
                ws.send(Message::text(binance_trade(7))).await.unwrap();
            }
            futures::future::pending::<()>().await;
        }
    })
    .await;
    let ex = exchange(
        "exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]\n    subscribe_timeout_s: 1",
        &url,
    );
    let (mut rx, shutdown, _) = start(
        ws_plans(
            &ex,
            &marketprism_venues::test_support::simulator_instruments(ex.exchange),
        )
        .remove(0),
    );
    let gap = next_event(&mut rx).await;
    assert!(
        matches!(&gap.payload, Payload::Gap(g) if g.cause == GapCause::Disconnect && g.detail.contains("no subscribe ack")),
        "{gap:?}"
    );
    assert_eq!(trade_id(&next_event(&mut rx).await).as_deref(), Some("7"));
    assert!(connections.load(Ordering::SeqCst) >= 2);
    shutdown.cancel();
}

#[tokio::test]
async fn server_shutdown_event_reconnects_with_its_cause() {
    let url = serve(|i, mut ws| async move {
        let _ = next_text(&mut ws).await;
        ws.send(Message::text(r#"{"result":null,"id":1}"#))
            .await
            .unwrap();
        if i == 0 {
            ws.send(Message::text(r#"{"e":"serverShutdown","E":1770123456789}"#))
                .await
                .unwrap();
        } else {
            ws.send(Message::text(binance_trade(9))).await.unwrap();
        }
        futures::future::pending::<()>().await;
    })
    .await;
    let ex = exchange(
        "exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]",
        &url,
    );
    let (mut rx, shutdown, _) = start(
        ws_plans(
            &ex,
            &marketprism_venues::test_support::simulator_instruments(ex.exchange),
        )
        .remove(0),
    );
    let gap = next_event(&mut rx).await;
    assert!(
        matches!(&gap.payload, Payload::Gap(g) if g.cause == GapCause::ServerShutdown),
        "{gap:?}"
    );
    assert_eq!(trade_id(&next_event(&mut rx).await).as_deref(), Some("9"));
    shutdown.cancel();
}

#[tokio::test]
async fn okx_sends_text_ping_when_idle_and_reconnects_when_pong_never_comes() {
    let (ping_tx, mut ping_rx) = mpsc::channel::<usize>(8);
    let url = serve(move |i, mut ws| {
        let ping_tx = ping_tx.clone();
        async move {
            let sub = next_text(&mut ws).await;
            assert!(sub.contains(r#""op":"subscribe""#), "{sub}");
            ws.send(Message::text(r#"{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"x"}"#)).await.unwrap();
            loop {
                let t = next_text(&mut ws).await;
                if t == "ping" {
                    ping_tx.send(i).await.unwrap();
                    // The first connection answers once; after that it plays dead.
                    if i == 0 && ping_rx_answered(&mut ws).await {
                        continue;
                    }
                }
            }
        }
    })
    .await;
    async fn ping_rx_answered(ws: &mut Server) -> bool {
        static ANSWERED: AtomicUsize = AtomicUsize::new(0);
        if ANSWERED.fetch_add(1, Ordering::SeqCst) == 0 {
            ws.send(Message::text("pong")).await.unwrap();
            true
        } else {
            false
        }
    }
    let ex = exchange(
        "exchange: okx_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]",
        &url,
    );
    let mut plan = ws_plans(
        &ex,
        &marketprism_venues::test_support::simulator_instruments(ex.exchange),
    )
    .remove(0);
    assert_eq!(plan.url, format!("{url}/ws/v5/public"));
    plan.keepalive = KeepAlivePolicy::ClientTextPing {
        idle: Duration::from_millis(200),
        deadline: Duration::from_millis(300),
    };
    let (mut rx, shutdown, _) = start(plan);
    assert_eq!(ping_rx.recv().await, Some(0), "ping after idle");
    assert_eq!(ping_rx.recv().await, Some(0), "pinged again after the pong");
    let gap = next_event(&mut rx).await;
    assert!(
        matches!(&gap.payload, Payload::Gap(g) if g.cause == GapCause::Stale),
        "{gap:?}"
    );
    assert_eq!(
        ping_rx.recv().await,
        Some(1),
        "a new connection keeps pinging"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn deribit_sets_heartbeat_and_answers_test_requests() {
    let (test_tx, mut test_rx) = mpsc::channel::<String>(4);
    let url = serve(move |_, mut ws| {
        let test_tx = test_tx.clone();
        async move {
            let hb = next_text(&mut ws).await;
            assert!(hb.contains("public/set_heartbeat"), "{hb}");
            ws.send(Message::text(r#"{"jsonrpc":"2.0","id":1,"result":"ok"}"#)).await.unwrap();
            let sub = next_text(&mut ws).await;
            assert!(sub.contains("deribit_volatility_index.btc_usd"), "{sub}");
            ws.send(Message::text(r#"{"jsonrpc":"2.0","id":2,"result":["deribit_volatility_index.btc_usd"]}"#)).await.unwrap();
            ws.send(Message::text(r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#)).await.unwrap();
            test_tx.send(next_text(&mut ws).await).await.unwrap();
            ws.send(Message::text(r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"deribit_volatility_index.btc_usd","data":{"volatility":129.36,"timestamp":1619777946007,"index_name":"btc_usd"}}}"#)).await.unwrap();
            futures::future::pending::<()>().await;
        }
    })
    .await;
    let ex = exchange(
        "exchange: deribit_derivatives\n    symbols: [BTC-USD]\n    data_types: [volatility_indices]",
        &url,
    );
    let plan = ws_plans(
        &ex,
        &marketprism_venues::test_support::simulator_instruments(ex.exchange),
    )
    .remove(0);
    assert_eq!(plan.url, format!("{url}/ws/api/v2"));
    let (mut rx, shutdown, _) = start(plan);
    let reply = test_rx.recv().await.unwrap();
    assert!(reply.contains(r#""method":"public/test""#), "{reply}");
    let e = next_event(&mut rx).await;
    assert!(
        matches!(&e.payload, Payload::VolatilityIndex(v) if v.volatility.to_string() == "129.36"),
        "{e:?}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn rotation_is_make_before_break_without_duplicates_gaps_or_holes() {
    // A venue-like live stream: trade ids follow a shared clock, so overlapping connections deliver the
    // same ids and a new connection starts at the current id.
    let open = Arc::new(AtomicUsize::new(0));
    let max_open = Arc::new(AtomicUsize::new(0));
    let epoch = tokio::time::Instant::now();
    let (o, m) = (Arc::clone(&open), Arc::clone(&max_open));
    let url = serve(move |_, mut ws| {
        let (o, m) = (Arc::clone(&o), Arc::clone(&m));
        async move {
            let _ = next_text(&mut ws).await;
            ws.send(Message::text(r#"{"result":null,"id":1}"#))
                .await
                .unwrap();
            let now_open = o.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now_open, Ordering::SeqCst);
            let clock = || u64::try_from(epoch.elapsed().as_millis()).unwrap() / 5 + 1;
            let mut sent = clock() - 1;
            'live: loop {
                for id in sent + 1..=clock() {
                    if ws.send(Message::text(binance_trade(id))).await.is_err() {
                        break 'live;
                    }
                    sent = id;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            o.fetch_sub(1, Ordering::SeqCst);
        }
    })
    .await;
    let ex = exchange(
        "exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]",
        &url,
    );
    let mut plan = ws_plans(
        &ex,
        &marketprism_venues::test_support::simulator_instruments(ex.exchange),
    )
    .remove(0);
    plan.rotate_after = Duration::from_millis(400);
    let (mut rx, shutdown, _) = start(plan);
    let mut ids = Vec::new();
    let mut unique = HashSet::new();
    while ids.len() < 400 {
        let e = next_event(&mut rx).await;
        assert!(
            !matches!(e.payload, Payload::Gap(_)),
            "a rotation is not an interruption: {e:?}"
        );
        let id: u64 = trade_id(&e).unwrap().parse().unwrap();
        assert!(
            unique.insert(id),
            "duplicate trade {id} forwarded during an overlap"
        );
        ids.push(id);
    }
    assert!(
        max_open.load(Ordering::SeqCst) >= 2,
        "the new connection was open before the old one closed"
    );
    ids.sort_unstable();
    let holes: Vec<_> = ids.windows(2).filter(|w| w[1] != w[0] + 1).collect();
    assert!(holes.is_empty(), "trades lost across rotations: {holes:?}");
    shutdown.cancel();
}

#[tokio::test]
async fn spawn_connectors_runs_connections_and_pollers_until_shutdown() {
    let url = serve(|_, mut ws| async move {
        let _ = next_text(&mut ws).await;
        ws.send(Message::text(r#"{"result":null,"id":1}"#))
            .await
            .unwrap();
        ws.send(Message::text(binance_trade(5))).await.unwrap();
        futures::future::pending::<()>().await;
    })
    .await;
    // The instrument list comes from the venue's REST API: the simulator's here.
    let sim = marketprism_simulator::Simulator::start(Default::default())
        .await
        .unwrap();
    let rest = sim
        .endpoints(marketprism_model::Exchange::BinanceSpot)
        .rest_url
        .unwrap();
    let yaml = format!(
        "exchanges:\n  - exchange: binance_spot\n    symbols: [BTC-USDT]\n    data_types: [trades]\n    endpoints: {{ws_url: \"{url}\", rest_url: \"{rest}\"}}\n  - exchange: binance_derivatives\n    symbols: [BTC-USDT]\n    data_types: [open_interests]\n    poll_interval_s: 1\n    endpoints: {{rest_url: \"http://127.0.0.1:9\"}}\n"
    );
    let config = Config::from_yaml(&yaml).unwrap();
    config.validate().unwrap();
    let (tx, mut rx) = mpsc::channel(64);
    let health = Health::new();
    let shutdown = CancellationToken::new();
    let mut set = marketprism_venues::spawn_connectors(
        &config.exchanges,
        &config.tls.client,
        tx,
        health.clone(),
        shutdown.clone(),
    );
    assert_eq!(set.len(), 2, "one task per product line");
    assert_eq!(trade_id(&next_event(&mut rx).await).as_deref(), Some("5"));
    assert!(health.snapshot().contains_key("exchange:binance_spot"));
    shutdown.cancel();
    tokio::time::timeout(WAIT, async { while set.join_next().await.is_some() {} })
        .await
        .expect("every connector and poller stops on shutdown");
    assert!(
        health.snapshot().is_empty(),
        "readiness components removed on exit"
    );
    sim.stop().await;
}
