//! The local books of one connection: feeds updates and snapshots to each symbol's [`BookSync`],
//! turns outcomes into events (top-N snapshots, gaps) and into actions for the session (fetch a REST
//! snapshot, resubscribe for an in-stream one). Pure: no I/O here.
//!
//! Books of signals symbols also report every change of their top levels ([`BookTop`], drained
//! with [`Books::take_tops`]); other books do no signals work at all.

use crate::book::{BookSnapshot, BookSync, BookUpdate, SnapshotCadence, SyncOutcome};
use crate::internal_events::{InternalEvent, exchanges::BookResync};
use crate::plan::{BookPlan, Stream};
use crate::signals::{BookTop, SignalsHub, map};
use marketprism_model::{
    DataType, Decimal, Event, Exchange, Gap, GapCause, MarketType, Payload, Symbol,
};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookAction {
    FetchSnapshot(Symbol),
    /// Fetch a snapshot, and discard one already on its way (it predates a sequence reset).
    Refetch(Symbol),
    Resubscribe(Symbol),
}

struct BookState {
    sync: BookSync,
    cadence: SnapshotCadence,
    /// Tick by tick: the top is published after every update applied, not at the cadence.
    every_update: bool,
    market_type: MarketType,
    /// Continuity cannot be proven (no `prevSeqId`, no verified checksum): nothing is published until
    /// an update with a sequence id allows a resync.
    withheld: bool,
    /// Receive time (wall ms) of the first update applied since the last published snapshot: a book
    /// that changes and then goes quiet is published one interval later ([`Books::flush`]), so its
    /// last state is never held back for as long as the book stays quiet.
    unpublished_recv_ms: Option<i64>,
    /// Signals symbols: the levels per side the engine reads, and the last top reported (`None`
    /// after a resync, so the first top of the new book is reported whatever it is).
    signals: Option<TopWatch>,
}

/// Levels of one side, best first: (price, size).
type Side = Vec<(Decimal, Decimal)>;

/// The top levels of a signals book last reported, exact.
struct TopWatch {
    levels: usize,
    /// (bids, asks).
    last: Option<(Side, Side)>,
}

pub struct Books {
    exchange: Exchange,
    plan: BookPlan,
    books: HashMap<Symbol, BookState>,
    /// Top-level changes of signals books since the last [`Books::take_tops`].
    tops: Vec<BookTop>,
}

impl Books {
    pub fn new(exchange: Exchange, plan: BookPlan, streams: &[Stream]) -> Books {
        let books = plan
            .symbols
            .iter()
            .map(|s| {
                let market_type = streams
                    .iter()
                    .find(|st| st.data_type == DataType::Orderbooks && &st.symbol == s)
                    .map_or(MarketType::Perpetual, |st| st.market_type);
                let every_update = plan.config.is_every_update(s);
                let mut sync = BookSync::new(
                    plan.rule,
                    plan.config.depth,
                    plan.config.checksum_verified(),
                );
                if every_update {
                    sync.keep_replay_tops(plan.config.snapshot_levels);
                }
                let state = BookState {
                    sync,
                    cadence: SnapshotCadence::new(plan.config.snapshot_interval_ms),
                    every_update,
                    market_type,
                    withheld: false,
                    unpublished_recv_ms: None,
                    signals: None,
                };
                (s.clone(), state)
            })
            .collect();
        Books {
            exchange,
            plan,
            books,
            tops: Vec::new(),
        }
    }

    /// Report the top-level changes of the books of `hub`'s symbols.
    pub fn with_signals(mut self, hub: Option<&SignalsHub>) -> Books {
        if let Some(hub) = hub {
            for (symbol, state) in &mut self.books {
                if hub.is_enabled(symbol) {
                    state.signals = Some(TopWatch {
                        levels: hub.levels(),
                        last: None,
                    });
                }
            }
        }
        self
    }

    /// The top-level changes since the last call, in the order they happened.
    pub fn take_tops(&mut self) -> Vec<BookTop> {
        std::mem::take(&mut self.tops)
    }

    /// After subscribing: REST-snapshot venues fetch one per symbol; in-stream venues wait for the push.
    pub fn initial_actions(&self) -> Vec<BookAction> {
        if self.plan.rule.snapshot_in_stream() {
            return Vec::new();
        }
        self.plan
            .symbols
            .iter()
            .cloned()
            .map(BookAction::FetchSnapshot)
            .collect()
    }

    pub fn is_live(&self, symbol: &Symbol) -> bool {
        self.books.get(symbol).is_some_and(|b| b.sync.is_live())
    }

    /// The snapshot arrives in the stream (resubscribe for a new one) rather than over REST.
    pub fn snapshot_in_stream(&self) -> bool {
        self.plan.rule.snapshot_in_stream()
    }

    /// The symbols of the books kept here.
    pub fn symbols(&self) -> Vec<Symbol> {
        self.plan.symbols.clone()
    }

    /// True when the book is withheld because its continuity cannot be proven.
    pub fn is_withheld(&self, symbol: &Symbol) -> bool {
        self.books.get(symbol).is_some_and(|b| b.withheld)
    }

    /// The last update id of a live book.
    pub fn live_id(&self, symbol: &Symbol) -> Option<i64> {
        let b = self.books.get(symbol)?;
        b.sync.is_live().then(|| b.sync.book().last_id)
    }

    /// Stop keeping this book (the venue refused it): its frames are ignored from now on.
    pub fn remove(&mut self, symbol: &Symbol) {
        self.books.remove(symbol);
    }

    /// How this venue rebuilds a book: a REST snapshot or a resubscribe for an in-stream one.
    pub fn resync_action(&self, symbol: &Symbol) -> BookAction {
        if self.plan.rule.snapshot_in_stream() {
            BookAction::Resubscribe(symbol.clone())
        } else {
            BookAction::FetchSnapshot(symbol.clone())
        }
    }

    /// Publish live books whose last change has waited one snapshot interval (wall clock) without
    /// being published because no later update made the cadence due: the venue's book went quiet.
    pub fn flush(&mut self, now_ms: i64, out: &mut Vec<Event>) {
        let levels = self.plan.config.snapshot_levels;
        let mut flushed = Vec::new();
        for (symbol, state) in &mut self.books {
            let Some(since) = state.unpublished_recv_ms else {
                continue;
            };
            if !state.sync.is_live() {
                state.unpublished_recv_ms = None;
                continue;
            }
            if now_ms - since < state.cadence.interval_ms() {
                continue;
            }
            state.unpublished_recv_ms = None;
            state.cadence.mark(state.sync.book().ts_ms);
            flushed.push(top_event(self.exchange, symbol, state, levels, now_ms));
        }
        // The map's order is arbitrary; the events' order must not be.
        flushed.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        out.extend(flushed);
    }

    /// When (wall ms) the next [`Books::flush`] has something to publish.
    pub fn next_flush_ms(&self) -> Option<i64> {
        self.books
            .values()
            .filter_map(|s| Some(s.unpublished_recv_ms? + s.cadence.interval_ms()))
            .min()
    }

    /// Start the sync of a book that is not live over: forget its buffer and any snapshot it holds,
    /// and say how to get a fresh one (`None` for a live or unknown book).
    pub fn restart_sync(&mut self, symbol: &Symbol) -> Option<BookAction> {
        let state = self.books.get_mut(symbol)?;
        if state.sync.is_live() {
            return None;
        }
        state.sync.reset();
        Some(match self.resync_action(symbol) {
            // A fetch already on its way may bring the very snapshot that did not bridge.
            BookAction::FetchSnapshot(s) => BookAction::Refetch(s),
            other => other,
        })
    }

    /// Drop a book that can no longer be trusted (its stream went silent while the venue's book
    /// moved on): a gap from its last update to `detected_ms`; the caller resyncs it.
    pub fn drop_book(
        &mut self,
        symbol: &Symbol,
        cause: GapCause,
        detail: String,
        detected_ms: i64,
    ) -> Option<Event> {
        let state = self.books.get_mut(symbol)?;
        let last = state.sync.book().ts_ms;
        let start = if last > 0 { last } else { detected_ms };
        state.sync.reset();
        forget_top(state);
        BookResync {
            exchange: self.exchange,
            symbol: symbol.as_str(),
            cause,
            detail: &detail,
        }
        .emit();
        Some(Event {
            exchange: self.exchange,
            market_type: state.market_type,
            symbol: symbol.clone(),
            ts_ms: start,
            recv_ts_ms: detected_ms,
            payload: Payload::Gap(Gap {
                data_type: DataType::Orderbooks,
                start_ms: start,
                end_ms: detected_ms.max(start),
                cause,
                detail,
            }),
        })
    }

    pub fn on_update(
        &mut self,
        symbol: &Symbol,
        update: BookUpdate,
        recv_ts_ms: i64,
        out: &mut Vec<Event>,
    ) -> Option<BookAction> {
        let state = self.books.get_mut(symbol)?;
        // A withheld book resyncs once the feed carries sequence ids again.
        let resume = state.withheld && update.prev_id.is_some();
        let outcome = state.sync.on_update(update);
        if resume {
            state.withheld = false;
            return Some(self.resync_action(symbol));
        }
        self.handle(symbol, outcome, recv_ts_ms, out)
    }

    /// `from_rest`: fetched by us; otherwise pushed in the stream (ignored when the rule uses REST).
    pub fn on_snapshot(
        &mut self,
        symbol: &Symbol,
        snap: BookSnapshot,
        from_rest: bool,
        recv_ts_ms: i64,
        out: &mut Vec<Event>,
    ) -> Option<BookAction> {
        let state = self.books.get_mut(symbol)?;
        if from_rest == state.sync.rule().snapshot_in_stream() {
            return None;
        }
        let outcome = state.sync.on_snapshot(snap);
        self.handle(symbol, outcome, recv_ts_ms, out)
    }

    fn handle(
        &mut self,
        symbol: &Symbol,
        outcome: SyncOutcome,
        recv_ts_ms: i64,
        out: &mut Vec<Event>,
    ) -> Option<BookAction> {
        let state = self.books.get_mut(symbol)?;
        let in_stream = state.sync.rule().snapshot_in_stream();
        // Tick by tick: the book after each update replayed into a snapshot, all but the last (the
        // book as it is now, published below); before a resync gap, all of them.
        let mut replayed = state.sync.take_replay_tops();
        if matches!(outcome, SyncOutcome::Synced { .. }) {
            replayed.pop();
        }
        for r in replayed {
            out.push(Event {
                exchange: self.exchange,
                market_type: state.market_type,
                symbol: symbol.clone(),
                ts_ms: r.ts_ms,
                // The buffered updates' own receive times are not kept: the frame that synced them.
                recv_ts_ms,
                payload: Payload::Orderbook(r.top),
            });
        }
        match outcome {
            SyncOutcome::Buffered | SyncOutcome::Ignored => None,
            SyncOutcome::Applied | SyncOutcome::Synced { .. } => {
                if matches!(outcome, SyncOutcome::Synced { .. }) {
                    state.cadence.reset();
                    state.withheld = false;
                    forget_top(state);
                }
                if let Some(top) = top_change(symbol, state, recv_ts_ms) {
                    self.tops.push(top);
                }
                let book = state.sync.book();
                // `due` runs either way, so a book switched to the cadence keeps its clock.
                if state.cadence.due(book.ts_ms) | state.every_update {
                    state.unpublished_recv_ms = None;
                    let levels = self.plan.config.snapshot_levels;
                    out.push(top_event(self.exchange, symbol, state, levels, recv_ts_ms));
                } else {
                    state.unpublished_recv_ms.get_or_insert(recv_ts_ms);
                }
                None
            }
            SyncOutcome::NeedSnapshot { .. } => {
                (!in_stream).then(|| BookAction::FetchSnapshot(symbol.clone()))
            }
            // In-stream snapshots come after the reset in the stream's own order: nothing to discard.
            SyncOutcome::SequenceReset => (!in_stream).then(|| BookAction::Refetch(symbol.clone())),
            SyncOutcome::Resync(d) => {
                forget_top(state);
                BookResync {
                    exchange: self.exchange,
                    symbol: symbol.as_str(),
                    cause: d.cause,
                    detail: &d.detail,
                }
                .emit();
                let start = if d.last_good_ts_ms > 0 {
                    d.last_good_ts_ms
                } else {
                    d.detected_ts_ms
                };
                out.push(Event {
                    exchange: self.exchange,
                    market_type: state.market_type,
                    symbol: symbol.clone(),
                    ts_ms: start,
                    recv_ts_ms,
                    payload: Payload::Gap(Gap {
                        data_type: DataType::Orderbooks,
                        start_ms: start,
                        end_ms: d.detected_ts_ms.max(start),
                        cause: d.cause,
                        detail: d.detail,
                    }),
                });
                if d.unprovable {
                    // A resync would meet the same frames: withhold until they carry sequence ids.
                    state.withheld = true;
                    return None;
                }
                Some(if in_stream {
                    BookAction::Resubscribe(symbol.clone())
                } else {
                    BookAction::FetchSnapshot(symbol.clone())
                })
            }
        }
    }
}

fn forget_top(state: &mut BookState) {
    if let Some(w) = state.signals.as_mut() {
        w.last = None;
    }
}

/// The book's new top levels when a signals book's top changed (exact comparison, so a change
/// deeper in the book costs `levels` comparisons per side and no allocation).
fn top_change(symbol: &Symbol, state: &mut BookState, recv_ts_ms: i64) -> Option<BookTop> {
    let watch = state.signals.as_mut()?;
    let book = state.sync.book();
    let n = watch.levels;
    if let Some((bids, asks)) = &watch.last
        && book.bids.iter_best_first().take(n).eq(bids.iter())
        && book.asks.iter_best_first().take(n).eq(asks.iter())
    {
        return None;
    }
    let bids: Vec<_> = book.bids.iter_best_first().take(n).copied().collect();
    let asks: Vec<_> = book.asks.iter_best_first().take(n).copied().collect();
    let top = BookTop {
        symbol: symbol.clone(),
        market_type: state.market_type,
        ts_ms: book.ts_ms,
        recv_ts_ms,
        update_id: book.last_id,
        bids: map::levels(&bids, n),
        asks: map::levels(&asks, n),
    };
    watch.last = Some((bids, asks));
    Some(top)
}

/// The published top-`levels` snapshot of a live book, stamped with its last update's exchange time.
fn top_event(
    exchange: Exchange,
    symbol: &Symbol,
    state: &BookState,
    levels: usize,
    recv_ts_ms: i64,
) -> Event {
    let book = state.sync.book();
    Event {
        exchange,
        market_type: state.market_type,
        symbol: symbol.clone(),
        ts_ms: book.ts_ms,
        recv_ts_ms,
        payload: Payload::Orderbook(book.top(levels)),
    }
}

#[cfg(test)]
#[path = "books_tests.rs"]
mod tests;
