//! Bounds on book resyncs per stream, pure: a book that keeps breaking (a checksum that never matches,
//! a feed that cannot be trusted) must not turn into a storm of snapshots, resubscribes and gap rows.
//! Each resync in the last [`WINDOW`] waits longer (jittered exponential backoff), and past
//! [`CEILING`] resyncs in the window the next one waits until the window frees up; that is reported.

use super::backoff::backoff;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The window the ceiling counts in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Most resyncs of one stream per [`WINDOW`].
pub(crate) const CEILING: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Resync now.
    Now,
    /// Resync after this backoff.
    After(Duration),
    /// The ceiling is reached: resync at `at` (report the storm: `count` resyncs in the window).
    Storm { at: Instant, count: usize },
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ResyncBudget {
    /// When each admitted resync of the window runs.
    recent: VecDeque<Instant>,
}

impl ResyncBudget {
    /// Admit one resync at `now`; `jitter ∈ [0, 1)` spreads the backoff.
    pub fn admit(&mut self, now: Instant, jitter: f64) -> Admission {
        while self
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= CEILING {
            let count = self.recent.len();
            let at = self.recent[count - CEILING] + WINDOW;
            self.recent.push_back(at);
            return Admission::Storm { at, count };
        }
        let delay = match self.recent.len() {
            0 => Duration::ZERO,
            n => backoff(u32::try_from(n - 1).unwrap_or(u32::MAX), jitter),
        };
        let at = (now + delay).max(self.recent.back().copied().unwrap_or(now));
        self.recent.push_back(at);
        match at.saturating_duration_since(now) {
            d if d.is_zero() => Admission::Now,
            d => Admission::After(d),
        }
    }
}

/// A book not live yet: since when, and why it is not (for the report when it takes too long).
pub(crate) struct Unsynced {
    pub since: Instant,
    pub since_ms: i64,
    /// Sync deadlines passed so far: the first is reported (gap, not-ready); each restarts the sync.
    pub overdue: u32,
    /// The last failed snapshot fetch: (answer unusable, detail).
    pub last_failure: Option<(bool, String)>,
}

impl Unsynced {
    /// When the book is next overdue: one sync timeout after the last deadline.
    pub(crate) fn next_deadline(&self, timeout: Duration) -> Instant {
        self.since + timeout.saturating_mul(self.overdue.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_then_the_ceiling_holds_per_window() {
        let t0 = Instant::now();
        let mut b = ResyncBudget::default();
        assert_eq!(b.admit(t0, 0.0), Admission::Now);
        assert_eq!(
            b.admit(t0, 0.0),
            Admission::After(Duration::from_millis(250))
        );
        assert_eq!(
            b.admit(t0, 0.0),
            Admission::After(Duration::from_millis(500))
        );
        let mut admitted = 3;
        let mut storm = None;
        for _ in 0..20 {
            match b.admit(t0, 0.0) {
                Admission::Storm { at, count } => {
                    storm = Some((at, count));
                    break;
                }
                _ => admitted += 1,
            }
        }
        assert_eq!(admitted, CEILING, "at most CEILING per window");
        let (at, count) = storm.unwrap();
        assert_eq!(count, CEILING);
        assert_eq!(
            at,
            t0 + WINDOW,
            "waits for the first of the window to age out"
        );
        assert_eq!(
            ResyncBudget::default().admit(t0 + WINDOW * 5, 0.0),
            Admission::Now,
            "a quiet window starts over"
        );
        let mut quiet = ResyncBudget::default();
        quiet.admit(t0, 0.0);
        assert_eq!(
            quiet.admit(t0 + WINDOW, 0.0),
            Admission::Now,
            "old resyncs age out"
        );
    }
}
