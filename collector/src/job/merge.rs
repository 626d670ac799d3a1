//! Pure pieces of replay: the lazy k-way merge in exchange-time order, and the pacing schedule.
//!
//! **Memory**: the merge opens a source only when the merge front reaches the source's lower bound
//! (`min_ts`, e.g. a Parquet file's `ts_ms` statistics or an hour page's start), so what is held at
//! once is the sources overlapping the current time, not the whole range. A Parquet file is a
//! flush (bounded by `max_rows`), a ClickHouse page one hour of one table.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// A merge input not yet opened: `min_ts` is a lower bound (UTC ms) of every item it will yield.
#[derive(Debug)]
pub struct Lazy<S> {
    pub min_ts: i64,
    pub source: S,
}

struct Head<T> {
    ts: i64,
    /// The source's ordinal: ties in `ts` come out in source order (deterministic).
    ordinal: usize,
    item: T,
}

impl<T> PartialEq for Head<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.ts, self.ordinal) == (other.ts, other.ordinal)
    }
}
impl<T> Eq for Head<T> {}
impl<T> PartialOrd for Head<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Head<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.ts, self.ordinal).cmp(&(other.ts, other.ordinal))
    }
}

/// K-way merge of sources each sorted by `ts`, opened lazily (see the module docs).
///
/// `open` turns a source into an iterator of `Result<T, E>` sorted by `ts(&T)` (UTC ms), none below
/// the source's `min_ts`. Items with equal `ts` come out in the order the sources were given, and
/// within a source in its order. An `Err` from `open` or from an iterator is yielded once (right
/// after the item before it in that source) and ends the merge.
pub struct LazyMerge<S, I, T, E, O, K> {
    /// Unopened sources, the smallest `min_ts` last (popped first); ties in given order.
    pending: Vec<(i64, usize, S)>,
    open_iters: Vec<Option<I>>,
    heap: BinaryHeap<Reverse<Head<T>>>,
    open: O,
    ts: K,
    failed: bool,
    /// An error met while refilling after an item: yielded after that item.
    deferred: Option<E>,
    _e: std::marker::PhantomData<E>,
}

impl<S, I, T, E, O, K> LazyMerge<S, I, T, E, O, K>
where
    I: Iterator<Item = Result<T, E>>,
    O: FnMut(S) -> Result<I, E>,
    K: Fn(&T) -> i64,
{
    pub fn new(sources: Vec<Lazy<S>>, open: O, ts: K) -> Self {
        let mut pending: Vec<(i64, usize, S)> = sources
            .into_iter()
            .enumerate()
            .map(|(i, l)| (l.min_ts, i, l.source))
            .collect();
        pending.sort_by_key(|p| Reverse((p.0, p.1)));
        let n = pending.len();
        Self {
            pending,
            open_iters: (0..n).map(|_| None).collect(),
            heap: BinaryHeap::new(),
            open,
            ts,
            failed: false,
            deferred: None,
            _e: std::marker::PhantomData,
        }
    }

    /// Sources opened so far (for tests and logs).
    pub fn opened(&self) -> usize {
        self.open_iters.len() - self.pending.len()
    }

    /// Pulls the next item of source `ordinal` onto the heap.
    fn advance(&mut self, ordinal: usize) -> Result<(), E> {
        let Some(iter) = self.open_iters[ordinal].as_mut() else {
            return Ok(());
        };
        match iter.next() {
            Some(Ok(item)) => {
                let ts = (self.ts)(&item);
                self.heap.push(Reverse(Head { ts, ordinal, item }));
            }
            Some(Err(e)) => return Err(e),
            None => self.open_iters[ordinal] = None,
        }
        Ok(())
    }
}

impl<S, I, T, E, O, K> Iterator for LazyMerge<S, I, T, E, O, K>
where
    I: Iterator<Item = Result<T, E>>,
    O: FnMut(S) -> Result<I, E>,
    K: Fn(&T) -> i64,
{
    type Item = Result<T, E>;

    fn next(&mut self) -> Option<Result<T, E>> {
        if self.failed {
            return None;
        }
        if let Some(e) = self.deferred.take() {
            self.failed = true;
            return Some(Err(e));
        }
        // Open every source that may hold an item at or before the current front.
        while let Some(&(min_ts, ..)) = self.pending.last() {
            if self.heap.peek().is_some_and(|h| h.0.ts < min_ts) {
                break;
            }
            let (_, ordinal, source) = self.pending.pop()?;
            let opened = (self.open)(source).map(|iter| {
                self.open_iters[ordinal] = Some(iter);
            });
            if let Err(e) = opened.and_then(|()| self.advance(ordinal)) {
                self.failed = true;
                return Some(Err(e));
            }
        }
        let Reverse(head) = self.heap.pop()?;
        if let Err(e) = self.advance(head.ordinal) {
            self.deferred = Some(e);
        }
        Some(Ok(head.item))
    }
}

/// The pacing schedule: the first paced event goes out at once and anchors wall time to exchange
/// time; event `ts` is due `(ts - first_ts) / speed` ms of wall time after the anchor. `None` speed
/// is as fast as possible (nothing is ever due later than now).
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: Option<f64>,
    anchor: Option<(i64, Instant)>,
}

impl Pacer {
    /// `speed`: exchange-time ms replayed per wall ms (1.0 = the original pace); `None` or a
    /// non-positive or non-finite value: as fast as possible.
    pub fn new(speed: Option<f64>) -> Self {
        Self {
            speed: speed.filter(|s| s.is_finite() && *s > 0.0),
            anchor: None,
        }
    }

    /// How long to wait at `now` before sending an event of exchange time `ts` (UTC ms).
    pub fn wait(&mut self, ts: i64, now: Instant) -> Duration {
        let Some(speed) = self.speed else {
            return Duration::ZERO;
        };
        let (ts0, t0) = *self.anchor.get_or_insert((ts, now));
        // An event before the anchor (never in a sorted replay) is simply not delayed.
        let offset_ms = (ts - ts0).max(0) as f64 / speed;
        let due = t0 + Duration::from_secs_f64(offset_ms / 1000.0);
        due.saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    type Src = Vec<Result<i64, String>>;

    fn merge_all(sources: Vec<(i64, Src)>) -> (Vec<Result<i64, String>>, usize) {
        let lazy = sources
            .into_iter()
            .map(|(min_ts, s)| Lazy { min_ts, source: s })
            .collect();
        let mut m = LazyMerge::new(lazy, |s: Src| Ok::<_, String>(s.into_iter()), |t: &i64| *t);
        let out: Vec<_> = m.by_ref().collect();
        (out, m.opened())
    }

    #[test]
    fn merges_sorted_sources_in_order() {
        let (out, _) = merge_all(vec![
            (1, vec![Ok(1), Ok(4), Ok(9)]),
            (2, vec![Ok(2), Ok(3), Ok(10)]),
            (0, vec![]),
            (5, vec![Ok(5), Ok(9)]),
        ]);
        let got: Vec<i64> = out.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, [1, 2, 3, 4, 5, 9, 9, 10]);
    }

    #[test]
    fn ties_come_out_in_source_order() {
        let lazy = vec![
            Lazy {
                min_ts: 0,
                source: vec![(5, "a1"), (5, "a2")],
            },
            Lazy {
                min_ts: 5,
                source: vec![(5, "b1")],
            },
            Lazy {
                min_ts: 0,
                source: vec![(5, "c1")],
            },
        ];
        let m = LazyMerge::new(
            lazy,
            |s: Vec<(i64, &'static str)>| Ok::<_, ()>(s.into_iter().map(Ok)),
            |t: &(i64, &str)| t.0,
        );
        let got: Vec<&str> = m.map(|r| r.unwrap().1).collect();
        assert_eq!(got, ["a1", "a2", "b1", "c1"]);
    }

    #[test]
    fn opens_a_source_only_when_the_front_reaches_it() {
        let opened = Rc::new(RefCell::new(Vec::new()));
        let log = opened.clone();
        let lazy = (0..5)
            .map(|i| Lazy {
                min_ts: i * 100,
                source: i,
            })
            .collect();
        let mut m = LazyMerge::new(
            lazy,
            move |i: i64| {
                log.borrow_mut().push(i);
                Ok::<_, ()>((0..3).map(move |k| Ok(i * 100 + k)))
            },
            |t: &i64| *t,
        );
        assert_eq!(m.next(), Some(Ok(0)));
        assert_eq!(*opened.borrow(), [0], "only the first source is open");
        for _ in 0..3 {
            m.next();
        }
        assert_eq!(*opened.borrow(), [0, 1]);
        assert_eq!(m.count(), 11);
        assert_eq!(*opened.borrow(), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn an_error_is_yielded_once_and_ends_the_merge() {
        let (out, _) = merge_all(vec![
            (0, vec![Ok(1), Err("broken".into()), Ok(7)]),
            (0, vec![Ok(2), Ok(3)]),
        ]);
        assert_eq!(out, [Ok(1), Err("broken".to_string())]);
        let lazy = vec![Lazy {
            min_ts: 0,
            source: (),
        }];
        let mut m = LazyMerge::new(
            lazy,
            |_: ()| Err::<std::iter::Empty<Result<i64, &str>>, _>("cannot open"),
            |t: &i64| *t,
        );
        assert_eq!(m.next(), Some(Err("cannot open")));
        assert_eq!(m.next(), None);
    }

    #[test]
    fn pacing_divides_exchange_time_by_speed() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(4.0));
        assert_eq!(
            p.wait(10_000, t0),
            Duration::ZERO,
            "the first event anchors"
        );
        assert_eq!(p.wait(12_000, t0), Duration::from_millis(500));
        // Later, less is left to wait; an overdue event waits not at all.
        assert_eq!(
            p.wait(12_000, t0 + Duration::from_millis(200)),
            Duration::from_millis(300)
        );
        assert_eq!(p.wait(12_000, t0 + Duration::from_secs(1)), Duration::ZERO);
        let mut slow = Pacer::new(Some(0.5));
        slow.wait(0, t0);
        assert_eq!(slow.wait(1_000, t0), Duration::from_secs(2));
        for speed in [None, Some(0.0), Some(-1.0), Some(f64::NAN)] {
            let mut fast = Pacer::new(speed);
            fast.wait(0, t0);
            assert_eq!(fast.wait(1_000_000, t0), Duration::ZERO, "{speed:?}");
        }
    }
}
