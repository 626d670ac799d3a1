//! One WebSocket session, start to end: connect, subscribe and require every ack (or a refusal of
//! that arg), then read frames, keep the connection alive, watch every stream for silence at its own
//! cadence, keep the books in sync. It returns why it ended; the supervisor ([`super::run_connection`])
//! reconnects and records the gap. Faults of one stream are handled in [`super::streams`] and stay in
//! that stream; the session ends only when the socket itself is dead.

use super::books::{BookAction, Books};
use super::fetch::Fetched;
use super::resync::{ResyncBudget, Unsynced};
use super::socket::{connect, subscribe};
use super::trades::{TradeIds, TradeVerdict};
use super::watch::{StreamKey, Verdict, Watch};
use crate::book::BookSnapshot;
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::{BadFrame, DuplicateTradeDropped};
use crate::internal_events::frames::{self, FrameMeter};
use crate::internal_events::streams::FrameUnattributed;
use crate::keepalive::{KeepAlive, KeepAliveAction};
use crate::parse::Control;
use crate::plan::WsPlan;
use crate::rate_limit::RateLimiter;
use futures::{SinkExt, StreamExt};
use marketprism_model::{DataType, Event, GapCause, Payload, Symbol, now_ms};
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
    pub tls: marketprism_config::tls::ClientTls,
    /// The product line's signals engines: books of their symbols report every top-level change.
    pub signals: Option<Arc<crate::signals::SignalsHub>>,
}

#[derive(Debug)]
pub(crate) enum SessionMsg {
    /// Every subscription acked (or refused arg by arg): the session is live.
    Live,
    Event(Event),
    /// A signals symbol's book changed its top levels (see [`crate::signals`]).
    BookTop(crate::signals::BookTop),
    /// The venue refused this stream: reconnect gaps leave it out (its own gap says `refused`).
    Refused(StreamKey),
    /// One stream's readiness: `Some(reason)` when it is not ready, `None` when it is again.
    Stream {
        key: StreamKey,
        not_ready: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionEnd {
    pub cause: GapCause,
    pub detail: String,
    /// Local time of the last data frame (the gap starts there), if any arrived.
    pub last_data_ms: Option<i64>,
}

pub(super) use super::socket::Ws;

pub(super) struct Session<'a> {
    pub ctx: &'a Arc<SessionCtx>,
    pub out: &'a mpsc::Sender<SessionMsg>,
    pub pending_acks: HashSet<String>,
    pub live: bool,
    pub keepalive: KeepAlive,
    pub watch: Watch,
    pub wanted: HashSet<StreamKey>,
    pub refused: HashSet<StreamKey>,
    /// Streams this session reported not ready (so recovery is reported once).
    pub not_ready: HashSet<StreamKey>,
    pub books: Option<Books>,
    pub trades: TradeIds,
    /// Exchange time (ms) of the last event forwarded per stream (books and gaps aside): where the
    /// gap of a frame we could not read starts, since its own time is unknown.
    pub last_event_ms: HashMap<StreamKey, i64>,
    pub fetching: HashSet<Symbol>,
    /// Silent books whose in-flight snapshot is a check, not a resync.
    pub probing: HashSet<Symbol>,
    /// Books whose snapshot on its way predates a sequence reset: discarded on arrival, fetched again.
    pub outdated: HashSet<Symbol>,
    pub fetches: JoinSet<()>,
    pub snap_tx: mpsc::Sender<(Symbol, Fetched)>,
    pub budgets: HashMap<Symbol, ResyncBudget>,
    pub deferred: HashMap<Symbol, (Instant, BookAction)>,
    pub storming: HashSet<Symbol>,
    pub unsynced: HashMap<Symbol, Unsynced>,
    pub withheld: HashSet<Symbol>,
    pub sync_timeout: Duration,
    pub last_data_ms: Option<i64>,
    pub next_rpc_id: u64,
    /// Requests not answered yet, in send order, for venues whose replies name no request (MEXC
    /// contracts): a refusal is the oldest one's (see [`crate::plan::Venue::replies_in_order`]).
    pub unanswered: std::collections::VecDeque<usize>,
    /// `marketprism_exchange_frames_received_total` of this connection.
    pub frames: FrameMeter,
}

pub(super) fn end(cause: GapCause, detail: impl Into<String>, s: &Session<'_>) -> SessionEnd {
    SessionEnd {
        cause,
        detail: detail.into(),
        last_data_ms: s.last_data_ms,
    }
}

pub(crate) async fn run_session(
    ctx: Arc<SessionCtx>,
    out: mpsc::Sender<SessionMsg>,
    cancel: CancellationToken,
) -> SessionEnd {
    let plan = &ctx.plan;
    let connect = tokio::select! {
        r = timeout(plan.subscribe_timeout, connect(plan, &ctx.tls)) => r,
        _ = cancel.cancelled() => return SessionEnd { cause: GapCause::Disconnect, detail: "cancelled".into(), last_data_ms: None },
    };
    let mut ws: Ws = match connect {
        Ok(Ok(ws)) => ws,
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
        watch: Watch::default(),
        wanted: plan
            .streams
            .iter()
            .map(|st| (st.data_type, st.symbol.clone()))
            .collect(),
        refused: HashSet::new(),
        not_ready: HashSet::new(),
        books: plan
            .book
            .clone()
            .map(|b| Books::new(plan.venue.exchange(), b, &plan.streams))
            .map(|b| b.with_signals(ctx.signals.as_deref())),
        trades: TradeIds::new(plan.venue.exchange()),
        last_event_ms: HashMap::new(),
        fetching: HashSet::new(),
        probing: HashSet::new(),
        outdated: HashSet::new(),
        fetches: JoinSet::new(),
        snap_tx,
        budgets: HashMap::new(),
        deferred: HashMap::new(),
        storming: HashSet::new(),
        unsynced: HashMap::new(),
        withheld: HashSet::new(),
        sync_timeout: Duration::from_secs(
            plan.book.as_ref().map_or(30, |b| b.config.sync_timeout_s),
        ),
        last_data_ms: None,
        next_rpc_id: 1_000,
        unanswered: if plan.venue.replies_in_order() {
            (0..plan.requests.len()).collect()
        } else {
            Default::default()
        },
        frames: FrameMeter::new(plan.venue.exchange()),
    };
    if let Err(e) = subscribe(&mut ws, plan).await {
        return end(GapCause::Disconnect, format!("subscribe send: {e}"), &s);
    }
    let subscribe_deadline = Instant::now() + plan.subscribe_timeout;
    // One timer for the session, re-armed only when a deadline moves earlier: a frame that pushes
    // deadlines later leaves it to fire early once, and the checks go by the clock.
    let timer = sleep_until(s.next_timer(subscribe_deadline));
    let cancelled = cancel.cancelled();
    tokio::pin!(timer, cancelled);
    let result = loop {
        let next_timer = s.next_timer(subscribe_deadline);
        if next_timer < timer.deadline() || timer.is_elapsed() {
            timer.as_mut().reset(next_timer);
        }
        tokio::select! {
            _ = &mut cancelled => break end(GapCause::Disconnect, "cancelled", &s),
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
                    // MEXC spot's protobuf data; a malformed frame on every other venue.
                    Some(Ok(Message::Binary(b))) => {
                        s.keepalive.on_inbound(now);
                        if let Some(e) = s.on_binary(&mut ws, &b, now).await {
                            break e;
                        }
                    }
                }
            }
            Some((symbol, fetched)) = snap_rx.recv() => {
                if let Some(e) = s.on_fetched(&mut ws, symbol, fetched).await { break e; }
            }
            _ = &mut timer => {
                if let Some(e) = s.on_timer(&mut ws, subscribe_deadline).await {
                    break e;
                }
            }
        }
    };
    // Holes still inside their reorder window are declared: the session cannot see them filled.
    for gap in s.trades.due_gaps(Instant::now(), true) {
        let _ = out.send(SessionMsg::Event(gap)).await;
    }
    // Best effort: a polite close; the venue may already be gone.
    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
    result
}

impl Session<'_> {
    fn next_timer(&self, subscribe_deadline: Instant) -> Instant {
        let mut t = self.keepalive.next_check();
        if !self.live || !self.unanswered.is_empty() {
            t = t.min(subscribe_deadline);
        }
        let others = [
            self.watch.next_wake(),
            self.trades.next_due(),
            self.deferred.values().map(|(at, _)| *at).min(),
            self.unsynced
                .values()
                .map(|u| u.next_deadline(self.sync_timeout))
                .min(),
            self.books
                .as_ref()
                .and_then(Books::next_flush_ms)
                .map(|at_ms| {
                    Instant::now()
                        + Duration::from_millis(u64::try_from(at_ms - now_ms()).unwrap_or(0))
                }),
        ];
        for o in others.into_iter().flatten() {
            t = t.min(o);
        }
        t
    }

    async fn on_timer(&mut self, ws: &mut Ws, subscribe_deadline: Instant) -> Option<SessionEnd> {
        let now = Instant::now();
        if !self.live && now >= subscribe_deadline {
            let mut missing: Vec<_> = self.pending_acks.iter().cloned().collect();
            missing.sort();
            // Venues whose every request names its own streams (Gate): an unanswered request ends
            // only those streams (a `refused` gap each), the rest go live. Reconnecting instead would
            // cut the streams that do flow, again and again, for one request the venue ignores.
            let plan = &self.ctx.plan;
            let attributed: Option<Vec<_>> = missing
                .iter()
                .map(|ack| super::attribute::refused_request(plan, Some(ack)))
                .collect();
            if let Some(refusals) = attributed.filter(|r| !r.is_empty()) {
                let detail = format!(
                    "no answer to the subscribe request within {:?}",
                    plan.subscribe_timeout
                );
                for r in refusals {
                    self.pending_acks.remove(&r.ack);
                    for st in r.streams {
                        if let Some(e) = self.refuse((st.data_type, st.symbol), &detail).await {
                            return Some(e);
                        }
                    }
                }
                return self.maybe_live(ws, now).await;
            }
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
        if self.live
            && now >= subscribe_deadline
            && !self.unanswered.is_empty()
            && let Some(e) = self.refuse_unanswered().await
        {
            return Some(e);
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
        match self.watch.poll(now) {
            Verdict::Fine => {}
            // Nothing at all arrives although the socket answers: it is dead for data.
            Verdict::Dead { detail } => return Some(end(GapCause::Stale, detail, self)),
            Verdict::Silent(streams) => {
                for (key, since_ms, max) in streams {
                    if let Some(e) = self.on_silent(ws, key, since_ms, max).await {
                        return Some(e);
                    }
                }
            }
        }
        let gaps = self.trades.due_gaps(now, false);
        if let Some(e) = self.send_all(gaps).await {
            return Some(e);
        }
        if let Some(e) = self.run_deferred(ws, now).await {
            return Some(e);
        }
        let mut quiet_books = Vec::new();
        if let Some(books) = self.books.as_mut() {
            books.flush(now_ms(), &mut quiet_books);
        }
        if let Some(e) = self.send_all(quiet_books).await {
            return Some(e);
        }
        self.check_sync_deadlines(ws, now).await
    }

    async fn on_text(&mut self, ws: &mut Ws, text: &str, now: Instant) -> Option<SessionEnd> {
        let exchange = self.ctx.plan.venue.exchange();
        let recv = now_ms();
        let parsed = match self.ctx.plan.parse(text, recv) {
            Ok(p) => p,
            Err(error) => {
                self.frames.frame(frames::UNATTRIBUTED);
                BadFrame {
                    exchange,
                    error: &error,
                    frame: text,
                }
                .emit();
                return self.after_bad_frame(text, &error).await;
            }
        };
        self.on_parsed(ws, parsed, text, now, recv).await
    }

    pub(super) fn is_book(&self, symbol: &Symbol) -> bool {
        self.wanted
            .contains(&(DataType::Orderbooks, symbol.clone()))
    }

    pub(super) fn unattributed(&self, reason: &'static str, text: &str) -> Option<SessionEnd> {
        FrameUnattributed {
            exchange: self.ctx.plan.venue.exchange(),
            reason,
            frame: text,
        }
        .emit();
        None
    }

    /// Feed a snapshot to its book (`from_rest`: fetched by us) and act on the outcome.
    pub(super) async fn apply_snapshot(
        &mut self,
        ws: &mut Ws,
        symbol: &Symbol,
        snap: BookSnapshot,
        from_rest: bool,
    ) -> Option<SessionEnd> {
        let mut events = Vec::new();
        let action = self
            .books
            .as_mut()
            .and_then(|b| b.on_snapshot(symbol, snap, from_rest, now_ms(), &mut events));
        self.after_book(ws, symbol, events, action).await
    }

    pub(super) async fn on_control(
        &mut self,
        ws: &mut Ws,
        c: Control,
        now: Instant,
    ) -> Option<SessionEnd> {
        match c {
            Control::Ack { id } => {
                self.answered(&id);
                self.pending_acks.remove(&id);
                return self.maybe_live(ws, now).await;
            }
            Control::Subscribed { id, channels } => {
                self.pending_acks.remove(&id);
                let missing = super::attribute::unconfirmed(&self.ctx.plan, &id, &channels);
                for st in missing {
                    let detail = format!(
                        "subscribe not confirmed by the venue: its {} channel for {} is missing from the result of request {id}",
                        st.data_type, st.symbol
                    );
                    if let Some(e) = self.refuse((st.data_type, st.symbol), &detail).await {
                        return Some(e);
                    }
                }
                return self.maybe_live(ws, now).await;
            }
            Control::Error { id, code, msg } => {
                let plan = &self.ctx.plan;
                let refusal =
                    super::attribute::refused_arg(plan.venue, &msg, &plan.streams, &|s| {
                        super::attribute::instrument_name(plan, s)
                    })
                    .or_else(|| super::attribute::refused_request(plan, id.as_deref()))
                    .or_else(|| self.refused_in_order());
                if let Some(r) = refusal {
                    // One arg refused: that arg's streams end; the rest of the batch goes on.
                    self.pending_acks.remove(&r.ack);
                    let detail = format!("subscribe refused by the venue: {code} {msg}");
                    for st in r.streams {
                        if let Some(e) = self.refuse((st.data_type, st.symbol), &detail).await {
                            return Some(e);
                        }
                    }
                    return self.maybe_live(ws, now).await;
                }
                if !self.live {
                    return Some(end(
                        GapCause::Disconnect,
                        format!("subscribe refused (id {id:?}): {code} {msg}"),
                        self,
                    ));
                }
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

    /// Every subscription answered: live; watch the streams and start the books.
    async fn maybe_live(&mut self, ws: &mut Ws, now: Instant) -> Option<SessionEnd> {
        if self.live || !self.pending_acks.is_empty() {
            return None;
        }
        self.live = true;
        let watched: Vec<_> = self
            .ctx
            .plan
            .streams
            .iter()
            .filter(|st| !self.refused.contains(&(st.data_type, st.symbol.clone())))
            .cloned()
            .collect();
        self.watch.arm(&watched, now, now_ms());
        if self.out.send(SessionMsg::Live).await.is_err() {
            return Some(end(GapCause::Disconnect, "supervisor gone", self));
        }
        let books = self.books.as_ref()?;
        let in_stream = books.snapshot_in_stream();
        for symbol in books.symbols() {
            if self
                .refused
                .contains(&(DataType::Orderbooks, symbol.clone()))
            {
                continue;
            }
            self.unsynced.entry(symbol.clone()).or_insert(Unsynced {
                since: now,
                since_ms: now_ms(),
                overdue: 0,
                last_failure: None,
            });
            if !in_stream
                && let Some(e) = self.act(ws, Some(BookAction::FetchSnapshot(symbol))).await
            {
                return Some(e);
            }
        }
        None
    }

    pub(super) async fn seen(
        &mut self,
        dt: DataType,
        symbol: &Symbol,
        now: Instant,
    ) -> Option<SessionEnd> {
        self.last_data_ms = Some(now_ms());
        let key = (dt, symbol.clone());
        if self.watch.seen(&key, now, now_ms()) {
            // Back after a silence.
            return self.status(key, None).await;
        }
        None
    }

    /// Forward events for the streams this connection was asked for; count the others.
    pub(super) async fn emit_all(&mut self, events: Vec<Event>) -> Option<SessionEnd> {
        let now = Instant::now();
        for e in events {
            let dt = e.data_type();
            let key = (dt, e.symbol.clone());
            if dt != DataType::Gaps && !self.wanted.contains(&key) {
                // OKX liquidations come for every instrument of the type: expected, so only counted.
                FrameUnattributed {
                    exchange: e.exchange,
                    reason: "not_subscribed",
                    frame: e.symbol.as_str(),
                }
                .emit();
                continue;
            }
            if dt != DataType::Orderbooks && dt != DataType::Gaps {
                if let Some(end) = self.seen(dt, &e.symbol, now).await {
                    return Some(end);
                }
                let last = self.last_event_ms.entry(key).or_insert(e.ts_ms);
                *last = (*last).max(e.ts_ms);
            }
            match self.trades.check(&e, now) {
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
            }
            if self.out.send(SessionMsg::Event(e)).await.is_err() {
                return Some(end(GapCause::Disconnect, "supervisor gone", self));
            }
        }
        None
    }

    /// Send events as they are (gaps built here).
    pub(super) async fn send_all(&mut self, events: Vec<Event>) -> Option<SessionEnd> {
        for e in events {
            if self.out.send(SessionMsg::Event(e)).await.is_err() {
                return Some(end(GapCause::Disconnect, "supervisor gone", self));
            }
        }
        None
    }

    /// Report a stream's readiness to the supervisor (recovery only if it was reported not ready).
    pub(super) async fn status(
        &mut self,
        key: StreamKey,
        not_ready: Option<String>,
    ) -> Option<SessionEnd> {
        match &not_ready {
            Some(_) => {
                self.not_ready.insert(key.clone());
            }
            None if !self.not_ready.remove(&key) => return None,
            None => {}
        }
        if self
            .out
            .send(SessionMsg::Stream { key, not_ready })
            .await
            .is_err()
        {
            return Some(end(GapCause::Disconnect, "supervisor gone", self));
        }
        None
    }
}
