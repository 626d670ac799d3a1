//! A tiny, version-stable PRNG (SplitMix64) so a seed means the same data forever.

/// SplitMix64: 64-bit state, good enough statistics for simulated markets, no dependency drift.
#[derive(Debug, Clone)]
pub(crate) struct SimRng(u64);

impl SimRng {
    #[cfg(test)]
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }

    /// A generator for one named thing (venue + symbol), independent of creation order.
    pub(crate) fn derive(seed: u64, parts: &[&str]) -> Self {
        SimRng(mix(seed, parts))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (modulo bias is irrelevant here).
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1) as u64;
        lo + (self.next_u64() % span) as i64
    }

    /// True with probability `p_percent`/100.
    pub(crate) fn chance(&mut self, p_percent: u64) -> bool {
        self.next_u64() % 100 < p_percent
    }
}

/// FNV-1a over the parts, folded with the seed: a stable hash for deriving per-thing values.
pub(crate) fn mix(seed: u64, parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    SimRng(h).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_parts_matter() {
        let a: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(SimRng::new(7), |r, _: u64| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(SimRng::new(7), |r, _: u64| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(
            mix(1, &["binance", "BTCUSDT"]),
            mix(1, &["binance", "ETHUSDT"])
        );
        assert_ne!(mix(1, &["ab", "c"]), mix(1, &["a", "bc"]));
        let mut r = SimRng::new(3);
        assert!(
            (0..1000)
                .map(|_| r.range(-2, 2))
                .all(|v| (-2..=2).contains(&v))
        );
    }
}
