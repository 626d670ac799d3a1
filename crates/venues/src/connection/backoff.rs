//! Reconnect/retry delays (pure) and the overlap de-duplication set used during a rotation.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

pub const BASE: Duration = Duration::from_millis(500);
pub const MAX: Duration = Duration::from_secs(30);

/// Exponential backoff with jitter: `min(MAX, BASE·2^attempt)`, scaled into `[½, 1)` by `jitter ∈ [0, 1)`
/// so many connections failing together do not retry in lockstep.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let exp = BASE.saturating_mul(1u32 << attempt.min(16));
    let capped = exp.min(MAX);
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 0.999))
}

/// A random `[0, 1)` for [`backoff`].
pub fn jitter() -> f64 {
    rand::random::<f64>()
}

/// Ids seen recently, bounded: a second copy of an id within the window is a duplicate. Each id is
/// stored once (shared by the set and the eviction order) and hashed with foldhash: this runs for
/// every trade.
#[derive(Debug, Default)]
pub(crate) struct RecentIds {
    set: HashSet<Arc<str>, foldhash::fast::RandomState>,
    order: VecDeque<Arc<str>>,
    capacity: usize,
}

impl RecentIds {
    pub fn new(capacity: usize) -> RecentIds {
        RecentIds {
            set: HashSet::default(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// True if `id` is new (and remember it).
    pub fn insert(&mut self, id: &str) -> bool {
        if self.set.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        let id: Arc<str> = Arc::from(id);
        self.set.insert(Arc::clone(&id));
        self.order.push_back(id);
        true
    }

    pub fn clear(&mut self) {
        self.set.clear();
        self.order.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        assert_eq!(backoff(0, 0.0), Duration::from_millis(250));
        assert_eq!(backoff(1, 0.0), Duration::from_millis(500));
        assert!(backoff(3, 0.99) < Duration::from_millis(4000));
        assert!(backoff(3, 0.99) > Duration::from_millis(3900));
        assert_eq!(backoff(30, 0.0), MAX / 2);
        assert!(backoff(30, 0.999) < MAX);
    }

    #[test]
    fn recent_ids_dedupe_within_capacity() {
        let mut r = RecentIds::new(2);
        assert!(r.insert("a"));
        assert!(!r.insert("a"));
        assert!(r.insert("b"));
        assert!(r.insert("c"), "evicts a");
        assert!(r.insert("a"));
        r.clear();
        assert!(r.is_empty());
    }
}
