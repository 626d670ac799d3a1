//! One weight-aware token bucket per venue for REST calls, shared by its snapshot fetches and pollers.
//! It honours the venue's `Retry-After`, 429 and 418 (IP ban) by refusing every request until then.
//! The decision core is pure and clock-injected; [`RateLimiter`] is the thin async shell.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Bucket of `capacity` weight refilled at `refill_per_s`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenBucket {
    capacity: f64,
    refill_per_s: f64,
    tokens: f64,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl TokenBucket {
    pub fn new(capacity: u32, refill_per_s: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            capacity: f64::from(capacity.max(1)),
            refill_per_s: refill_per_s.max(0.001),
            tokens: f64::from(capacity.max(1)),
            last: now,
            blocked_until: None,
        }
    }

    /// Take `weight` now, or say how long to wait before asking again.
    pub fn try_take(&mut self, weight: u32, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.blocked_until {
            if now < until {
                return Err(until - now);
            }
            self.blocked_until = None;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_s).min(self.capacity);
        self.last = now;
        // A request heavier than the bucket waits for a full bucket rather than forever.
        let weight = f64::from(weight).min(self.capacity);
        if self.tokens >= weight {
            self.tokens -= weight;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (weight - self.tokens) / self.refill_per_s,
            ))
        }
    }

    /// The venue said stop (429/418/`Retry-After`): nothing passes before `until`, and the bucket
    /// restarts empty so requests resume gently.
    pub fn block_until(&mut self, until: Instant) {
        if self.blocked_until.is_none_or(|b| b < until) {
            self.blocked_until = Some(until);
        }
        self.tokens = 0.0;
        self.last = until;
    }
}

/// How long a refused request blocks the venue: `Retry-After` when given, else 418 → 2 min (Binance's
/// shortest ban), 429 → 10 s.
pub(crate) fn penalty(status: u16, retry_after: Option<&str>) -> Option<Duration> {
    let header = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    match status {
        418 => Some(header.unwrap_or(Duration::from_secs(120))),
        429 => Some(header.unwrap_or(Duration::from_secs(10))),
        _ => header,
    }
}

/// The shared async limiter of one venue.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    bucket: Arc<Mutex<TokenBucket>>,
}

impl RateLimiter {
    pub fn new(capacity: u32, refill_per_s: f64) -> RateLimiter {
        RateLimiter {
            bucket: Arc::new(Mutex::new(TokenBucket::new(
                capacity,
                refill_per_s,
                Instant::now(),
            ))),
        }
    }

    /// Wait until `weight` is available, then take it.
    pub async fn acquire(&self, weight: u32) {
        loop {
            let wait = {
                let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
                match b.try_take(weight, Instant::now()) {
                    Ok(()) => return,
                    Err(wait) => wait,
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Honour a rejected REST reply: 429/418 (and 503 with Retry-After) ban the venue for as long as it says.
    pub fn honour_rejection(&self, status: u16, headers: &reqwest::header::HeaderMap) {
        let retry_after = headers.get("retry-after").and_then(|v| v.to_str().ok());
        if let Some(p) = penalty(status, retry_after) {
            self.block_for(p);
        }
    }

    pub fn block_for(&self, d: Duration) {
        let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        b.block_until(Instant::now() + d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_taken_and_refilled_over_time() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20, 10.0, t0);
        assert!(b.try_take(20, t0).is_ok());
        let wait = b.try_take(5, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(b.try_take(5, t0 + Duration::from_millis(499)).is_err());
        assert!(b.try_take(5, t0 + Duration::from_millis(1000)).is_ok());
        // heavier than capacity: waits for a full bucket, not forever
        let mut b = TokenBucket::new(10, 10.0, t0);
        assert!(b.try_take(50, t0).is_ok());
    }

    #[test]
    fn a_ban_blocks_everything_until_it_ends() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100, 100.0, t0);
        b.block_until(t0 + Duration::from_secs(120));
        assert_eq!(
            b.try_take(1, t0 + Duration::from_secs(60)).unwrap_err(),
            Duration::from_secs(60)
        );
        // a shorter penalty does not shorten a longer ban
        b.block_until(t0 + Duration::from_secs(10));
        assert!(b.try_take(1, t0 + Duration::from_secs(100)).is_err());
        assert!(b.try_take(1, t0 + Duration::from_secs(121)).is_ok());
    }

    #[test]
    fn penalties_honour_retry_after_and_ban_statuses() {
        assert_eq!(penalty(429, Some("7")), Some(Duration::from_secs(7)));
        assert_eq!(penalty(418, None), Some(Duration::from_secs(120)));
        assert_eq!(penalty(418, Some("3600")), Some(Duration::from_secs(3600)));
        assert_eq!(penalty(429, Some("garbage")), Some(Duration::from_secs(10)));
        assert_eq!(penalty(500, None), None);
        assert_eq!(penalty(503, Some("2")), Some(Duration::from_secs(2)));
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_waits_for_refill() {
        let l = RateLimiter::new(10, 10.0);
        let t0 = Instant::now();
        l.acquire(10).await;
        l.acquire(5).await;
        assert!(Instant::now() - t0 >= Duration::from_millis(500));
        l.block_for(Duration::from_secs(30));
        l.acquire(1).await;
        assert!(Instant::now() - t0 >= Duration::from_secs(30));
    }
}
