//! Shared helpers for the exchange tests: recorded fixtures copied from /work/shared/fixtures/recorded.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixture_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The messages of a fixture: one per line for `.jsonl`, the whole file for `.json`.
pub fn fixture_lines(rel: &str) -> Vec<String> {
    let text = std::fs::read_to_string(fixture_path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    if rel.ends_with(".jsonl") {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        vec![text.trim().to_owned()]
    }
}

pub fn fixture(rel: &str) -> String {
    fixture_lines(rel).remove(0)
}

/// Every fixture file under a venue folder (relative paths), sorted.
pub fn fixtures_under(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let root = fixture_path("");
    let mut stack = vec![fixture_path(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "json" || e == "jsonl") {
                out.push(
                    p.strip_prefix(&root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

/// The instrument lists the recorded frames need, in each venue's own list shape, read by the venue's
/// list parser (the values are the venues' published ones: OKX BTC-USDT-SWAP 0.01 BTC per contract,
/// BTC-USD-SWAP 100 USD, ETH-USD-SWAP 10 USD; Deribit BTC-PERPETUAL inverse, amounts in USD).
pub fn recorded_instruments(
    exchange: marketprism_model::Exchange,
) -> marketprism_model::instruments::InstrumentTable {
    use marketprism_model::Exchange;
    let spot = |rows: &[(&str, &str, &str)]| {
        let symbols: Vec<String> = rows
            .iter()
            .map(|(s, b, q)| {
                format!(r#"{{"symbol":"{s}","baseAsset":"{b}","quoteAsset":"{q}","filters":[]}}"#)
            })
            .collect();
        format!(r#"{{"symbols":[{}]}}"#, symbols.join(","))
    };
    let (body, bodies): (String, Vec<String>) = match exchange {
        Exchange::BinanceSpot => (
            spot(&[
                ("BTCUSDT", "BTC", "USDT"),
                ("ETHUSDT", "ETH", "USDT"),
                ("LRCBTC", "LRC", "BTC"),
                ("BLZETH", "BLZ", "ETH"),
                ("GLMUSDT", "GLM", "USDT"),
                ("BNBUSD", "BNB", "USD"),
                ("BTCEURI", "BTC", "EURI"),
            ]),
            vec![],
        ),
        Exchange::BinanceDerivatives => (
            spot(&[
                ("BTCUSDT", "BTC", "USDT"),
                ("ETHUSDT", "ETH", "USDT"),
                ("AKROUSDT", "AKRO", "USDT"),
                ("CTKUSDT", "CTK", "USDT"),
                ("CTSIUSDT", "CTSI", "USDT"),
                ("BTCUSD", "BTC", "USD"),
                ("GLMUSDT", "GLM", "USDT"),
            ])
            .replace(r#""filters""#, r#""contractType":"PERPETUAL","filters""#),
            vec![],
        ),
        Exchange::OkxSpot | Exchange::OkxDerivatives => (
            String::new(),
            vec![
                r#"{"code":"0","data":[{"instType":"SPOT","instId":"BTC-USDT","baseCcy":"BTC","quoteCcy":"USDT","tickSz":"0.1","lotSz":"0.00000001"},{"instType":"SPOT","instId":"BTC-USD","baseCcy":"BTC","quoteCcy":"USD"}]}"#.into(),
                r#"{"code":"0","data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","uly":"BTC-USDT","ctVal":"0.01","ctMult":"1","ctValCcy":"BTC","ctType":"linear"},{"instType":"SWAP","instId":"BTC-USD-SWAP","uly":"BTC-USD","ctVal":"100","ctMult":"1","ctValCcy":"USD","ctType":"inverse"},{"instType":"SWAP","instId":"ETH-USD-SWAP","uly":"ETH-USD","ctVal":"10","ctMult":"1","ctValCcy":"USD","ctType":"inverse"},{"instType":"SWAP","instId":"IOST-USDT-SWAP","uly":"IOST-USDT","ctVal":"1000","ctMult":"1","ctValCcy":"IOST","ctType":"linear"}]}"#.into(),
                r#"{"code":"0","data":[{"instType":"FUTURES","instId":"BTC-USD-220527","uly":"BTC-USD","ctVal":"100","ctMult":"1","ctValCcy":"USD","ctType":"inverse"}]}"#.into(),
            ],
        ),
        Exchange::GateSpot => (fixture("gate_spot/rest/spot_currency_pairs.json"), vec![]),
        Exchange::GateDerivatives => (fixture("gate/docexample_futures_contracts.json"), vec![]),
        // MEXC's documented list shapes (Spot V3 "Exchange Information", Futures "contract detail").
        Exchange::MexcSpot => (
            r#"{"symbols":[{"symbol":"BTCUSDT","status":"1","baseAsset":"BTC","quoteAsset":"USDT","quotePrecision":2,"baseSizePrecision":"0.000001"}]}"#.into(),
            vec![],
        ),
        Exchange::MexcDerivatives => (
            r#"{"success":true,"code":0,"data":[{"symbol":"BTC_USDT","baseCoin":"BTC","quoteCoin":"USDT","settleCoin":"USDT","contractSize":0.0001,"priceUnit":0.1,"volUnit":1,"state":0}]}"#.into(),
            vec![],
        ),
        Exchange::DeribitDerivatives => (
            r#"{"result":[{"instrument_name":"BTC-PERPETUAL","kind":"future","settlement_period":"perpetual","base_currency":"BTC","quote_currency":"USD","instrument_type":"reversed"},{"instrument_name":"ETH-PERPETUAL","kind":"future","settlement_period":"perpetual","base_currency":"ETH","quote_currency":"USD","instrument_type":"reversed"},{"instrument_name":"BTC-31DEC21-34000-P","kind":"option","settlement_period":"month","base_currency":"BTC","quote_currency":"USD","instrument_type":"reversed"}]}"#.into(),
            vec![],
        ),
    };
    let mut all = Vec::new();
    for b in std::iter::once(body)
        .chain(bodies)
        .filter(|b| !b.is_empty())
    {
        all.extend(
            marketprism_venues::instruments::parse_listing(exchange, &b)
                .unwrap_or_else(|e| panic!("{e}: {b}")),
        );
    }
    marketprism_model::instruments::InstrumentTable::new(all)
}

/// The first WebSocket connection of the first exchange of `yaml`, run as production runs it (the
/// production REST client and trust store, as `spawn_connectors` builds them), against the
/// simulator's instrument list; its events arrive on the receiver until the token is cancelled.
pub fn run_first_connection(
    yaml: &str,
) -> (
    tokio::sync::mpsc::Receiver<marketprism_model::Event>,
    tokio_util::sync::CancellationToken,
) {
    use marketprism_venues::connection::session::SessionCtx;
    let config = marketprism_config::Config::from_yaml(yaml).unwrap();
    config.validate().unwrap();
    let ex = &config.exchanges[0];
    let plan = marketprism_venues::plan::ws_plans(
        ex,
        &marketprism_venues::test_support::simulator_instruments(ex.exchange),
    )
    .remove(0);
    let (tx, rx) = tokio::sync::mpsc::channel(4096);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let ctx = std::sync::Arc::new(SessionCtx {
        plan,
        http: marketprism_venues::rest_client(&Default::default()),
        tls: Default::default(),
        limiter: marketprism_venues::rate_limit::RateLimiter::new(10, 10.0),
        signals: None,
    });
    tokio::spawn(marketprism_venues::connection::run_connection(
        ctx,
        tx,
        marketprism_telemetry::Health::new(),
        shutdown.clone(),
    ));
    (rx, shutdown)
}

/// A scripted Binance WebSocket server on a free loopback port: it accepts one connection, acks
/// its subscribe request, sends `frames` in order and then stays open. Returns its `ws://` URL.
pub async fn scripted_binance(frames: Vec<String>) -> String {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let _subscribe = ws.next().await;
        ws.send(Message::text(r#"{"result":null,"id":1}"#))
            .await
            .unwrap();
        for frame in frames {
            ws.send(Message::text(frame)).await.unwrap();
        }
        futures::future::pending::<()>().await;
    });
    url
}

/// Events from `rx` until `done` holds for all received so far (15 s per event at most).
pub async fn events_until(
    rx: &mut tokio::sync::mpsc::Receiver<marketprism_model::Event>,
    done: impl Fn(&[marketprism_model::Event]) -> bool,
) -> Vec<marketprism_model::Event> {
    let mut events = Vec::new();
    while !done(&events) {
        let e = tokio::time::timeout(std::time::Duration::from_secs(15), rx.recv())
            .await
            .expect("events in time")
            .expect("the connection runs");
        events.push(e);
    }
    events
}
