//! When to publish a top-N snapshot: every `interval_ms` of exchange time, and right after each resync.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCadence {
    interval_ms: i64,
    last_ms: Option<i64>,
}

impl SnapshotCadence {
    pub fn new(interval_ms: u64) -> SnapshotCadence {
        SnapshotCadence {
            interval_ms: i64::try_from(interval_ms).unwrap_or(i64::MAX).max(1),
            last_ms: None,
        }
    }

    /// True (and the clock restarts) when a snapshot is due at `now_ms`.
    pub fn due(&mut self, now_ms: i64) -> bool {
        let due = match self.last_ms {
            None => true,
            Some(last) => now_ms.saturating_sub(last) >= self.interval_ms || now_ms < last,
        };
        if due {
            self.last_ms = Some(now_ms);
        }
        due
    }

    /// A snapshot at `now_ms` was published outside [`Self::due`] (a flush of a quiet book).
    pub fn mark(&mut self, now_ms: i64) {
        self.last_ms = Some(now_ms);
    }

    /// The interval, in ms.
    pub fn interval_ms(&self) -> i64 {
        self.interval_ms
    }

    /// Force the next `due` (after a resync the fresh book is published at once).
    pub fn reset(&mut self) {
        self.last_ms = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_on_first_then_each_interval_and_after_reset() {
        let mut c = SnapshotCadence::new(1_000);
        assert!(c.due(10_000));
        assert!(!c.due(10_500));
        assert!(c.due(11_000));
        assert!(!c.due(11_001));
        c.reset();
        assert!(c.due(11_002));
        assert!(
            c.due(5_000),
            "a clock that went backwards publishes rather than stalls"
        );
    }
}
