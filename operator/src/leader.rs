//! Leader election through the operator's own Lease, so two replicas never both reconcile.
//!
//! Same rules as the collector's shard lock (`marketprism_pipeline::lease`, not linked here to
//! keep the operator image small): expiry is judged by the local monotonic instant at which the
//! Lease was last seen to change, never by the holder's timestamps; writes carry the observed
//! `resourceVersion`; the leader stops (the process exits and restarts as a follower) as soon as
//! its own deadline passes without a successful renewal, before anyone else may take over.

use crate::{Error, Result};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What the elector should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Free, released or expired: write ourselves as holder.
    Claim,
    /// Ours and due for renewal.
    Renew,
    /// Someone else's and live, or ours and recently renewed.
    Wait,
}

/// Pure election state; `now` is always passed in.
#[derive(Debug, Clone)]
pub struct Elector {
    identity: String,
    duration: Duration,
    /// (holder, resourceVersion) last seen, and the local instant it was first seen.
    seen: Option<((Option<String>, String), Instant)>,
    last_write: Option<Instant>,
    deadline: Option<Instant>,
}

impl Elector {
    pub fn new(identity: impl Into<String>, duration: Duration) -> Elector {
        Elector {
            identity: identity.into(),
            duration,
            seen: None,
            last_write: None,
            deadline: None,
        }
    }

    pub fn renew_period(&self) -> Duration {
        self.duration / 3
    }

    fn holder(&self) -> Option<&str> {
        self.seen
            .as_ref()
            .and_then(|((h, _), _)| h.as_deref())
            .filter(|h| !h.is_empty())
    }

    pub fn observe(&mut self, holder: Option<String>, version: String, now: Instant) {
        let key = (holder, version);
        if self.seen.as_ref().is_none_or(|(k, _)| *k != key) {
            self.seen = Some((key, now));
        }
        if self.holder() != Some(self.identity.as_str()) {
            self.deadline = None;
        }
    }

    pub fn decide(&self, now: Instant) -> Decision {
        let Some((_, seen_at)) = &self.seen else {
            return Decision::Wait;
        };
        match self.holder() {
            None => Decision::Claim,
            Some(h) if h == self.identity => {
                if self
                    .last_write
                    .is_none_or(|w| now.duration_since(w) >= self.renew_period())
                {
                    Decision::Renew
                } else {
                    Decision::Wait
                }
            }
            Some(_) if now.duration_since(*seen_at) >= self.duration => Decision::Claim,
            Some(_) => Decision::Wait,
        }
    }

    /// A write started at `started` succeeded with `version`.
    pub fn written(&mut self, started: Instant, version: String, now: Instant) {
        self.seen = Some(((Some(self.identity.clone()), version), now));
        self.last_write = Some(started);
        self.deadline = Some(started + self.duration - self.duration / 5);
    }

    pub fn conflicted(&mut self) {
        self.seen = None;
    }

    pub fn is_leader(&self, now: Instant) -> bool {
        self.holder() == Some(self.identity.as_str()) && self.deadline.is_some_and(|d| now < d)
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// The monotonic clock (tokio's, so tests with paused time control it).
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Where the leader Lease lives and who we are.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
}

/// Read (creating if missing) and, when the elector says so, write the Lease once.
async fn step(api: &Api<Lease>, config: &LeaderConfig, elector: &mut Elector) -> Result<()> {
    let lease = match api.get_opt(&config.name).await? {
        Some(lease) => lease,
        None => {
            let fresh = Lease {
                metadata: ObjectMeta {
                    name: Some(config.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    lease_duration_seconds: i32::try_from(config.duration.as_secs()).ok(),
                    ..LeaseSpec::default()
                }),
            };
            match api.create(&PostParams::default(), &fresh).await {
                Ok(created) => created,
                Err(kube::Error::Api(s)) if s.is_already_exists() => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
    };
    let spec = lease.spec.clone().unwrap_or_default();
    elector.observe(
        spec.holder_identity.clone(),
        lease.resource_version().unwrap_or_default(),
        now(),
    );
    if elector.decide(now()) == Decision::Wait {
        return Ok(());
    }
    let started = now();
    let mut claimed = lease;
    let mut spec = spec;
    let wall = MicroTime(Timestamp::now());
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        spec.acquire_time = Some(wall.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.renew_time = Some(wall);
    spec.lease_duration_seconds = i32::try_from(config.duration.as_secs()).ok();
    claimed.spec = Some(spec);
    match api
        .replace(&config.name, &PostParams::default(), &claimed)
        .await
    {
        Ok(written) => {
            elector.written(
                started,
                written.resource_version().unwrap_or_default(),
                now(),
            );
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.is_conflict() => {
            elector.conflicted();
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// How a leadership term ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown was asked for before this replica became leader: nothing to release.
    NeverLed,
    /// `work` stopped and the Lease was handed back (or was no longer ours to hand back).
    Released,
}

/// How long the release may take at shutdown: the kubelet's grace period is 30 s, but a rolling
/// upgrade waits on us, and a follower takes over at the Lease's expiry anyway if this fails.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// Wait to become leader, then run `work` while renewing; one ordered path to the end.
///
/// `work` gets a child of `shutdown` and must return once it is cancelled (the controller stops
/// taking new reconciles and finishes the running ones). Only after `work` has returned is the
/// Lease released, so the next leader never overlaps a reconcile of ours; then this returns
/// `Ok(Ended::Released)`. A renewal deadline that passes first returns `Err(LostLeadership)` (the
/// caller exits so the pod restarts as a follower) and releases nothing: it is no longer ours.
/// `api_ok` turns true after the first successful Lease read (readiness).
pub async fn run_as_leader<F, Fut>(
    client: Client,
    config: LeaderConfig,
    api_ok: Arc<AtomicBool>,
    shutdown: CancellationToken,
    work: F,
) -> Result<Ended>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut elector = Elector::new(config.identity.clone(), config.duration);
    let poll = elector.renew_period();
    metrics::gauge!("marketprism_operator_leader").set(0.0);
    while !elector.is_leader(now()) {
        let attempt = tokio::time::timeout(poll, step(&api, &config, &mut elector));
        let outcome = tokio::select! {
            () = shutdown.cancelled() => None,
            r = attempt => Some(r),
        };
        match outcome {
            // The dropped step may have claimed the Lease on the server just before: hand it back.
            None => {
                return Ok(release_at_shutdown(&api, &config)
                    .await
                    .map_or(Ended::NeverLed, |_| Ended::Released));
            }
            Some(Ok(Ok(()))) => api_ok.store(true, Ordering::Relaxed),
            Some(Ok(Err(e))) => tracing::warn!(error = %e, "leader election step failed"),
            Some(Err(_)) => tracing::warn!("leader election step timed out"),
        }
        if !elector.is_leader(now()) {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(Ended::NeverLed),
                () = tokio::time::sleep(poll / 2) => {}
            }
        }
    }
    tracing::info!(identity = %config.identity, lease = %config.name, "became leader");
    metrics::gauge!("marketprism_operator_leader").set(1.0);
    let hold = async {
        loop {
            let deadline = elector
                .deadline()
                .ok_or_else(|| Error::LostLeadership("another holder took the lease".into()))?;
            let fence = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
            tokio::select! {
                () = fence => return Err(Error::LostLeadership("renewal deadline passed".into())),
                () = tokio::time::sleep(poll) => {}
            }
            let fence = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
            tokio::select! {
                () = fence => return Err(Error::LostLeadership("renewal deadline passed".into())),
                r = step(&api, &config, &mut elector) => if let Err(e) = r {
                    tracing::warn!(error = %e, "leader lease renewal failed");
                },
            }
            if !elector.is_leader(now()) {
                return Err(Error::LostLeadership("lease no longer ours".into()));
            }
        }
    };
    // Renewal continues while `work` drains after the shutdown request; a renewal racing the
    // release below cannot happen because `hold` is dropped before it.
    let result = tokio::select! {
        r = hold => r.map(|()| Ended::Released),
        () = work(shutdown.child_token()) => Ok(Ended::Released),
    };
    metrics::gauge!("marketprism_operator_leader").set(0.0);
    if result.is_ok() {
        release_at_shutdown(&api, &config).await;
    }
    result
}

/// [`release`] bounded by [`RELEASE_TIMEOUT`], logged; `Some(())` when the Lease was ours and is free now.
async fn release_at_shutdown(api: &Api<Lease>, config: &LeaderConfig) -> Option<()> {
    match tokio::time::timeout(RELEASE_TIMEOUT, release(api, config)).await {
        Ok(Ok(true)) => {
            tracing::info!(lease = %config.name, "released the leader lease");
            Some(())
        }
        Ok(Ok(false)) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot release the leader lease");
            None
        }
        Err(_) => {
            tracing::warn!("releasing the leader lease timed out");
            None
        }
    }
}

/// Give the Lease up so a follower takes over without waiting it out: holder cleared and a fresh
/// `renewTime`, written against the observed `resourceVersion` (a conflict means someone else
/// wrote it, so it is not ours to clear). `Ok(false)` when another holder has it.
pub async fn release(api: &Api<Lease>, config: &LeaderConfig) -> Result<bool> {
    let mut lease = api.get(&config.name).await?;
    let Some(spec) = lease.spec.as_mut() else {
        return Ok(false);
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(false);
    }
    spec.holder_identity = None;
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.is_conflict() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
#[path = "leader_tests.rs"]
mod shell_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    #[test]
    fn one_of_two_replicas_leads_and_the_other_waits_out_a_full_duration() {
        let t0 = now();
        let (mut a, mut b) = (Elector::new("a", D), Elector::new("b", D));
        a.observe(None, "1".into(), t0);
        b.observe(None, "1".into(), t0);
        assert_eq!(
            (a.decide(t0), b.decide(t0)),
            (Decision::Claim, Decision::Claim)
        );
        a.written(t0, "2".into(), t0);
        b.conflicted();
        b.observe(Some("a".into()), "2".into(), t0);
        assert!(a.is_leader(t0) && !b.is_leader(t0));
        assert_eq!(b.decide(t0 + D - Duration::from_millis(1)), Decision::Wait);
        assert!(
            !a.is_leader(t0 + D - D / 5),
            "a steps down before b may claim"
        );
        assert_eq!(b.decide(t0 + D), Decision::Claim);
    }

    #[test]
    fn the_leader_renews_every_third_and_steps_down_when_someone_else_holds() {
        let t0 = now();
        let mut a = Elector::new("a", D);
        a.observe(None, "1".into(), t0);
        a.written(t0, "2".into(), t0);
        assert_eq!(
            a.decide(t0 + D / 3 - Duration::from_millis(1)),
            Decision::Wait
        );
        assert_eq!(a.decide(t0 + D / 3), Decision::Renew);
        a.observe(Some("b".into()), "3".into(), t0 + Duration::from_secs(1));
        assert!(!a.is_leader(t0 + Duration::from_secs(1)));
        assert_eq!(a.deadline(), None);
    }
}
