//! Throughput figures of a bench run, from when rows landed.
//!
//! - `events_per_s` = N / (last row confirmed − first event offered): the whole run, including the
//!   start-up ramp and the final batch's `max_wait_ms` tail.
//! - `sustained_events_per_s` = rows landed between the instant 10% of the N rows had landed and the
//!   instant 90% had, divided by that time: the steady rate without ramp and tail. Rows are counted
//!   from the sink's insert reports, each timed when the bench received it.

pub const EVENTS_PER_S_DEFINITION: &str = "N / (last row confirmed by ClickHouse − first event offered): the whole run, including the final batch's max_wait tail";
pub const SUSTAINED_DEFINITION: &str = "rows landed between the insert report that brought the landed rows to ≥10% of N and the one that brought them to ≥90%, divided by the time between those two reports; null when one insert covered both";
pub const PUBLISH_PER_S_DEFINITION: &str =
    "N / (last publish acked by JetStream − first event offered)";

/// Rows per second between the 10% and 90% landing instants.
///
/// `landed` holds `(seconds since start, rows in that insert)` in arrival order; `expected` is N.
/// `None` when fewer than 90% landed or one insert took the count past both marks (no interval).
pub fn sustained_rate(landed: &[(f64, u64)], expected: u64) -> Option<f64> {
    // Integer thresholds: the first insert at which rows ≥ ceil(N·q).
    let mark = |percent: u64| (expected * percent).div_ceil(100).max(1);
    let (low, high) = (mark(10), mark(90));
    let mut total = 0;
    let mut at_low: Option<(f64, u64)> = None;
    for &(t, rows) in landed {
        total += rows;
        if at_low.is_none() && total >= low {
            at_low = Some((t, total));
        }
        if total >= high {
            let (t_low, rows_low) = at_low?;
            let span = t - t_low;
            return (span > 0.0).then(|| (total - rows_low) as f64 / span);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sustained_rate_ignores_ramp_and_tail() {
        // 1000 rows: a slow start (100 rows at 1 s), steady 100 rows every 0.1 s, then a 5 s tail.
        let mut landed = vec![(1.0, 100)];
        landed.extend((1..=8).map(|i| (1.0 + 0.1 * f64::from(i), 100)));
        landed.push((6.8, 100));
        // 10% (100 rows) at 1.0 s; 90% (900 rows) at 1.8 s: 800 rows in 0.8 s.
        let rate = sustained_rate(&landed, 1_000).unwrap();
        assert!((rate - 1_000.0).abs() < 1e-6, "{rate}");
        // The whole-run figure would be 1000 / 6.8 ≈ 147/s: the tail dominates it.
    }

    #[test]
    fn sustained_rate_counts_rows_of_uneven_inserts() {
        // 10% reached inside the second insert, 90% inside the fourth.
        let landed = [(0.5, 50), (1.0, 100), (2.0, 300), (3.0, 500), (4.0, 50)];
        // At 1.0 s: 150 landed; at 3.0 s: 950 landed → 800 rows / 2 s.
        assert_eq!(sustained_rate(&landed, 1_000), Some(400.0));
    }

    #[test]
    fn sustained_rate_is_none_without_an_interval() {
        assert_eq!(sustained_rate(&[(1.0, 1_000)], 1_000), None);
        assert_eq!(sustained_rate(&[(1.0, 100), (2.0, 100)], 1_000), None);
        assert_eq!(sustained_rate(&[], 1_000), None);
        assert_eq!(sustained_rate(&[], 0), None);
    }
}
