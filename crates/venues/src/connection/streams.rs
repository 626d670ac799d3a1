//! Faults of single streams, handled in that stream: a refused subscription, a silent stream, a frame
//! that names one stream, a book that does not sync in time or keeps resyncing. Nothing here ends the
//! session or writes a gap row on another stream (one exception: a broken frame whose stream cannot be
//! read, see [`Session::after_bad_frame`]).

use super::attribute::{attribute, stream_of};
use super::books::{BookAction, Books};
use super::fetch::{Fetched, spawn_fetch};
use super::resync::{Admission, WINDOW};
use super::session::{Session, SessionEnd, SessionMsg, Ws, end};
use super::watch::StreamKey;
use crate::internal_events::InternalEvent;
use crate::internal_events::streams::{
    BookQuietVerified, BookSyncOverdue, BookUnprovable, ResyncStorm, StreamRefused, StreamSilent,
};
use crate::plan::Stream;
use crate::{ParseError, ParseErrorReason};
use futures::SinkExt;
use marketprism_model::{DataType, Event, Gap, GapCause, Payload, Symbol, now_ms};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

impl Session<'_> {
    /// One gap event on one planned stream.
    fn stream_gap(
        &self,
        key: &StreamKey,
        start_ms: i64,
        end_ms: i64,
        cause: GapCause,
        detail: String,
    ) -> Option<Event> {
        let st = self
            .ctx
            .plan
            .streams
            .iter()
            .find(|s| s.data_type == key.0 && s.symbol == key.1)?;
        Some(Event {
            exchange: self.ctx.plan.venue.exchange(),
            market_type: st.market_type,
            symbol: st.symbol.clone(),
            ts_ms: start_ms,
            recv_ts_ms: end_ms,
            payload: Payload::Gap(Gap {
                data_type: key.0,
                start_ms,
                end_ms: end_ms.max(start_ms),
                cause,
                detail,
            }),
        })
    }

    /// A skipped frame: if it names one of this connection's streams that cannot notice a lost
    /// message by itself (books and contiguous trade ids can), that stream gets a `rejected` gap. A
    /// broken frame that names none (its channel unreadable) is counted, and since it may have been
    /// data of any of them, every such stream of the connection gets a `rejected` gap: a possible
    /// loss is recorded rather than a real one passing silently. A well-formed frame of an unknown
    /// kind (`UnknownMessage`) is only counted.
    pub(super) async fn after_bad_frame(
        &mut self,
        text: &str,
        error: &ParseError,
    ) -> Option<SessionEnd> {
        if error.reason == ParseErrorReason::VenueError {
            return None;
        }
        // A value rejected in a frame the parser attributed itself (bad time, unrepresentable
        // decimal): a `rejected` gap on exactly that stream, from the fact's own time.
        if let Some(st) = &error.stream {
            let stream = Stream {
                data_type: st.data_type,
                symbol: st.symbol.clone(),
                market_type: st.market_type,
                max_silence: None,
            };
            let gaps = super::gap_events(
                self.ctx.plan.venue.exchange(),
                &[stream],
                st.at_ms,
                now_ms(),
                GapCause::Rejected,
                &format!("value rejected: {error}"),
            );
            return self.send_all(gaps).await;
        }
        let venue = self.ctx.plan.venue;
        let Some(stream) = attribute(venue, text)
            .and_then(|a| {
                let plan = &self.ctx.plan;
                stream_of(&a, &plan.streams, &|s| {
                    super::attribute::instrument_name(plan, s)
                })
            })
            .filter(|s| !self.refused.contains(&(s.data_type, s.symbol.clone())))
        else {
            self.unattributed("unparsable", text);
            if error.reason == ParseErrorReason::UnknownMessage {
                return None; // well-formed, of a kind we never subscribed to: nobody's data
            }
            // A broken frame may have been data of any stream that cannot notice a loss itself.
            let streams: Vec<Stream> = (self.ctx.plan.streams.iter())
                .filter(|s| !self.detects_own_loss(s.data_type))
                .filter(|s| !self.refused.contains(&(s.data_type, s.symbol.clone())))
                .cloned()
                .collect();
            let detail = format!("unparsable frame of unknown stream skipped: {error}");
            return self.skipped_frame_gaps(&streams, &detail).await;
        };
        if self.detects_own_loss(stream.data_type) {
            return None;
        }
        let detail = format!("unparsable frame skipped: {error}");
        // Owned: the plan's stream would keep `self` borrowed across the send.
        let stream = stream.clone();
        self.skipped_frame_gaps(std::slice::from_ref(&stream), &detail)
            .await
    }

    /// Books (sequence ids) and trades with contiguous ids find the hole a skipped frame leaves.
    fn detects_own_loss(&self, data_type: DataType) -> bool {
        match data_type {
            DataType::Orderbooks => true,
            DataType::Trades => self.trades.detects_loss(),
            _ => false,
        }
    }

    /// A `rejected` gap per stream for a skipped frame: its own time is unknown, so what it held lies
    /// between each stream's last event (exchange time) and now.
    async fn skipped_frame_gaps(&mut self, streams: &[Stream], detail: &str) -> Option<SessionEnd> {
        let t = now_ms();
        let exchange = self.ctx.plan.venue.exchange();
        let gaps = streams
            .iter()
            .flat_map(|s| {
                let key = (s.data_type, s.symbol.clone());
                let start = self.last_event_ms.get(&key).map_or(t, |&last| last.min(t));
                super::gap_events(
                    exchange,
                    std::slice::from_ref(s),
                    start,
                    t,
                    GapCause::Rejected,
                    detail,
                )
            })
            .collect();
        self.send_all(gaps).await
    }

    /// The venue refused a stream: a `refused` gap, a counter and not-ready for it; it is no longer
    /// watched, synced or fetched. The other streams are untouched.
    pub(super) async fn refuse(&mut self, key: StreamKey, detail: &str) -> Option<SessionEnd> {
        if !self.refused.insert(key.clone()) {
            return None;
        }
        self.watch.remove(&key);
        self.wanted.remove(&key);
        if key.0 == DataType::Orderbooks {
            if let Some(b) = self.books.as_mut() {
                b.remove(&key.1);
            }
            self.unsynced.remove(&key.1);
            self.deferred.remove(&key.1);
            self.probing.remove(&key.1);
        }
        StreamRefused {
            exchange: self.ctx.plan.venue.exchange(),
            data_type: key.0,
            symbol: key.1.as_str(),
            detail,
        }
        .emit();
        let t = now_ms();
        let gap = self.stream_gap(&key, t, t, GapCause::Refused, detail.to_owned());
        if self
            .out
            .send(SessionMsg::Refused(key.clone()))
            .await
            .is_err()
        {
            return Some(end(GapCause::Disconnect, "supervisor gone", self));
        }
        // Readiness first: whoever sees the gap row finds the stream's reason already there.
        if let Some(e) = self.status(key, Some(format!("refused: {detail}"))).await {
            return Some(e);
        }
        self.send_all(gap.into_iter().collect()).await
    }

    /// A stream silent past its cadence while others deliver. A REST-snapshot book is checked
    /// against the venue's snapshot first (Binance pushes depth only on change: quiet is normal);
    /// an in-stream book is rebuilt; any other stream gets a `stale` gap and is not ready until data
    /// resumes.
    pub(super) async fn on_silent(
        &mut self,
        ws: &mut Ws,
        key: StreamKey,
        since_ms: i64,
        max: Duration,
    ) -> Option<SessionEnd> {
        let silent_ms = u64::try_from(now_ms() - since_ms).unwrap_or_default();
        StreamSilent {
            exchange: self.ctx.plan.venue.exchange(),
            data_type: key.0,
            symbol: key.1.as_str(),
            silent_ms,
        }
        .emit();
        let detail = format!("{} {} silent for {max:?}", key.0, key.1);
        if key.0 == DataType::Orderbooks
            && let Some(books) = self.books.as_mut()
        {
            if !books.snapshot_in_stream() {
                if self.fetching.contains(&key.1) {
                    return None; // a snapshot is on its way anyway
                }
                self.probing.insert(key.1.clone());
                self.fetching.insert(key.1.clone());
                spawn_fetch(
                    self.ctx,
                    &mut self.fetches,
                    self.snap_tx.clone(),
                    key.1.clone(),
                );
                return None;
            }
            let gap = books.drop_book(&key.1, GapCause::Stale, detail, now_ms());
            let action = Some(books.resync_action(&key.1));
            if let Some(e) = self.send_all(gap.into_iter().collect()).await {
                return Some(e);
            }
            self.mark_unsynced(&key.1);
            return self.act(ws, action).await;
        }
        let gap = self.stream_gap(&key, since_ms, now_ms(), GapCause::Stale, detail.clone());
        if let Some(e) = self.status(key, Some(detail)).await {
            return Some(e);
        }
        self.send_all(gap.into_iter().collect()).await
    }

    /// A REST snapshot fetch finished (or reported a failure).
    pub(super) async fn on_fetched(
        &mut self,
        ws: &mut Ws,
        symbol: Symbol,
        fetched: Fetched,
    ) -> Option<SessionEnd> {
        match fetched {
            Fetched::Snapshot(snap) => {
                self.fetching.remove(&symbol);
                let probe = self.probing.remove(&symbol);
                if self.outdated.remove(&symbol) {
                    return self.act(ws, Some(BookAction::FetchSnapshot(symbol))).await;
                }
                let live_id = self.books.as_ref().and_then(|b| b.live_id(&symbol));
                if probe {
                    if let Some(id) = live_id.filter(|id| snap.last_id <= *id) {
                        // Merely quiet: the venue's book is where ours is.
                        BookQuietVerified {
                            exchange: self.ctx.plan.venue.exchange(),
                            symbol: symbol.as_str(),
                            last_id: id,
                        }
                        .emit();
                        return self
                            .seen(DataType::Orderbooks, &symbol, Instant::now())
                            .await;
                    }
                    if let Some(id) = live_id {
                        // The venue's book moved on while our stream stayed silent: updates were lost.
                        let detail = format!(
                            "orderbooks {symbol} silent while the venue's book moved from id {id} to {}",
                            snap.last_id
                        );
                        let gap = self
                            .books
                            .as_mut()
                            .and_then(|b| b.drop_book(&symbol, GapCause::Stale, detail, now_ms()));
                        if let Some(e) = self.send_all(gap.into_iter().collect()).await {
                            return Some(e);
                        }
                        self.mark_unsynced(&symbol);
                    }
                }
                self.apply_snapshot(ws, &symbol, snap, true).await
            }
            Fetched::Refused(detail) => {
                self.fetching.remove(&symbol);
                self.probing.remove(&symbol);
                self.outdated.remove(&symbol);
                self.refuse((DataType::Orderbooks, symbol), &detail).await
            }
            Fetched::Failed { rejected, detail } => {
                if let Some(u) = self.unsynced.get_mut(&symbol) {
                    u.last_failure = Some((rejected, detail));
                }
                None
            }
        }
    }

    fn mark_unsynced(&mut self, symbol: &Symbol) {
        self.unsynced
            .entry(symbol.clone())
            .or_insert_with(|| super::resync::Unsynced {
                since: Instant::now(),
                since_ms: now_ms(),
                overdue: 0,
                last_failure: None,
            });
    }

    /// After a book saw an update or snapshot: forward its events, track whether it is live,
    /// withheld or waiting, and carry out its action.
    pub(super) async fn after_book(
        &mut self,
        ws: &mut Ws,
        symbol: &Symbol,
        events: Vec<Event>,
        action: Option<BookAction>,
    ) -> Option<SessionEnd> {
        let Some(books) = self.books.as_ref() else {
            return self.send_all(events).await;
        };
        let key = (DataType::Orderbooks, symbol.clone());
        if books.is_live(symbol) {
            self.unsynced.remove(symbol);
            self.storming.remove(symbol);
            self.withheld.remove(symbol);
            if let Some(e) = self.status(key, None).await {
                return Some(e);
            }
        } else if books.is_withheld(symbol) {
            if self.withheld.insert(symbol.clone()) {
                BookUnprovable {
                    exchange: self.ctx.plan.venue.exchange(),
                    symbol: symbol.as_str(),
                }
                .emit();
                let reason = "continuity unprovable: updates carry no prevSeqId and no verifiable checksum; book withheld".to_owned();
                if let Some(e) = self.status(key, Some(reason)).await {
                    return Some(e);
                }
            }
        } else {
            self.mark_unsynced(symbol);
        }
        // After the readiness change: whoever sees these events finds the stream's status current.
        if let Some(e) = self.send_all(events).await {
            return Some(e);
        }
        let tops = self
            .books
            .as_mut()
            .map(Books::take_tops)
            .unwrap_or_default();
        for top in tops {
            if self.out.send(SessionMsg::BookTop(top)).await.is_err() {
                return Some(end(GapCause::Disconnect, "supervisor gone", self));
            }
        }
        self.act(ws, action).await
    }

    /// Carry out a book action within the stream's resync budget (backoff, ceiling per minute).
    pub(super) async fn act(
        &mut self,
        ws: &mut Ws,
        action: Option<BookAction>,
    ) -> Option<SessionEnd> {
        let action = action?;
        let symbol = match &action {
            BookAction::FetchSnapshot(s) | BookAction::Refetch(s) | BookAction::Resubscribe(s) => {
                s.clone()
            }
        };
        let fetch = !matches!(action, BookAction::Resubscribe(_));
        if fetch && self.fetching.contains(&symbol) {
            if matches!(action, BookAction::Refetch(_)) {
                // The snapshot on its way predates a sequence reset: fetch again when it lands.
                self.outdated.insert(symbol);
            }
            return None;
        }
        if self.deferred.contains_key(&symbol) {
            return None;
        }
        let now = Instant::now();
        let admission = self
            .budgets
            .entry(symbol.clone())
            .or_default()
            .admit(now, super::backoff::jitter());
        match admission {
            Admission::Now => self.act_now(ws, action).await,
            Admission::After(d) => {
                self.deferred.insert(symbol, (now + d, action));
                None
            }
            Admission::Storm { at, count } => {
                self.deferred.insert(symbol.clone(), (at, action));
                if !self.storming.insert(symbol.clone()) {
                    return None;
                }
                let next_in_ms = u64::try_from(at.saturating_duration_since(now).as_millis())
                    .unwrap_or(u64::MAX);
                ResyncStorm {
                    exchange: self.ctx.plan.venue.exchange(),
                    symbol: symbol.as_str(),
                    resyncs: count,
                    next_in_ms,
                }
                .emit();
                let reason = format!(
                    "resync storm: {count} resyncs in {WINDOW:?}; next attempt in {next_in_ms} ms"
                );
                self.status((DataType::Orderbooks, symbol), Some(reason))
                    .await
            }
        }
    }

    async fn act_now(&mut self, ws: &mut Ws, action: BookAction) -> Option<SessionEnd> {
        match action {
            BookAction::FetchSnapshot(symbol) | BookAction::Refetch(symbol) => {
                if self.fetching.insert(symbol.clone()) {
                    spawn_fetch(self.ctx, &mut self.fetches, self.snap_tx.clone(), symbol);
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

    /// Deferred resyncs whose time has come.
    pub(super) async fn run_deferred(&mut self, ws: &mut Ws, now: Instant) -> Option<SessionEnd> {
        let due: Vec<Symbol> = self
            .deferred
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(s, _)| s.clone())
            .collect();
        for symbol in due {
            if let Some((_, action)) = self.deferred.remove(&symbol)
                && let Some(e) = self.act_now(ws, action).await
            {
                return Some(e);
            }
        }
        None
    }

    /// Books not synced within `orderbook.sync_timeout_s`: a gap, a metric and not-ready, once per
    /// wait (a withheld book was reported already). Each timeout also starts the sync over from a
    /// fresh snapshot: whatever kept it from bridging (a snapshot from a cache that lags, or from
    /// before a sequence reset, whose ids cover every new update) is not waited on for good.
    pub(super) async fn check_sync_deadlines(
        &mut self,
        ws: &mut Ws,
        now: Instant,
    ) -> Option<SessionEnd> {
        let timeout = self.sync_timeout;
        let overdue: Vec<Symbol> = self
            .unsynced
            .iter()
            .filter(|(_, u)| now >= u.next_deadline(timeout))
            .map(|(s, _)| s.clone())
            .collect();
        for symbol in overdue {
            let withheld = self.withheld.contains(&symbol);
            let Some(u) = self.unsynced.get_mut(&symbol) else {
                continue;
            };
            u.overdue = u.overdue.saturating_add(1);
            if withheld {
                continue; // reported when withheld; it resyncs once the feed carries sequence ids
            }
            let restart = self.books.as_mut().and_then(|b| b.restart_sync(&symbol));
            let Some(u) = self.unsynced.get(&symbol) else {
                continue;
            };
            if u.overdue > 1 {
                if let Some(e) = self.act(ws, restart).await {
                    return Some(e);
                }
                continue;
            }
            let (cause, why) = match &u.last_failure {
                Some((true, d)) => (GapCause::Rejected, d.clone()),
                Some((false, d)) => (GapCause::Stale, d.clone()),
                None => (
                    GapCause::Stale,
                    "no snapshot and update sequence that bridge".to_owned(),
                ),
            };
            let since_ms = u.since_ms;
            let detail = format!("order book not synced within {timeout:?}: {why}");
            BookSyncOverdue {
                exchange: self.ctx.plan.venue.exchange(),
                symbol: symbol.as_str(),
                waited_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                reason: &why,
            }
            .emit();
            let key = (DataType::Orderbooks, symbol);
            let gap = self.stream_gap(&key, since_ms, now_ms(), cause, detail.clone());
            if let Some(e) = self.status(key, Some(detail)).await {
                return Some(e);
            }
            if let Some(e) = self.send_all(gap.into_iter().collect()).await {
                return Some(e);
            }
            if let Some(e) = self.act(ws, restart).await {
                return Some(e);
            }
        }
        None
    }
}
