//! One client WebSocket connection: venue protocol + market feeds + keep-alive rules + injected faults.

use super::faults::{FrameFault, PendingFault, malform};
use super::market::{BookSnapshot, Stamped};
use super::server::BoxIo;
use super::{Shared, SharedMarket, binance, deribit, gate, lock, mexc, okx};
use crate::internal_events::InternalEvent;
use crate::internal_events::simulator::SimulatorConnectionClosed;
use futures::{SinkExt, StreamExt};
use marketprism_model::Exchange;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

/// Commands from the handle to one connection.
#[derive(Debug)]
pub(crate) enum ConnCmd {
    Fault(PendingFault),
    Stale {
        symbol: Option<String>,
        until: Instant,
    },
    Drop,
    Lifetime(u64),
    ServerShutdown,
    /// Write this text frame as is (a frame the client did not ask for).
    Raw(String),
}

/// What a protocol wants written (besides data frames).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Out {
    Text(String),
    Close(u16, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameClass {
    Book,
    Trade,
    Other,
}

/// One data frame, with what it is about (for faults and counters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataFrame {
    pub channel: &'static str,
    pub symbol: Arc<str>,
    pub class: FrameClass,
    pub text: String,
    /// A binary frame (MEXC spot protobuf): written instead of `text`.
    pub binary: Option<Vec<u8>>,
}

impl DataFrame {
    /// A JSON text frame about `ev`'s market.
    pub(crate) fn json(
        channel: &'static str,
        ev: &super::market::Stamped,
        class: FrameClass,
        msg: serde_json::Value,
    ) -> DataFrame {
        DataFrame {
            channel,
            symbol: ev.symbol.clone(),
            class,
            text: msg.to_string(),
            binary: None,
        }
    }

    /// The frame as written, after `edit_text` for a text frame.
    fn message(&self, edit_text: impl Fn(&str) -> String) -> Message {
        match &self.binary {
            Some(b) => Message::Binary(b.clone().into()),
            None => Message::Text(edit_text(&self.text).into()),
        }
    }
}

/// Who keeps the connection alive, and the deadline the server enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepAlive {
    /// Server sends ping frames; no pong within `deadline` → cut (Binance).
    ServerPing {
        interval: Duration,
        deadline: Duration,
    },
    /// No client frame within `timeout` → close with 4004 (OKX).
    ClientIdle { timeout: Duration },
    /// No client frame at all within `timeout`, whatever was pushed → closed (MEXC contracts: "If no
    /// ping is received within 1 minute, the connection will be disconnected").
    ClientPing { timeout: Duration },
    /// The protocol handles it in `on_tick` (Deribit heartbeats).
    Protocol,
}

pub(crate) trait Protocol: Send {
    fn keepalive(&self) -> KeepAlive;
    /// Max client frames per second (0 = unlimited).
    fn max_inbound_per_s(&self) -> u32 {
        0
    }
    /// Right after the handshake (subscriptions named in the URL).
    fn open(&mut self, cx: &mut ConnCtx) -> Vec<Out>;
    fn on_text(&mut self, text: &str, cx: &mut ConnCtx) -> Vec<Out>;
    fn encode(&mut self, event: &Stamped, cx: &mut ConnCtx) -> Vec<DataFrame>;
    fn on_tick(&mut self, _now: Instant, _cx: &mut ConnCtx) -> Vec<Out> {
        Vec::new()
    }
    /// Data held back for a push cadence (Binance throttled depth), due now.
    fn flush(&mut self, _now: Instant, _cx: &mut ConnCtx) -> Vec<DataFrame> {
        Vec::new()
    }
}

pub(crate) struct Venue;

impl Venue {
    #[allow(clippy::new_ret_no_self)]
    pub(crate) fn new(exchange: Exchange, rel: &str, shared: &Arc<Shared>) -> Box<dyn Protocol> {
        match exchange {
            Exchange::BinanceSpot | Exchange::BinanceDerivatives => {
                Box::new(binance::BinanceConn::new(exchange, rel, &shared.config))
            }
            Exchange::OkxSpot | Exchange::OkxDerivatives => {
                Box::new(okx::OkxConn::new(rel, &shared.config))
            }
            Exchange::DeribitDerivatives => {
                Box::new(deribit::DeribitConn::new(rel, &shared.config))
            }
            Exchange::GateSpot | Exchange::GateDerivatives => {
                Box::new(gate::GateConn::new(exchange, rel, &shared.config))
            }
            Exchange::MexcSpot => Box::new(mexc::MexcSpotConn::new(rel, &shared.config)),
            Exchange::MexcDerivatives => Box::new(mexc::MexcContractConn::new(rel, &shared.config)),
        }
    }
}

pub(crate) enum Feed {
    Event(Arc<Stamped>),
    Lagged,
}

/// A connection's view of the simulator: its id, and its attachments to market feeds.
pub(crate) struct ConnCtx {
    pub id: u64,
    pub exchange: Exchange,
    pub shared: Arc<Shared>,
    feed_tx: mpsc::Sender<Feed>,
    attached: HashMap<String, (usize, CancellationToken)>,
}

impl ConnCtx {
    /// Start receiving a symbol's events (ref-counted); returns the book as of the first event to come.
    pub(crate) fn attach(&mut self, symbol: &str, depth: usize) -> BookSnapshot {
        let market = self.shared.market(self.exchange, symbol);
        self.attach_market(symbol, &market, depth)
    }

    pub(crate) fn attach_market(
        &mut self,
        key: &str,
        market: &SharedMarket,
        depth: usize,
    ) -> BookSnapshot {
        let m = lock(market);
        let snapshot = m.snapshot(depth, super::now_ms());
        if let Some((count, _)) = self.attached.get_mut(key) {
            *count += 1;
            return snapshot;
        }
        let rx = m.tx.subscribe();
        drop(m);
        let token = CancellationToken::new();
        tokio::spawn(forward(rx, self.feed_tx.clone(), token.clone()));
        self.attached.insert(key.to_owned(), (1, token));
        snapshot
    }

    pub(crate) fn detach(&mut self, key: &str) {
        if let Some((count, token)) = self.attached.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                token.cancel();
                self.attached.remove(key);
            }
        }
    }
}

impl Drop for ConnCtx {
    fn drop(&mut self) {
        for (_, token) in self.attached.values() {
            token.cancel();
        }
    }
}

async fn forward(
    mut rx: broadcast::Receiver<Arc<Stamped>>,
    tx: mpsc::Sender<Feed>,
    token: CancellationToken,
) {
    loop {
        let r = tokio::select! {
            _ = token.cancelled() => return,
            r = rx.recv() => r,
        };
        let feed = match r {
            Ok(ev) => Feed::Event(ev),
            Err(broadcast::error::RecvError::Lagged(_)) => Feed::Lagged,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let lagged = matches!(feed, Feed::Lagged);
        if tx.send(feed).await.is_err() || lagged {
            return;
        }
    }
}

/// Faults waiting for data frames, and frames held back for reordering.
#[derive(Default)]
struct FaultState {
    pending: Vec<PendingFault>,
    stale: Vec<(Option<String>, Instant)>,
    held: HashMap<(&'static str, Arc<str>), DataFrame>,
}

fn symbol_matches(filter: &Option<String>, symbol: &str) -> bool {
    filter
        .as_ref()
        .is_none_or(|s| s.eq_ignore_ascii_case(symbol))
}

fn applies(kind: FrameFault, class: FrameClass) -> bool {
    match kind {
        FrameFault::Gap => class == FrameClass::Book,
        FrameFault::Duplicate | FrameFault::OutOfOrder => class != FrameClass::Other,
        FrameFault::OutOfOrderTrades => class == FrameClass::Trade,
        FrameFault::StripSeqIds | FrameFault::CorruptChecksum => class == FrameClass::Book,
        FrameFault::Malformed(_) => true,
    }
}

impl FaultState {
    /// What to actually write for one data frame (pure except for fault bookkeeping and counters).
    fn apply(
        &mut self,
        frame: DataFrame,
        now: Instant,
        exchange: Exchange,
        shared: &Shared,
    ) -> Vec<Message> {
        let count = |f: &dyn Fn(&mut super::StreamCounters)| {
            shared
                .stats
                .stream(exchange, frame.channel, &frame.symbol, |c| f(c));
        };
        self.stale.retain(|(_, until)| *until > now);
        if self
            .stale
            .iter()
            .any(|(s, _)| symbol_matches(s, &frame.symbol))
        {
            count(&|c| c.suppressed += 1);
            return Vec::new();
        }
        let key = (frame.channel, frame.symbol.clone());
        if let Some(held) = self.held.remove(&key) {
            count(&|c| {
                c.sent += 2;
                c.reordered += 1;
            });
            return vec![frame.message(str::to_owned), held.message(str::to_owned)];
        }
        let idx = self.pending.iter().position(|p| {
            p.remaining > 0
                && applies(p.kind, frame.class)
                && symbol_matches(&p.symbol, &frame.symbol)
        });
        let Some(idx) = idx else {
            count(&|c| c.sent += 1);
            return vec![frame.message(str::to_owned)];
        };
        let p = &mut self.pending[idx];
        p.remaining -= 1;
        let first = !std::mem::replace(&mut p.started, true);
        let kind = p.kind;
        self.pending.retain(|p| p.remaining > 0);
        match kind {
            FrameFault::Gap => {
                count(&|c| {
                    c.skipped += 1;
                    c.gaps_injected += u64::from(first);
                });
                Vec::new()
            }
            FrameFault::Duplicate => {
                count(&|c| {
                    c.sent += 2;
                    c.duplicated += 1;
                });
                vec![frame.message(str::to_owned), frame.message(str::to_owned)]
            }
            FrameFault::OutOfOrder | FrameFault::OutOfOrderTrades => {
                self.held.insert(key, frame);
                Vec::new()
            }
            FrameFault::StripSeqIds => {
                count(&|c| c.sent += 1);
                vec![frame.message(super::faults::strip_seq_ids)]
            }
            FrameFault::CorruptChecksum => {
                count(&|c| {
                    c.sent += 1;
                    c.malformed += 1;
                });
                vec![frame.message(super::faults::corrupt_checksum)]
            }
            FrameFault::Malformed(m) => {
                count(&|c| {
                    c.sent += 1;
                    c.malformed += 1;
                });
                match &frame.binary {
                    Some(b) => vec![Message::Binary(super::mexc_pb::malform(b, m).into())],
                    None => vec![Message::Text(malform(&frame.text, m).into())],
                }
            }
        }
    }
}

enum Ending {
    Close(u16, String, &'static str),
    Abrupt(&'static str),
}

pub(crate) async fn run(
    ws: WebSocketStream<BoxIo>,
    exchange: Exchange,
    mut proto: Box<dyn Protocol>,
    shared: Arc<Shared>,
) {
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
    let id = shared.register_conn(exchange, cmd_tx);
    let (feed_tx, mut feed_rx) = mpsc::channel(1_024);
    let mut cx = ConnCtx {
        id,
        exchange,
        shared: shared.clone(),
        feed_tx,
        attached: HashMap::new(),
    };
    let (mut sink, mut stream) = ws.split();
    let ending = serve(
        &mut sink,
        &mut stream,
        &mut *proto,
        &mut cx,
        &mut cmd_rx,
        &mut feed_rx,
    )
    .await;
    let reason = match ending {
        Ending::Close(code, text, reason) => {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: text.into(),
            };
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                sink.send(Message::Close(Some(frame))),
            )
            .await;
            reason
        }
        Ending::Abrupt(reason) => reason,
    };
    shared.unregister_conn(id);
    drop(cx);
    SimulatorConnectionClosed {
        exchange,
        connection: id,
        reason,
    }
    .emit();
}

type Sink = futures::stream::SplitSink<WebSocketStream<BoxIo>, Message>;
type Stream = futures::stream::SplitStream<WebSocketStream<BoxIo>>;

/// Write protocol output; `Some(ending)` when it asks to close.
async fn write_outs(sink: &mut Sink, outs: Vec<Out>) -> Result<(), Ending> {
    for out in outs {
        match out {
            Out::Text(t) => sink
                .feed(Message::Text(t.into()))
                .await
                .map_err(|_| Ending::Abrupt("write failed"))?,
            Out::Close(code, text) => return Err(Ending::Close(code, text, "protocol close")),
        }
    }
    sink.flush()
        .await
        .map_err(|_| Ending::Abrupt("write failed"))
}

async fn serve(
    sink: &mut Sink,
    stream: &mut Stream,
    proto: &mut dyn Protocol,
    cx: &mut ConnCtx,
    cmd_rx: &mut mpsc::UnboundedReceiver<ConnCmd>,
    feed_rx: &mut mpsc::Receiver<Feed>,
) -> Ending {
    let shared = cx.shared.clone();
    let exchange = cx.exchange;
    let config = &shared.config;
    let opened = Instant::now();
    let mut lifetime_end = opened + Duration::from_millis(shared.lifetime_ms(exchange));
    let keepalive = proto.keepalive();
    let (mut last_client, mut last_pong) = (opened, opened);
    // OKX closes after 30 s with neither a client frame nor pushed data (exchange-protocols.md §3.1).
    let mut last_pushed = opened;
    let mut next_ping = match keepalive {
        KeepAlive::ServerPing { interval, .. } => Some(opened + interval),
        _ => None,
    };
    let mut shutdown_at: Option<Instant> = None;
    let mut faults = FaultState::default();
    let mut inbound: std::collections::VecDeque<Instant> = Default::default();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outs = proto.open(cx);
    if let Err(e) = write_outs(sink, outs).await {
        return e;
    }
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return Ending::Close(1001, "server stopping".into(), "simulator stopped"),
            msg = stream.next() => {
                let now = Instant::now();
                let msg = match msg {
                    None | Some(Err(_)) => return Ending::Abrupt("client went away"),
                    Some(Ok(m)) => m,
                };
                last_client = now;
                let limit = proto.max_inbound_per_s();
                if limit > 0 {
                    inbound.push_back(now);
                    while inbound.front().is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1)) {
                        inbound.pop_front();
                    }
                    if inbound.len() > limit as usize {
                        shared.stats.venue(exchange, |v| v.inbound_rate_cuts += 1);
                        return Ending::Close(1008, "Too many requests".into(), "inbound rate");
                    }
                }
                let outs = match msg {
                    Message::Text(t) => proto.on_text(t.as_str(), cx),
                    Message::Pong(_) => { last_pong = now; Vec::new() }
                    Message::Close(_) => return Ending::Abrupt("client closed"),
                    _ => Vec::new(),
                };
                if let Err(e) = write_outs(sink, outs).await {
                    return e;
                }
            }
            feed = feed_rx.recv() => {
                let mut batch = Vec::new();
                let mut next = feed;
                // Drain what is ready and flush once: keeps up with high benchmark rates.
                while let Some(f) = next {
                    match f {
                        Feed::Lagged => {
                            shared.stats.venue(exchange, |v| v.slow_client_cuts += 1);
                            return Ending::Close(1008, "client too slow".into(), "slow client");
                        }
                        Feed::Event(ev) => batch.push(ev),
                    }
                    if batch.len() >= 256 { break; }
                    next = feed_rx.try_recv().ok();
                }
                let now = Instant::now();
                let mut pushed = false;
                for ev in batch {
                    for frame in proto.encode(&ev, cx) {
                        for msg in faults.apply(frame, now, exchange, &shared) {
                            pushed = true;
                            if sink.feed(msg).await.is_err() {
                                return Ending::Abrupt("write failed");
                            }
                        }
                    }
                }
                if sink.flush().await.is_err() {
                    return Ending::Abrupt("write failed");
                }
                if pushed {
                    last_pushed = now;
                }
            }
            Some(cmd) = cmd_rx.recv() => match cmd {
                ConnCmd::Fault(p) => faults.pending.push(p),
                ConnCmd::Stale { symbol, until } => faults.stale.push((symbol, until)),
                ConnCmd::Drop => {
                    shared.stats.venue(exchange, |v| v.dropped += 1);
                    return Ending::Abrupt("dropped by fault");
                }
                ConnCmd::Raw(text) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return Ending::Abrupt("write failed");
                    }
                }
                ConnCmd::Lifetime(ms) => lifetime_end = lifetime_end.min(opened + Duration::from_millis(ms)),
                ConnCmd::ServerShutdown => {
                    if matches!(exchange, Exchange::BinanceSpot | Exchange::BinanceDerivatives) && shutdown_at.is_none() {
                        shared.stats.venue(exchange, |v| v.server_shutdowns += 1);
                        let event = serde_json::json!({"e": "serverShutdown", "E": super::now_ms()}).to_string();
                        if sink.send(Message::Text(event.into())).await.is_err() {
                            return Ending::Abrupt("write failed");
                        }
                        shutdown_at = Some(Instant::now() + Duration::from_millis(config.server_shutdown_grace_ms));
                    }
                }
            },
            _ = tick.tick() => {
                let now = Instant::now();
                if now >= lifetime_end {
                    shared.stats.venue(exchange, |v| v.lifetime_cuts += 1);
                    return Ending::Close(1000, "connection lifetime reached".into(), "lifetime");
                }
                if shutdown_at.is_some_and(|t| now >= t) {
                    return Ending::Close(1001, "server shutdown".into(), "server shutdown");
                }
                match keepalive {
                    KeepAlive::ServerPing { interval, deadline } => {
                        if now.duration_since(last_pong) >= deadline {
                            shared.stats.venue(exchange, |v| v.keepalive_cuts += 1);
                            return Ending::Abrupt("no pong");
                        }
                        if next_ping.is_some_and(|t| now >= t) {
                            next_ping = Some(now + interval);
                            if sink.send(Message::Ping(bytes::Bytes::from_static(b"sim"))).await.is_err() {
                                return Ending::Abrupt("write failed");
                            }
                        }
                    }
                    KeepAlive::ClientIdle { timeout } => {
                        if now.duration_since(last_client.max(last_pushed)) >= timeout {
                            shared.stats.venue(exchange, |v| v.keepalive_cuts += 1);
                            return Ending::Close(4004, "No data received in 30s.".into(), "idle client");
                        }
                    }
                    KeepAlive::ClientPing { timeout } => {
                        if now.duration_since(last_client) >= timeout {
                            shared.stats.venue(exchange, |v| v.keepalive_cuts += 1);
                            return Ending::Close(1000, "no ping within the timeout".into(), "no client ping");
                        }
                    }
                    KeepAlive::Protocol => {}
                }
                for frame in proto.flush(now, cx) {
                    for msg in faults.apply(frame, now, exchange, &shared) {
                        if sink.feed(msg).await.is_err() {
                            return Ending::Abrupt("write failed");
                        }
                    }
                }
                let outs = proto.on_tick(now, cx);
                if outs.iter().any(|o| matches!(o, Out::Close(..))) {
                    shared.stats.venue(exchange, |v| v.keepalive_cuts += 1);
                }
                if let Err(e) = write_outs(sink, outs).await {
                    return e;
                }
            }
        }
    }
}
