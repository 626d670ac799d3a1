//! The supervisor of one planned connection: runs sessions back to back forever, records every
//! interruption as one `Gap` per stream (start = last data, end = subscribed again), reconnects with
//! jittered exponential backoff, and rotates make-before-break before the venue's 24 h cut: the new
//! session must be subscribed and delivering before the old one is closed; the overlap is de-duplicated
//! by message id.

pub mod attribute;
pub mod backoff;
pub mod books;
pub mod fetch;
mod frames;
mod handover;
pub mod resync;
pub mod session;
pub mod socket;
mod streams;
pub mod trades;
pub mod watch;

use self::backoff::{RecentIds, backoff, jitter};
use self::session::{SessionCtx, SessionEnd, SessionMsg, run_session};
use crate::internal_events::InternalEvent;
use crate::internal_events::exchanges::{Connected, Disconnected, EventsDropped};
use crate::internal_events::observe::StreamMeter;
use crate::plan::Stream;
use crate::signals::BookTop as SignalsTop;
use marketprism_model::{DataType, Event, Exchange, Gap, GapCause, Payload, now_ms};
use marketprism_telemetry::Health;
use marketprism_telemetry::ReadinessGuard;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

/// Messages ids remembered during a rotation overlap.
const OVERLAP_IDS: usize = 200_000;
/// How long de-duplication stays on after the old session closed (its last frames may still be queued).
const OVERLAP_TAIL: Duration = Duration::from_secs(10);
/// How long a live candidate waits for the old session's tick-by-tick book rows to reach its own
/// before it takes over anyway (the stretch neither covered becomes a `handover` gap). Checked as
/// messages arrive: with none arriving, nothing is being lost by waiting.
const HANDOVER_WAIT: Duration = Duration::from_secs(5);

/// One gap event per stream for an interruption from `start_ms` to `end_ms`.
pub(crate) fn gap_events(
    exchange: Exchange,
    streams: &[Stream],
    start_ms: i64,
    end_ms: i64,
    cause: GapCause,
    detail: &str,
) -> Vec<Event> {
    streams
        .iter()
        .map(|s| Event {
            exchange,
            market_type: s.market_type,
            symbol: s.symbol.clone(),
            ts_ms: start_ms,
            recv_ts_ms: end_ms,
            payload: Payload::Gap(Gap {
                data_type: s.data_type,
                start_ms,
                end_ms: end_ms.max(start_ms),
                cause,
                detail: detail.to_owned(),
            }),
        })
        .collect()
}

/// Send `events` in order; count those the pipeline is no longer there to take.
async fn send_all(
    tx: &mpsc::Sender<Event>,
    exchange: Exchange,
    events: impl IntoIterator<Item = Event>,
) {
    for e in events {
        if tx.send(e).await.is_err() {
            EventsDropped { exchange, count: 1 }.emit();
        }
    }
}

struct Slot {
    rx: mpsc::Receiver<SessionMsg>,
    handle: JoinHandle<SessionEnd>,
    cancel: CancellationToken,
    live_since: Option<Instant>,
}

fn start(ctx: &Arc<SessionCtx>, shutdown: &CancellationToken) -> Slot {
    let (tx, rx) = mpsc::channel(1024);
    let cancel = shutdown.child_token();
    let handle = tokio::spawn(run_session(Arc::clone(ctx), tx, cancel.clone()));
    Slot {
        rx,
        handle,
        cancel,
        live_since: None,
    }
}

/// Stop a session and hand back the events it had queued (they may predate the other session's start,
/// so they are forwarded, not dropped).
async fn retire(slot: Slot) -> Vec<Event> {
    let Slot {
        mut rx,
        handle,
        cancel,
        ..
    } = slot;
    cancel.cancel();
    let mut queued = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(SessionMsg::Event(e)) => queued.push(e),
                Some(SessionMsg::Live | SessionMsg::Stream { .. } | SessionMsg::Refused(_) | SessionMsg::BookTop(_)) => {}
                None => break,
            },
            _ = sleep_until(deadline) => break,
        }
    }
    drop(rx);
    let _ = tokio::time::timeout(Duration::from_secs(2), handle).await;
    queued
}

async fn recv_opt(slot: &mut Option<Slot>) -> Option<SessionMsg> {
    match slot {
        Some(s) => s.rx.recv().await,
        None => std::future::pending().await,
    }
}

struct Outage {
    start_ms: i64,
    cause: GapCause,
    detail: String,
}

impl Outage {
    /// Its gap rows, ending at `end_ms` (the reconnect, or the stop of a run that ended first): one
    /// per stream of the connection, except those the venue refused (they never ran).
    fn gaps(
        self,
        exchange: Exchange,
        streams: &[Stream],
        refused: &std::collections::HashSet<watch::StreamKey>,
        end_ms: i64,
    ) -> Vec<Event> {
        let streams: Vec<Stream> = streams
            .iter()
            .filter(|s| !refused.contains(&(s.data_type, s.symbol.clone())))
            .cloned()
            .collect();
        gap_events(
            exchange,
            &streams,
            self.start_ms,
            end_ms,
            self.cause,
            &self.detail,
        )
    }
}

pub async fn run_connection(
    ctx: Arc<SessionCtx>,
    tx: mpsc::Sender<Event>,
    health: Health,
    shutdown: CancellationToken,
) {
    let exchange = ctx.plan.venue.exchange();
    let ready = health.register(&format!("exchange:{}", ctx.plan.name));
    let mut attempt: u32 = 0;
    let mut outage: Option<Outage> = None;
    let mut recent = RecentIds::new(OVERLAP_IDS);
    let mut dedupe_until: Option<Instant> = None;
    let mut current = start(&ctx, &shutdown);
    let mut next: Option<Slot> = None;
    let mut books = handover::BookHandover::new(
        ctx.plan
            .book
            .iter()
            .flat_map(|b| b.symbols.iter().filter(|s| b.config.is_every_update(s)))
            .cloned(),
    );
    // Since when a live candidate waits for the old session's book rows to reach its own.
    let mut swap_since: Option<Instant> = None;
    // Per-stream readiness (`stream:<exchange>/<data type>/<symbol>`), registered on its first problem.
    let mut stream_health: HashMap<watch::StreamKey, ReadinessGuard> = HashMap::new();
    // Streams the venue refused: a reconnect gap on them would only repeat that they never ran.
    let mut refused: std::collections::HashSet<watch::StreamKey> = std::collections::HashSet::new();
    let mut set_stream = |key: watch::StreamKey, not_ready: Option<String>| match not_ready {
        Some(reason) => stream_health
            .entry(key.clone())
            .or_insert_with(|| health.register(&format!("stream:{exchange}/{}/{}", key.0, key.1)))
            .not_ready(&reason),
        None => {
            if let Some(g) = stream_health.get(&key) {
                g.ready();
            }
        }
    };
    let signals = ctx.signals.clone();
    let meter = StreamMeter::new(exchange, &ctx.plan.streams);
    // A kept trade or gap also feeds the signals stage; its rows follow it. Every event of the
    // connection's streams leaves here, once: its latency and its stream's last-event time are recorded.
    let forward = |e: Event, recent: &mut RecentIds, dedupe: bool| {
        let tx = tx.clone();
        let keep = !dedupe || e.data_type() == DataType::Gaps || recent.insert(&e.msg_id());
        if keep {
            meter.observe(&e, true);
        }
        let rows = match (&signals, keep) {
            (Some(hub), true) => hub.on_event(&e),
            _ => Vec::new(),
        };
        async move {
            if keep {
                send_all(&tx, exchange, std::iter::once(e).chain(rows)).await;
            }
        }
    };
    let on_top = |top: SignalsTop| {
        let tx = tx.clone();
        let rows = signals
            .as_ref()
            .map(|hub| hub.on_book(&top))
            .unwrap_or_default();
        async move { send_all(&tx, exchange, rows).await }
    };
    // Armed at the current session's rotation time, re-armed only when that changes (not per event).
    let rotation = sleep_until(Instant::now());
    let stopping = shutdown.cancelled();
    tokio::pin!(rotation, stopping);
    loop {
        // A live candidate takes over once no tick-by-tick book update would be lost (or after
        // HANDOVER_WAIT, with gaps): the old session's last rows go first, then the candidate's.
        if let Some(since) = swap_since
            && (books.ready() || since.elapsed() >= HANDOVER_WAIT)
            && let Some(n) = next.take()
        {
            swap_since = None;
            let old = std::mem::replace(&mut current, n);
            for e in retire(old)
                .await
                .into_iter()
                .flat_map(|e| books.admitted(e))
            {
                forward(e, &mut recent, true).await;
            }
            for e in books.release() {
                forward(e, &mut recent, true).await;
            }
            dedupe_until = Some(Instant::now() + OVERLAP_TAIL);
            tracing::info!(exchange = %exchange, name = ctx.plan.name, "connection rotated make-before-break");
        }
        let rotate_at = current.live_since.map(|t| t + ctx.plan.rotate_after);
        if let Some(at) = rotate_at
            && rotation.deadline() != at
        {
            rotation.as_mut().reset(at);
        }
        // Ids are remembered from shortly before a rotation until shortly after it.
        let now = Instant::now();
        let dedupe = next.is_some()
            || dedupe_until.is_some_and(|t| now < t)
            || rotate_at.is_some_and(|t| now + OVERLAP_TAIL >= t);
        if !dedupe && !recent.is_empty() {
            recent.clear();
        }
        tokio::select! {
            _ = &mut stopping => {
                // The current session's rows first; a candidate's book rows only past them.
                for e in retire(current).await.into_iter().flat_map(|e| books.admitted(e)) {
                    forward(e, &mut recent, dedupe).await;
                }
                if let Some(n) = next.take() {
                    for e in retire(n).await {
                        if e.data_type() == DataType::Orderbooks { books.hold(e) } else { forward(e, &mut recent, true).await }
                    }
                    for e in books.release() { forward(e, &mut recent, true).await; }
                }
                // Still down when the run stops: the outage is recorded up to now, not dropped.
                for g in outage.take().map(|o| o.gaps(exchange, &ctx.plan.streams, &refused, now_ms())).unwrap_or_default() {
                    forward(g, &mut recent, false).await;
                }
                return;
            }
            msg = current.rx.recv() => match msg {
                Some(SessionMsg::Live) => {
                    current.live_since = Some(Instant::now());
                    attempt = 0;
                    ready.ready();
                    Connected { exchange, url: &ctx.plan.url, streams: ctx.plan.streams.len() }.emit();
                    for g in outage.take().map(|o| o.gaps(exchange, &ctx.plan.streams, &refused, now_ms())).unwrap_or_default() {
                        forward(g, &mut recent, false).await;
                    }
                }
                // Books of an old session stop at the swap; the new session's books take over.
                Some(SessionMsg::Event(e)) => {
                    // A stream refused earlier (an error or an ack that came too late) that delivers
                    // again is a stream again: its outages get gaps, its readiness follows it.
                    if !refused.is_empty() && e.data_type() != DataType::Gaps {
                        let key = (e.data_type(), e.symbol.clone());
                        if refused.remove(&key) {
                            set_stream(key, None);
                        }
                    }
                    for e in books.admitted(e) {
                        forward(e, &mut recent, dedupe).await;
                    }
                }
                Some(SessionMsg::BookTop(top)) => on_top(top).await,
                Some(SessionMsg::Stream { key, not_ready }) => set_stream(key, not_ready),
                Some(SessionMsg::Refused(key)) => { refused.insert(key); }
                // The session ended because the run is stopping: not a lost connection (no warning, no
                // not-ready reason, no outage); the stopping branch retires it.
                None if shutdown.is_cancelled() => continue,
                None => {
                    let ended = (&mut current.handle).await.unwrap_or_else(|e| SessionEnd { cause: GapCause::Disconnect, detail: format!("session task: {e}"), last_data_ms: None });
                    if let Some(n) = next.take() {
                        // The old session died during the overlap: the new one simply takes over.
                        current = n;
                        swap_since = None;
                        for e in books.release() {
                            forward(e, &mut recent, true).await;
                        }
                        if current.live_since.is_none() {
                            outage.get_or_insert(Outage { start_ms: ended.last_data_ms.unwrap_or_else(now_ms), cause: ended.cause, detail: ended.detail });
                        }
                        continue;
                    }
                    ready.not_ready(&ended.detail);
                    let wait = if ended.cause == GapCause::ServerShutdown { Duration::ZERO } else { backoff(attempt, jitter()) };
                    Disconnected { exchange, cause: ended.cause, detail: &ended.detail, retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX) }.emit();
                    outage.get_or_insert(Outage { start_ms: ended.last_data_ms.unwrap_or_else(now_ms), cause: ended.cause, detail: ended.detail });
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            // The run stops during the back-off: the outage so far is recorded.
                            for g in outage.take().map(|o| o.gaps(exchange, &ctx.plan.streams, &refused, now_ms())).unwrap_or_default() {
                                forward(g, &mut recent, false).await;
                            }
                            return;
                        }
                        _ = sleep(wait) => {}
                    }
                    current = start(&ctx, &shutdown);
                }
            },
            msg = recv_opt(&mut next) => match msg {
                Some(SessionMsg::Live) => {
                    if let Some(n) = next.as_mut() { n.live_since = Some(Instant::now()); }
                }
                Some(SessionMsg::Stream { key, not_ready }) => set_stream(key, not_ready),
                Some(SessionMsg::Refused(key)) => { refused.insert(key); }
                // The candidate's books are held until the swap: their tops are not signals yet.
                Some(SessionMsg::BookTop(_)) => {}
                Some(SessionMsg::Event(e)) => {
                    let live = next.as_ref().is_some_and(|n| n.live_since.is_some());
                    if e.data_type() == DataType::Orderbooks {
                        books.hold(e);
                    } else {
                        forward(e, &mut recent, true).await;
                    }
                    if live {
                        // Subscribed and flowing: the swap is due (see the top of the loop).
                        swap_since.get_or_insert_with(Instant::now);
                    }
                }
                None => {
                    books.discard_held();
                    swap_since = None;
                    if let Some(n) = next.take() {
                        let ended = n.handle.await.ok();
                        tracing::warn!(exchange = %exchange, ?ended, "rotation candidate failed; retrying in 60 s");
                        current.live_since = Some(Instant::now() - ctx.plan.rotate_after + Duration::from_secs(60));
                    }
                }
            },
            _ = &mut rotation, if next.is_none() && rotate_at.is_some() => {
                next = Some(start(&ctx, &shutdown));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketprism_model::{MarketType, Symbol};

    #[test]
    fn one_gap_per_stream_with_the_interval() {
        let streams = vec![
            Stream {
                data_type: DataType::Trades,
                symbol: Symbol::new("BTC-USDT").unwrap(),
                market_type: MarketType::Spot,
                max_silence: None,
            },
            Stream {
                data_type: DataType::Orderbooks,
                symbol: Symbol::new("BTC-USDT").unwrap(),
                market_type: MarketType::Spot,
                max_silence: None,
            },
        ];
        let gaps = gap_events(
            Exchange::BinanceSpot,
            &streams,
            1_000,
            4_000,
            GapCause::Disconnect,
            "closed by venue: code 1006",
        );
        assert_eq!(gaps.len(), 2);
        let Payload::Gap(g) = &gaps[1].payload else {
            panic!()
        };
        assert_eq!(
            (g.data_type, g.start_ms, g.end_ms, g.cause),
            (DataType::Orderbooks, 1_000, 4_000, GapCause::Disconnect)
        );
        assert_eq!(gaps[0].subject(), "gap.binance_spot.spot.BTC-USDT");
        assert_ne!(gaps[0].msg_id(), gaps[1].msg_id(), "one gap per data type");
    }
}
