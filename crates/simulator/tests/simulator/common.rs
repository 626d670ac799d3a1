//! A plain tokio-tungstenite / reqwest client and small helpers; no collector code on the client side.

use futures::{SinkExt, StreamExt};
use marketprism_config::SimulatorConfig;
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use marketprism_simulator::Levels;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Fast timings so every test takes seconds.
pub fn fast_config(seed: u64) -> SimulatorConfig {
    SimulatorConfig {
        seed,
        rate_per_s: 200,
        slow_interval_ms: 50,
        book_levels: 30,
        ..SimulatorConfig::default()
    }
}

pub async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
        .0
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

pub async fn send_text(ws: &mut Ws, t: &str) {
    ws.send(Message::Text(t.to_owned().into())).await.unwrap();
}

/// What the next frame was.
#[derive(Debug)]
pub enum Got {
    Text(String),
    Closed(Option<u16>),
    Timeout,
}

/// The next text frame (pings are answered by tungstenite while reading).
pub async fn next(ws: &mut Ws, within: Duration) -> Got {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Got::Timeout,
            Ok(None) | Ok(Some(Err(_))) => return Got::Closed(None),
            Ok(Some(Ok(Message::Text(t)))) => return Got::Text(t.to_string()),
            Ok(Some(Ok(Message::Close(f)))) => return Got::Closed(f.map(|f| u16::from(f.code))),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

pub async fn next_json(ws: &mut Ws) -> Value {
    match next(ws, Duration::from_secs(5)).await {
        Got::Text(t) => serde_json::from_str(&t).unwrap_or_else(|e| panic!("bad JSON {t}: {e}")),
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// Next JSON frame satisfying `pred`, skipping others.
pub async fn next_matching(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..100_000 {
        let v = next_json(ws).await;
        if pred(&v) {
            return v;
        }
    }
    panic!("no matching frame");
}

pub async fn http_get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    // reqwest is built without a default provider: the binaries install ring, and so must tests.
    marketprism_config::tls::install_crypto_provider();
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// Remove time fields so two runs can be compared.
pub fn strip_times(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        for k in ["E", "T", "ts", "timestamp"] {
            o.remove(k);
        }
        for (_, child) in o.iter_mut() {
            *child = strip_times(child.take());
        }
    } else if let Some(a) = v.as_array_mut() {
        for child in a.iter_mut() {
            *child = strip_times(child.take());
        }
    }
    v
}

/// A price level book keyed by the decimal value of the price text, holding the text as received.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TextBook {
    pub bids: std::collections::BTreeMap<rust_decimal::Decimal, (String, String)>,
    pub asks: std::collections::BTreeMap<rust_decimal::Decimal, (String, String)>,
}

impl TextBook {
    pub fn set(&mut self, bid: bool, price: &str, qty: &str) {
        let p: rust_decimal::Decimal = price.parse().unwrap();
        let q: rust_decimal::Decimal = qty.parse().unwrap();
        let side = if bid { &mut self.bids } else { &mut self.asks };
        if q.is_zero() {
            side.remove(&p);
        } else {
            side.insert(p, (price.to_owned(), qty.to_owned()));
        }
    }

    pub fn top(&self, n: usize) -> (Levels, Levels) {
        (
            self.bids.values().rev().take(n).cloned().collect(),
            self.asks.values().take(n).cloned().collect(),
        )
    }

    /// Levels as normalized decimals, for comparing books sent in different number formats.
    pub fn normalized(&self, n: usize) -> (Levels, Levels) {
        let norm = |(p, q): &(String, String)| {
            (
                p.parse::<rust_decimal::Decimal>()
                    .unwrap()
                    .normalize()
                    .to_string(),
                q.parse::<rust_decimal::Decimal>()
                    .unwrap()
                    .normalize()
                    .to_string(),
            )
        };
        let (b, a) = self.top(n);
        (b.iter().map(norm).collect(), a.iter().map(norm).collect())
    }
}
