//! One WebSocket session, start to end: connect, subscribe and require every ack, then read frames,
//! keep the connection alive, watch every stream for staleness, keep the books in sync. It returns why
//! it ended; the supervisor ([`super::run_connection`]) reconnects and records the gap.

use super::backoff::{backoff, jitter};
use super::books::{BookAction, Books};
use super::trades::{TradeIds, TradeVerdict};
use crate::book::BookSnapshot;
use crate::exchanges::keepalive::{KeepAlive, KeepAliveAction};
use crate::exchanges::parse::{Control, Parsed};
use crate::exchanges::plan::{Stream, WsPlan};
use crate::exchanges::rate_limit::RateLimiter;
use crate::exchanges::{ParseError, ParseErrorReason};
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::{BadFrame, DuplicateTradeDropped, RestFailed};
use crate::model::{DataType, Event, GapCause, Payload, Symbol, now_ms};
use futures::{SinkExt, StreamExt};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// What a session shares with its supervisor and the REST snapshot fetches.
pub struct SessionCtx {
    pub plan: WsPlan,
    pub http: reqwest::Client,
    pub limiter: RateLimiter,
    /// Trust for `wss://` venues (public roots plus `tls.ca_file`).
    pub tls: crate::tls::ClientTls,
}

#[derive(Debug)]
pub enum SessionMsg {
    /// Every subscription acked: the session is live.
    Live,
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEnd {
    pub cause: GapCause,
    pub detail: String,
    /// Local time of the last data frame (the gap starts there), if any arrived.
    pub last_data_ms: Option<i64>,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Session<'a> {
    ctx: &'a Arc<SessionCtx>,
    out: &'a mpsc::Sender<SessionMsg>,
    pending_acks: HashSet<String>,
    live: bool,
    keepalive: KeepAlive,
    /// Last data per watched stream (only streams with a `max_silence`).
    last_seen: HashMap<(DataType, Symbol), (Instant, Duration)>,
    wanted: HashSet<(DataType, Symbol)>,
    books: Option<Books>,
    trades: TradeIds,
    fetching: HashSet<Symbol>,
    fetches: JoinSet<()>,
    snap_tx: mpsc::Sender<(Symbol, BookSnapshot)>,
    last_data_ms: Option<i64>,
    next_rpc_id: u64,
}

fn end(cause: GapCause, detail: impl Into<String>, s: &Session<'_>) -> SessionEnd {
    SessionEnd {
        cause,
        detail: detail.into(),
        last_data_ms: s.last_data_ms,
    }
}

pub async fn run_session(
    ctx: Arc<SessionCtx>,
    out: mpsc::Sender<SessionMsg>,
    cancel: CancellationToken,
) -> SessionEnd {
    let plan = &ctx.plan;
    let connect = tokio::select! {
        r = timeout(plan.subscribe_timeout, tokio_tungstenite::connect_async_tls_with_config(
            plan.url.as_str(),
            None,
            true,
            Some(ctx.tls.ws_connector()),
        )) => r,
        _ = cancel.cancelled() => return SessionEnd { cause: GapCause::Disconnect, detail: "cancelled".into(), last_data_ms: None },
    };
    let mut ws: Ws = match connect {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => {
            return SessionEnd {
                cause: GapCause::Disconnect,
                detail: format!("connect {}: {e}", plan.url),
                last_data_ms: None,
            };
        }
        Err(_) => {
            return SessionEnd {
                cause: GapCause::Disconnect,
                detail: format!("connect {}: timeout", plan.url),
                last_data_ms: None,
            };
        }
    };
    let (snap_tx, mut snap_rx) = mpsc::channel(64);
    let now = Instant::now();
    let mut s = Session {
        ctx: &ctx,
        out: &out,
        pending_acks: plan
            .requests
            .iter()
            .flat_map(|r| r.acks.iter().cloned())
            .collect(),
        live: false,
        keepalive: KeepAlive::new(plan.keepalive, now),
        last_seen: HashMap::new(),
        wanted: plan
            .streams
            .iter()
            .map(|st| (st.data_type, st.symbol.clone()))
            .collect(),
        books: plan
            .book
            .clone()
            .map(|b| Books::new(plan.venue.exchange(), b, &plan.streams)),
        trades: TradeIds::new(plan.venue.exchange()),
        fetching: HashSet::new(),
        fetches: JoinSet::new(),
        snap_tx,
        last_data_ms: None,
        next_rpc_id: 1_000,
    };
    for (i, req) in plan.requests.iter().enumerate() {
        if i > 0 && !plan.request_spacing.is_zero() {
            tokio::time::sleep(plan.request_spacing).await;
        }
        if let Err(e) = ws.send(Message::text(req.frame.clone())).await {
            return end(GapCause::Disconnect, format!("subscribe send: {e}"), &s);
        }
    }
    let subscribe_deadline = Instant::now() + plan.subscribe_timeout;
    let result = loop {
        let next_timer = s.next_timer(subscribe_deadline);
        tokio::select! {
            _ = cancel.cancelled() => break end(GapCause::Disconnect, "cancelled", &s),
            frame = ws.next() => {
                let now = Instant::now();
                match frame {
                    None => break end(GapCause::Disconnect, "stream ended", &s),
                    Some(Err(e)) => break end(GapCause::Disconnect, format!("read: {e}"), &s),
                    Some(Ok(Message::Close(frame))) => {
                        let why = frame.map_or_else(|| "no close frame".to_owned(), |f| format!("code {} {}", u16::from(f.code), f.reason));
                        break end(GapCause::Disconnect, format!("closed by venue: {why}"), &s);
                    }
                    Some(Ok(Message::Text(text))) => {
                        s.keepalive.on_inbound(now);
                        if let Some(e) = s.on_text(&mut ws, text.as_str(), now).await {
                            break e;
                        }
                    }
                    // Pings are answered by tungstenite with a pong carrying the same payload.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => s.keepalive.on_inbound(now),
                    Some(Ok(Message::Binary(b))) => {
                        s.keepalive.on_inbound(now);
                        let err = crate::exchanges::parse::ParseError::new(crate::exchanges::ParseErrorReason::InvalidJson, "binary frame");
                        BadFrame { exchange: plan.venue.exchange(), error: &err, frame: &String::from_utf8_lossy(&b) }.emit();
                    }
                }
            }
            Some((symbol, snap)) = snap_rx.recv() => {
                s.fetching.remove(&symbol);
                let mut events = Vec::new();
                let action = s.books.as_mut().and_then(|b| b.on_snapshot(&symbol, snap, true, now_ms(), &mut events));
                if let Some(e) = s.emit_all(events).await { break e; }
                if let Some(e) = s.act(&mut ws, action).await { break e; }
            }
            _ = sleep_until(next_timer) => {
                if let Some(e) = s.on_timer(&mut ws, subscribe_deadline).await {
                    break e;
                }
            }
        }
    };
    // Best effort: a polite close; the venue may already be gone.
    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
    result
}

impl Session<'_> {
    fn next_timer(&self, subscribe_deadline: Instant) -> Instant {
        let mut t = self.keepalive.next_check();
        if !self.live {
            t = t.min(subscribe_deadline);
        }
        for (seen, max) in self.last_seen.values() {
            t = t.min(*seen + *max);
        }
        t
    }

    async fn on_timer(&mut self, ws: &mut Ws, subscribe_deadline: Instant) -> Option<SessionEnd> {
        let now = Instant::now();
        if !self.live && now >= subscribe_deadline {
            let mut missing: Vec<_> = self.pending_acks.iter().cloned().collect();
            missing.sort();
            return Some(end(
                GapCause::Disconnect,
                format!(
                    "no subscribe ack within {:?}: {}",
                    self.ctx.plan.subscribe_timeout,
                    missing.join(",")
                ),
                self,
            ));
        }
        match self.keepalive.poll(now) {
            KeepAliveAction::Dead => {
                return Some(end(GapCause::Stale, "keep-alive: venue silent", self));
            }
            KeepAliveAction::SendPing => {
                if let Err(e) = ws
                    .send(Message::text(self.ctx.plan.venue.ping_frame()))
                    .await
                {
                    return Some(end(GapCause::Disconnect, format!("ping send: {e}"), self));
                }
            }
            KeepAliveAction::Wait => {}
        }
        let stale = self
            .last_seen
            .iter()
            .find(|(_, (seen, max))| now >= *seen + *max);
        if let Some(((dt, sym), (_, max))) = stale {
            return Some(end(
                GapCause::Stale,
                format!("{dt} {sym} silent for {max:?}"),
                self,
            ));
        }
        None
    }

    async fn on_text(&mut self, ws: &mut Ws, text: &str, now: Instant) -> Option<SessionEnd> {
        let exchange = self.ctx.plan.venue.exchange();
        let recv = now_ms();
        let parsed = match self.ctx.plan.parse(text, recv) {
            Ok(p) => p,
            Err(error) => {
                BadFrame {
                    exchange,
                    error: &error,
                    frame: text,
                }
                .emit();
                return self.after_bad_frame(&error).await;
            }
        };
        match parsed {
            Parsed::Control(c) => return self.on_control(ws, c, now).await,
            Parsed::Event(e) => return self.emit_all(vec![e]).await,
            Parsed::Events(v) => return self.emit_all(v).await,
            Parsed::BookUpdate(symbol, update) => {
                self.seen(DataType::Orderbooks, &symbol, now);
                let mut events = Vec::new();
                let action = self
                    .books
                    .as_mut()
                    .and_then(|b| b.on_update(&symbol, update, recv, &mut events));
                if let Some(e) = self.emit_all(events).await {
                    return Some(e);
                }
                return self.act(ws, action).await;
            }
            Parsed::BookSnapshot(symbol, snap) => {
                self.seen(DataType::Orderbooks, &symbol, now);
                let mut events = Vec::new();
                let action = self
                    .books
                    .as_mut()
                    .and_then(|b| b.on_snapshot(&symbol, snap, false, recv, &mut events));
                if let Some(e) = self.emit_all(events).await {
                    return Some(e);
                }
                return self.act(ws, action).await;
            }
        }
    }

    async fn on_control(&mut self, ws: &mut Ws, c: Control, now: Instant) -> Option<SessionEnd> {
        match c {
            Control::Ack { id } => {
                self.pending_acks.remove(&id);
                if !self.live && self.pending_acks.is_empty() {
                    self.live = true;
                    for st in &self.ctx.plan.streams {
                        if let Some(max) = st.max_silence {
                            self.last_seen
                                .insert((st.data_type, st.symbol.clone()), (now, max));
                        }
                    }
                    if self.out.send(SessionMsg::Live).await.is_err() {
                        return Some(end(GapCause::Disconnect, "supervisor gone", self));
                    }
                    let actions = self
                        .books
                        .as_ref()
                        .map(Books::initial_actions)
                        .unwrap_or_default();
                    for a in actions {
                        if let Some(e) = self.act(ws, Some(a)).await {
                            return Some(e);
                        }
                    }
                }
            }
            Control::Error { id, code, msg } if !self.live => {
                return Some(end(
                    GapCause::Disconnect,
                    format!("subscribe refused (id {id:?}): {code} {msg}"),
                    self,
                ));
            }
            Control::Error { id, code, msg } => {
                tracing::warn!(exchange = %self.ctx.plan.venue.exchange(), ?id, code, msg, "venue refused a request");
            }
            Control::TestRequest => {
                self.next_rpc_id += 1;
                if let Err(e) = ws
                    .send(Message::text(
                        self.ctx.plan.venue.test_reply(self.next_rpc_id),
                    ))
                    .await
                {
                    return Some(end(
                        GapCause::Disconnect,
                        format!("test reply send: {e}"),
                        self,
                    ));
                }
            }
            Control::ServerShutdown { ts_ms } => {
                return Some(end(
                    GapCause::ServerShutdown,
                    format!("serverShutdown at {ts_ms}"),
                    self,
                ));
            }
            Control::Pong | Control::Heartbeat => {}
        }
        None
    }

    /// What a skipped frame carried is unknown: every stream that cannot notice a lost message by
    /// itself (books and contiguous trade ids can) gets a gap at this instant.
    async fn after_bad_frame(&mut self, error: &ParseError) -> Option<SessionEnd> {
        if error.reason == ParseErrorReason::VenueError {
            return None;
        }
        // A value rejected in a frame that named its stream: a `rejected` gap there, nowhere else.
        if let Some(st) = &error.stream {
            let stream = Stream {
                data_type: st.data_type,
                symbol: st.symbol.clone(),
                market_type: st.market_type,
                max_silence: None,
            };
            let detail = format!("value rejected: {error}");
            let gaps = super::gap_events(
                self.ctx.plan.venue.exchange(),
                &[stream],
                st.at_ms,
                now_ms(),
                GapCause::Rejected,
                &detail,
            );
            return self.emit_all(gaps).await;
        }
        let blind: Vec<Stream> = self
            .ctx
            .plan
            .streams
            .iter()
            .filter(|s| match s.data_type {
                DataType::Orderbooks => false,
                DataType::Trades => !self.trades.detects_loss(),
                _ => true,
            })
            .cloned()
            .collect();
        let t = now_ms();
        let detail = format!("unparsable frame skipped: {error}");
        let gaps = super::gap_events(
            self.ctx.plan.venue.exchange(),
            &blind,
            t,
            t,
            GapCause::Integrity,
            &detail,
        );
        self.emit_all(gaps).await
    }

    fn seen(&mut self, dt: DataType, symbol: &Symbol, now: Instant) {
        self.last_data_ms = Some(now_ms());
        if let Some(entry) = self.last_seen.get_mut(&(dt, symbol.clone())) {
            entry.0 = now;
        }
    }

    /// Forward events for the streams this connection was asked for (OKX liquidations come for all).
    async fn emit_all(&mut self, events: Vec<Event>) -> Option<SessionEnd> {
        let now = Instant::now();
        for e in events {
            let dt = e.data_type();
            if dt != DataType::Gaps && !self.wanted.contains(&(dt, e.symbol.clone())) {
                continue;
            }
            if dt != DataType::Orderbooks && dt != DataType::Gaps {
                self.seen(dt, &e.symbol, now);
            }
            match self.trades.check(&e) {
                TradeVerdict::Keep => {}
                TradeVerdict::Duplicate => {
                    if let Payload::Trade(t) = &e.payload {
                        DuplicateTradeDropped {
                            exchange: e.exchange,
                            symbol: e.symbol.as_str(),
                            trade_id: &t.trade_id,
                        }
                        .emit();
                    }
                    continue;
                }
                TradeVerdict::KeepAfterGap(gap) => {
                    if self.out.send(SessionMsg::Event(gap)).await.is_err() {
                        return Some(end(GapCause::Disconnect, "supervisor gone", self));
                    }
                }
            }
            if self.out.send(SessionMsg::Event(e)).await.is_err() {
                return Some(end(GapCause::Disconnect, "supervisor gone", self));
            }
        }
        None
    }

    async fn act(&mut self, ws: &mut Ws, action: Option<BookAction>) -> Option<SessionEnd> {
        match action? {
            BookAction::FetchSnapshot(symbol) => {
                if self.fetching.insert(symbol.clone()) {
                    self.spawn_fetch(symbol);
                }
            }
            BookAction::Resubscribe(symbol) => {
                self.next_rpc_id += 2;
                for frame in self.ctx.plan.resubscribe_book(&symbol, self.next_rpc_id) {
                    if let Err(e) = ws.send(Message::text(frame)).await {
                        return Some(end(
                            GapCause::Disconnect,
                            format!("resubscribe send: {e}"),
                            self,
                        ));
                    }
                }
            }
        }
        None
    }

    /// Fetch a REST snapshot through the venue's limiter; retries with backoff until it succeeds or
    /// the session ends (the JoinSet aborts it).
    fn spawn_fetch(&mut self, symbol: Symbol) {
        let ctx = Arc::clone(self.ctx);
        let tx = self.snap_tx.clone();
        let limit = ctx
            .plan
            .book
            .as_ref()
            .map_or(1000, |b| b.config.rest_snapshot_limit);
        let Some((url, weight)) = ctx
            .plan
            .snapshot_request(&ctx.plan.rest_url, &symbol, limit)
        else {
            return;
        };
        self.fetches.spawn(async move {
            let exchange = ctx.plan.venue.exchange();
            // Spread the resyncs of many symbols that gap together.
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 250)).await;
            let mut attempt = 0;
            loop {
                ctx.limiter.acquire(weight).await;
                let failure = match ctx.http.get(&url).send().await {
                    Ok(resp) if resp.status().is_success() => match resp.text().await {
                        Ok(body) => match ctx.plan.parse_snapshot(&body) {
                            Ok(snap) => {
                                let _ = tx.send((symbol, snap)).await;
                                return;
                            }
                            Err(error) => {
                                BadFrame {
                                    exchange,
                                    error: &error,
                                    frame: &body,
                                }
                                .emit();
                                (None, error.to_string())
                            }
                        },
                        Err(e) => (None, e.to_string()),
                    },
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        ctx.limiter.honour_rejection(status, resp.headers());
                        (Some(status), resp.text().await.unwrap_or_default())
                    }
                    Err(e) => (None, e.to_string()),
                };
                let wait = backoff(attempt, jitter());
                attempt = attempt.saturating_add(1);
                RestFailed {
                    exchange,
                    endpoint: &url,
                    status: failure.0,
                    detail: &failure.1,
                    retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                }
                .emit();
                tokio::time::sleep(wait).await;
            }
        });
    }
}
