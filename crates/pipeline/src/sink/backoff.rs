//! Jittered exponential back-off for insert retries. Pure: the random draw is passed in.

use std::time::Duration;

const BASE_MS: u64 = 250;
const MAX_MS: u64 = 10_000;

/// Delay before retry number `attempt` (1-based): full jitter over `[cap/2, cap]`, where
/// `cap = min(250 ms · 2^(attempt-1), 10 s)`. Half the cap is kept so retries never bunch at zero;
/// the jitter spreads several sinks so they do not hammer a recovering ClickHouse together.
pub(crate) fn retry_delay(attempt: u32, unit_random: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let cap = BASE_MS.saturating_mul(1 << exp).min(MAX_MS);
    let r = unit_random.clamp(0.0, 1.0);
    Duration::from_millis(cap / 2 + ((cap / 2) as f64 * r) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_with_jitter_inside_bounds() {
        assert_eq!(retry_delay(1, 0.0), Duration::from_millis(125));
        assert_eq!(retry_delay(1, 1.0), Duration::from_millis(250));
        assert_eq!(retry_delay(3, 1.0), Duration::from_millis(1_000));
        assert_eq!(retry_delay(50, 1.0), Duration::from_secs(10));
        assert_eq!(retry_delay(50, 0.0), Duration::from_secs(5));
        assert!(retry_delay(4, 0.5) > retry_delay(4, 0.1));
    }
}
