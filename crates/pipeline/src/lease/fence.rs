//! The outputs' view of the shard lock: may this instance write *now*?
//!
//! Judged at every call against the clock (the lease deadline), not only by the lease task's last
//! verdict: a process frozen (SIGSTOP, a long GC-like stall) past its deadline and resumed runs its
//! timers in any order, and a flush must not win the race against the task that would fence it.

use std::time::Instant;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Fence {
    /// The lease task's verdict (also what to wait on for changes).
    verdict: watch::Receiver<bool>,
    /// The instant our hold ends, when there is a lease; `None` inside: not held.
    deadline: Option<watch::Receiver<Option<Instant>>>,
}

impl Fence {
    /// No shard lock (local runs): always open.
    pub fn open() -> Fence {
        Fence {
            verdict: watch::channel(true).1,
            deadline: None,
        }
    }

    /// A verdict alone (tests, callers without a lease deadline).
    pub fn from_verdict(verdict: watch::Receiver<bool>) -> Fence {
        Fence {
            verdict,
            deadline: None,
        }
    }

    /// The lease task's verdict and the deadline of our hold.
    pub fn new(
        verdict: watch::Receiver<bool>,
        deadline: watch::Receiver<Option<Instant>>,
    ) -> Fence {
        Fence {
            verdict,
            deadline: Some(deadline),
        }
    }

    /// True only while the lock is held and its deadline has not passed, by the clock, now.
    pub fn may_publish(&self) -> bool {
        *self.verdict.borrow()
            && self.deadline.as_ref().is_none_or(|d| {
                d.borrow()
                    .is_some_and(|t| tokio::time::Instant::now().into_std() < t)
            })
    }

    /// Resolves when the verdict changes; never, when nothing can change it.
    pub async fn changed(&mut self) {
        if self.verdict.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_passed_deadline_closes_the_fence_before_the_verdict_changes() {
        assert!(Fence::open().may_publish());
        let (verdict_tx, verdict) = watch::channel(true);
        let now = Instant::now();
        let (deadline_tx, deadline) = watch::channel(Some(now + Duration::from_secs(60)));
        let fence = Fence::new(verdict, deadline);
        assert!(fence.may_publish());
        // Frozen past the deadline: the verdict still says true, the clock says no.
        deadline_tx.send_replace(Some(now));
        assert!(!fence.may_publish());
        deadline_tx.send_replace(Some(now + Duration::from_secs(60)));
        verdict_tx.send_replace(false);
        assert!(!fence.may_publish());
        assert!(!Fence::from_verdict(watch::channel(false).1).may_publish());
    }
}
