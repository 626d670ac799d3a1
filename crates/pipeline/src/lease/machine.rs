//! The shard lock as a pure state machine. Time comes in as monotonic `Instant`s from the caller.
//!
//! Safety argument (why two pods never publish the same shard at once):
//! * A contender judges expiry only by its own monotonic clock: a Lease held by someone else is
//!   expired when `duration` has passed since the local instant at which this pod *observed the
//!   Lease change* (new `resourceVersion`). The holder's timestamps are never compared with local
//!   wall time, so clock skew between nodes cannot make a live Lease look expired.
//! * The holder may publish only until `attempt_started + duration - margin`, where `attempt_started`
//!   is taken *before* sending the write that succeeded. Any other pod observes that write no earlier
//!   than it was made, and then waits a full `duration`: the holder's deadline always comes first.
//! * Writes carry the observed `resourceVersion` (optimistic concurrency): of two contenders that
//!   saw the same expired Lease, exactly one update succeeds; the other gets a conflict.

use std::time::{Duration, Instant};

/// What was read from the Lease object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `spec.holderIdentity`; `None` or empty when free (released).
    pub holder: Option<String>,
    /// `metadata.resourceVersion`: changes with every write, so it tells "the Lease changed".
    pub version: String,
    /// `spec.leaseDurationSeconds`, if set.
    pub duration_s: Option<u64>,
}

/// What the shell should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write ourselves as holder (free or expired Lease), based on this `resourceVersion`.
    Acquire { version: String },
    /// Refresh our hold, based on this `resourceVersion`.
    Renew { version: String },
    /// Someone else holds a live Lease: stand by.
    Standby,
    /// Nothing to do until the next tick (recently renewed, or nothing observed yet).
    Wait,
}

/// This pod's role, for readiness and the `marketprism_lease_active` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds the Lease and is inside its deadline: publishes.
    Active,
    /// Another pod holds a live Lease; this one is healthy and ready to take over.
    Standby,
    /// Cannot tell (no successful read recently, or our hold lapsed without renewal).
    Unknown,
}

#[derive(Debug, Clone)]
pub struct LeaseMachine {
    identity: String,
    duration: Duration,
    /// The last observation and the local instant it was first seen in this form.
    observed: Option<(Observed, Instant)>,
    /// We may publish strictly before this instant.
    deadline: Option<Instant>,
    /// When our last successful write was started.
    last_write: Option<Instant>,
    /// When the Lease was last read successfully.
    last_read: Option<Instant>,
}

impl LeaseMachine {
    pub fn new(identity: impl Into<String>, duration: Duration) -> LeaseMachine {
        LeaseMachine {
            identity: identity.into(),
            duration,
            observed: None,
            deadline: None,
            last_write: None,
            last_read: None,
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// Renew at least this often (a third of the duration, so two renewals may fail before the deadline).
    pub fn renew_period(&self) -> Duration {
        self.duration / 3
    }

    /// Stop publishing this long before others may take over (processing and clock-rate slack).
    fn margin(&self) -> Duration {
        self.duration / 5
    }

    /// The duration others will wait: the larger of ours and the Lease's own.
    fn effective_duration(&self) -> Duration {
        let lease = self
            .observed
            .as_ref()
            .and_then(|(o, _)| o.duration_s)
            .map(Duration::from_secs)
            .unwrap_or_default();
        self.duration.max(lease)
    }

    fn held_by_me(&self) -> bool {
        self.observed
            .as_ref()
            .and_then(|(o, _)| o.holder.as_deref())
            .is_some_and(|h| h == self.identity)
    }

    /// Record a successful read. The change instant is kept when nothing changed.
    pub fn observe(&mut self, lease: Observed, now: Instant) {
        self.last_read = Some(now);
        let changed = self.observed.as_ref().is_none_or(|(o, _)| *o != lease);
        if changed {
            self.observed = Some((lease, now));
        }
        if !self.held_by_me() {
            // Someone else wrote the Lease (or it was released): our hold is over, whatever the deadline.
            self.deadline = None;
        }
    }

    /// Our write (acquire or renew) that was started at `started` succeeded with `version`.
    pub fn write_succeeded(&mut self, started: Instant, version: String, now: Instant) {
        let lease_duration = self.observed.as_ref().and_then(|(o, _)| o.duration_s);
        self.observed = Some((
            Observed {
                holder: Some(self.identity.clone()),
                version,
                duration_s: lease_duration,
            },
            now,
        ));
        self.last_write = Some(started);
        self.last_read = Some(now);
        // Measured from before the request: the others' clocks start when they see the result.
        self.deadline = Some(started + self.duration - self.margin());
    }

    /// Our write hit a newer `resourceVersion`: someone else wrote first. Re-read before trying again.
    pub fn write_conflicted(&mut self) {
        self.observed = None;
    }

    /// We gave the Lease up (shutdown): stop publishing now.
    pub fn released(&mut self) {
        self.deadline = None;
        self.observed = None;
    }

    /// Fencing: true only while we hold the Lease and our local deadline has not passed.
    pub fn may_publish(&self, now: Instant) -> bool {
        self.held_by_me() && self.deadline.is_some_and(|d| now < d)
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.held_by_me())
    }

    pub fn next_step(&self, now: Instant) -> Step {
        let Some((lease, seen_at)) = &self.observed else {
            return Step::Wait;
        };
        let version = lease.version.clone();
        match lease.holder.as_deref().filter(|h| !h.is_empty()) {
            None => Step::Acquire { version },
            Some(h) if h == self.identity => {
                let due = self
                    .last_write
                    .is_none_or(|w| now.duration_since(w) >= self.renew_period());
                if due {
                    Step::Renew { version }
                } else {
                    Step::Wait
                }
            }
            Some(_) if now.duration_since(*seen_at) >= self.effective_duration() => {
                Step::Acquire { version }
            }
            Some(_) => Step::Standby,
        }
    }

    /// Active, standby, or unknown (for readiness: active and standby are both healthy).
    pub fn role(&self, now: Instant) -> Role {
        if self.may_publish(now) {
            return Role::Active;
        }
        let read_recently = self
            .last_read
            .is_some_and(|r| now.duration_since(r) < self.duration);
        let other_holds = self.observed.as_ref().is_some_and(|(o, _)| {
            o.holder
                .as_deref()
                .is_some_and(|h| !h.is_empty() && h != self.identity)
        });
        if read_recently && other_holds {
            Role::Standby
        } else {
            Role::Unknown
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
