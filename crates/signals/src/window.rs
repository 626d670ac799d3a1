//! Building blocks of the robust z-score: a sliding window kept in arrival order *and* sorted
//! (median and median absolute deviation without sorting per point), and a time-decayed
//! exponentially weighted mean / variance.

use std::collections::VecDeque;

/// The last `cap` values, in arrival order and sorted.
///
/// Push is O(cap) memmove in the worst case (≤ 2.4 KB at 300 points); median O(1);
/// [`SortedWindow::mad`] O(log cap).
#[derive(Debug, Clone)]
pub struct SortedWindow {
    cap: usize,
    ring: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl SortedWindow {
    /// An empty window of at most `cap` (≥ 1) values.
    pub fn new(cap: usize) -> Self {
        let cap = cap.max(1);
        Self {
            cap,
            ring: VecDeque::with_capacity(cap),
            sorted: Vec::with_capacity(cap),
        }
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// True when no value is held.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Forgets every value.
    pub fn clear(&mut self) {
        self.ring.clear();
        self.sorted.clear();
    }

    /// Appends a finite `x`, evicting the oldest value when full.
    pub fn push(&mut self, x: f64) {
        if self.ring.len() == self.cap
            && let Some(old) = self.ring.pop_front()
        {
            let i = self.sorted.partition_point(|v| v.total_cmp(&old).is_lt());
            self.sorted.remove(i);
        }
        self.ring.push_back(x);
        let i = self.sorted.partition_point(|v| v.total_cmp(&x).is_le());
        self.sorted.insert(i, x);
    }

    /// Values in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        self.ring.iter().copied()
    }

    /// Median; for an even count the mean of the two middle values `(a + b) · 0.5`. `None` when empty.
    pub fn median(&self) -> Option<f64> {
        median_sorted(&self.sorted)
    }

    /// Median absolute deviation around `m` (normally [`SortedWindow::median`]): the median of
    /// `|x − m|`, unscaled (no 1.4826 consistency factor). `None` when empty.
    pub fn mad(&self, m: f64) -> Option<f64> {
        let s = &self.sorted;
        let n = s.len();
        if n == 0 {
            return None;
        }
        // Deviations left of m, nearest first: a[t] = m − s[p−1−t]; right of m: b[t] = s[p+t] − m.
        // Both are non-decreasing, so the median of the union is a k-th of two sorted sequences.
        let p = s.partition_point(|v| *v < m);
        let a = |t: usize| m - s[p - 1 - t];
        let b = |t: usize| s[p + t] - m;
        let kth = |k: usize| kth_of_two(k, p, n - p, a, b);
        Some(if n % 2 == 1 {
            kth(n / 2)
        } else {
            (kth(n / 2 - 1) + kth(n / 2)) * 0.5
        })
    }

    /// Population mean and standard deviation (two passes over the window). `None` when empty.
    pub fn mean_std(&self) -> Option<(f64, f64)> {
        let n = self.ring.len();
        if n == 0 {
            return None;
        }
        let mean = self.ring.iter().sum::<f64>() / n as f64;
        let var = self
            .ring
            .iter()
            .map(|x| (x - mean) * (x - mean))
            .sum::<f64>()
            / n as f64;
        Some((mean, var.sqrt()))
    }
}

/// Median of a sorted slice, `(a + b) · 0.5` of the two middle values for an even length.
pub(crate) fn median_sorted(s: &[f64]) -> Option<f64> {
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) * 0.5),
    }
}

/// The `k`-th smallest (0-based) of the union of two non-decreasing sequences `a` (length `na`)
/// and `b` (length `nb`), by binary search on how many come from `a`. Requires `k < na + nb`.
fn kth_of_two(
    k: usize,
    na: usize,
    nb: usize,
    a: impl Fn(usize) -> f64,
    b: impl Fn(usize) -> f64,
) -> f64 {
    let take = k + 1;
    let (mut lo, mut hi) = (take.saturating_sub(nb), take.min(na));
    // Smallest `i` (taken from a) such that the last taken from b is ≤ the next of a.
    while lo < hi {
        let i = (lo + hi) / 2;
        let j = take - i;
        if j > 0 && i < na && b(j - 1) > a(i) {
            lo = i + 1;
        } else {
            hi = i;
        }
    }
    let (i, j) = (lo, take - lo);
    match (i, j) {
        (0, _) => b(j - 1),
        (_, 0) => a(i - 1),
        _ => a(i - 1).max(b(j - 1)),
    }
}

/// Exponentially weighted mean and variance with *time-based* decay: a value's weight halves
/// every `half_life_ms` of event time (`ts_ms`, never the wall clock). Values at the same
/// millisecond weigh the same. Incremental weighted Welford update (West 1979), so a large level
/// does not cancel the variance out.
#[derive(Debug, Clone)]
pub struct DecayedVar {
    half_life_ms: f64,
    weight: f64,
    mean: f64,
    m2: f64,
    last_ts: Option<i64>,
}

impl DecayedVar {
    /// Empty, with the given half-life in ms (> 0).
    pub fn new(half_life_ms: f64) -> Self {
        Self {
            half_life_ms,
            weight: 0.0,
            mean: 0.0,
            m2: 0.0,
            last_ts: None,
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Self::new(self.half_life_ms);
    }

    /// Decays the past by `0.5^(Δt / half_life)` (Δt clamped at 0 for out-of-order timestamps),
    /// then adds `x` with weight 1.
    pub fn push(&mut self, ts_ms: i64, x: f64) {
        if let Some(t0) = self.last_ts {
            let dt = ts_ms.saturating_sub(t0);
            if dt > 0 {
                let lambda = (-(dt as f64) / self.half_life_ms).exp2();
                self.weight *= lambda;
                self.m2 *= lambda;
            }
        }
        self.last_ts = Some(self.last_ts.map_or(ts_ms, |t0| t0.max(ts_ms)));
        self.weight += 1.0;
        let d = x - self.mean;
        self.mean += d / self.weight;
        self.m2 += d * (x - self.mean);
    }

    /// Weighted mean (0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Weighted population standard deviation (0 when empty).
    pub fn std(&self) -> f64 {
        if self.weight > 0.0 {
            (self.m2 / self.weight).max(0.0).sqrt()
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute_mad(xs: &[f64]) -> f64 {
        let mut s = xs.to_vec();
        s.sort_by(f64::total_cmp);
        let m = median_sorted(&s).unwrap();
        let mut d: Vec<f64> = s.iter().map(|x| (x - m).abs()).collect();
        d.sort_by(f64::total_cmp);
        median_sorted(&d).unwrap()
    }

    #[test]
    fn median_and_mad_by_hand() {
        let mut w = SortedWindow::new(4);
        for x in [9.0, 1.0, 2.0, 3.0, 4.0] {
            w.push(x); // 9 is evicted by the fifth push
        }
        assert_eq!(w.iter().collect::<Vec<_>>(), vec![1.0, 2.0, 3.0, 4.0]);
        // median (2 + 3)/2 = 2.5; |x − 2.5| = 1.5, 0.5, 0.5, 1.5 → median (0.5 + 1.5)/2 = 1.0
        assert_eq!(w.median(), Some(2.5));
        assert_eq!(w.mad(2.5), Some(1.0));
        // mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25
        assert_eq!(w.mean_std(), Some((2.5, 1.25f64.sqrt())));
    }

    #[test]
    fn decayed_variance_by_hand() {
        // 0 at t=0, 2 one half-life later: weights 0.5 and 1 → mean 2/1.5 = 4/3,
        // variance (0.5·(4/3)² + 1·(2/3)²)/1.5 = (8/9 + 4/9)/1.5 = 8/9.
        let mut v = DecayedVar::new(1000.0);
        v.push(0, 0.0);
        v.push(1000, 2.0);
        assert!((v.mean() - 4.0 / 3.0).abs() < 1e-12);
        assert!((v.std() - (8.0f64 / 9.0).sqrt()).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn mad_matches_brute_force(xs in prop::collection::vec(-50i32..50, 1..80), cap in 1usize..40) {
            let mut w = SortedWindow::new(cap);
            for x in &xs {
                w.push(f64::from(*x) * 0.25);
            }
            let held: Vec<f64> = w.iter().collect();
            prop_assert_eq!(held.len(), xs.len().min(cap));
            let m = w.median().unwrap();
            prop_assert_eq!(w.mad(m).unwrap().to_bits(), brute_mad(&held).to_bits());
        }
    }
}
