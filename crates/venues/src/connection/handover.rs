//! Book rows across a make-before-break rotation, pure. Until the swap the old session's rows are
//! forwarded and the candidate's are held. A tick-by-tick book promises a row per update, so the
//! swap waits until, for each such book, the old session has forwarded a row at or past the
//! candidate's first one ([`BookHandover::ready`]); then the old session's last rows go first and
//! the held rows of later updates follow. Both sessions read the same update sequence, so every
//! update's row is published once and in update order. If the wait runs out, whatever neither
//! session covered becomes a `handover` gap: from the last row forwarded to the first row after it.

use super::gap_events;
use crate::plan::Stream;
use marketprism_model::{DataType, Event, Exchange, GapCause, Payload, Symbol};
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Copy)]
struct Forwarded {
    id: i64,
    ts_ms: i64,
}

#[derive(Debug, Default)]
pub(super) struct BookHandover {
    /// The books published after every update (the others only at an interval: nothing to wait for).
    tick_by_tick: HashSet<Symbol>,
    /// The latest forwarded book row per symbol (the latest, not the largest: a venue that resets
    /// its sequence, OKX after maintenance, continues from smaller ids).
    last: HashMap<Symbol, Forwarded>,
    /// The candidate's book rows, held until the swap (oldest first).
    held: Vec<Event>,
    /// Tick-by-tick books uncovered at a forced swap, and since when: the gap closes at their next row.
    awaiting: HashMap<Symbol, i64>,
    /// After a swap, per book, the last update id the old session published: the new session's rows
    /// up to it are repeats (it was behind), dropped until it passes it.
    catching_up: HashMap<Symbol, i64>,
}

fn update_id(e: &Event) -> Option<i64> {
    match &e.payload {
        Payload::Orderbook(b) => Some(b.last_update_id),
        _ => None,
    }
}

const DETAIL: &str = "connection rotation: no session published these book updates";

fn gap(e: &Event, start_ms: i64, end_ms: i64) -> Event {
    let stream = Stream {
        data_type: DataType::Orderbooks,
        symbol: e.symbol.clone(),
        market_type: e.market_type,
        max_silence: None,
    };
    let exchange: Exchange = e.exchange;
    gap_events(
        exchange,
        &[stream],
        start_ms,
        end_ms,
        GapCause::Handover,
        DETAIL,
    )
    .remove(0)
}

impl BookHandover {
    pub(super) fn new(tick_by_tick: impl IntoIterator<Item = Symbol>) -> BookHandover {
        BookHandover {
            tick_by_tick: tick_by_tick.into_iter().collect(),
            ..BookHandover::default()
        }
    }

    /// An event of the current session (or released at the swap), as it is to be forwarded, in
    /// order: nothing when the old session already published its book update; first the
    /// `handover` gap of its book when a forced swap left that book uncovered. Allocates nothing:
    /// every event of the connection passes here.
    pub(super) fn admitted(&mut self, e: Event) -> impl Iterator<Item = Event> + use<> {
        let (gap, row) = self.admit(e);
        gap.into_iter().chain(row)
    }

    /// `(gap, event)` of [`Self::admitted`].
    fn admit(&mut self, e: Event) -> (Option<Event>, Option<Event>) {
        let Some(id) = update_id(&e) else {
            return (None, Some(e));
        };
        if let Some(&upto) = self.catching_up.get(&e.symbol) {
            if id <= upto {
                return (None, None);
            }
            self.catching_up.remove(&e.symbol);
        }
        let row = Forwarded { id, ts_ms: e.ts_ms };
        match self.last.get_mut(&e.symbol) {
            Some(last) => *last = row,
            None => {
                self.last.insert(e.symbol.clone(), row);
            }
        }
        let gap = self
            .awaiting
            .remove(&e.symbol)
            .map(|since| gap(&e, since, e.ts_ms));
        (gap, Some(e))
    }

    /// A book row of the candidate, before the swap.
    pub(super) fn hold(&mut self, e: Event) {
        self.held.push(e);
    }

    /// The candidate failed: its rows go with it.
    pub(super) fn discard_held(&mut self) {
        self.held.clear();
    }

    fn first_held(&self, symbol: &Symbol) -> Option<&Event> {
        self.held.iter().find(|e| &e.symbol == symbol)
    }

    /// Whether the swap loses no tick-by-tick update: for every such book the old session has
    /// published, the candidate has a row and the old session's rows reached it.
    pub(super) fn ready(&self) -> bool {
        self.last
            .iter()
            .filter(|(symbol, _)| self.tick_by_tick.contains(*symbol))
            .all(|(symbol, last)| {
                self.first_held(symbol)
                    .and_then(update_id)
                    .is_some_and(|first| last.id >= first)
            })
    }

    /// At the swap, after the old session's last rows were admitted: the held rows of updates after
    /// the last forwarded one of their book, oldest first (admitted: each uncovered stretch of a
    /// tick-by-tick book preceded by its `handover` gap, or awaiting the book's next row).
    pub(super) fn release(&mut self) -> Vec<Event> {
        for (symbol, last) in &self.last {
            if !self.tick_by_tick.contains(symbol) {
                continue;
            }
            let covered = self
                .first_held(symbol)
                .and_then(update_id)
                .is_some_and(|first| last.id >= first);
            if !covered {
                self.awaiting.entry(symbol.clone()).or_insert(last.ts_ms);
            }
        }
        self.catching_up = self.last.iter().map(|(s, l)| (s.clone(), l.id)).collect();
        let held = std::mem::take(&mut self.held);
        held.into_iter().flat_map(|e| self.admitted(e)).collect()
    }
}

#[cfg(test)]
#[path = "handover_tests.rs"]
mod tests;
