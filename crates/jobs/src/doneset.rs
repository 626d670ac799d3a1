//! A compact, read-mostly set of 64-bit fingerprints: the finished units of a job.
//!
//! Loading collects fingerprints in fixed-size chunks, then moves them into one exactly-sized,
//! sorted, de-duplicated `Vec<u64>` with a bucket index over the top bits (4 bytes per ~16
//! entries). Memory is ~8.3 bytes per finished unit; a lookup touches the index and one small
//! bucket (one or two cache misses). Units finished during this process go into a small hash set.

use std::collections::HashSet;

/// `recent` is merged into `keys` when it reaches this many entries (~4 MB), bounding memory on
/// a long first run to the same ~8.3 bytes per unit.
const MERGE_AT: usize = 1 << 18;

/// Fingerprints per loading chunk (8 MB): peak memory while loading is the final vector plus one chunk.
const CHUNK: usize = 1 << 20;

/// Collects fingerprints while the log is read; [`DoneSetBuilder::build`] turns it into a [`DoneSet`].
#[derive(Default)]
pub(crate) struct DoneSetBuilder {
    chunks: Vec<Vec<u64>>,
}

impl DoneSetBuilder {
    pub(crate) fn push(&mut self, fp: u64) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(fp),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(fp);
                self.chunks.push(c);
            }
        }
    }

    pub(crate) fn build(self) -> DoneSet {
        let total = self.chunks.iter().map(Vec::len).sum();
        let mut keys = Vec::with_capacity(total);
        for chunk in self.chunks {
            keys.extend_from_slice(&chunk); // each chunk is freed as soon as it is copied
        }
        keys.sort_unstable();
        keys.dedup();
        if keys.capacity() - keys.len() > keys.len() / 16 {
            keys.shrink_to_fit();
        }
        DoneSet::from_sorted(keys)
    }
}

/// The set of finished units' fingerprints.
#[derive(Debug, Default)]
pub(crate) struct DoneSet {
    /// Sorted, unique fingerprints loaded from the log.
    keys: Vec<u64>,
    /// `index[b]..index[b + 1]` is the range of `keys` whose top `bits` bits equal `b`.
    index: Vec<u32>,
    bits: u32,
    /// Finished in this process, not in `keys`.
    recent: HashSet<u64>,
}

impl DoneSet {
    fn from_sorted(keys: Vec<u64>) -> Self {
        // About 16 keys per bucket; at least 1 bit so the shift below stays < 64.
        let bits = (keys.len() / 16)
            .max(2)
            .next_power_of_two()
            .trailing_zeros()
            .clamp(1, 28);
        let buckets = 1usize << bits;
        let mut index = Vec::with_capacity(buckets + 1);
        let mut at = 0usize;
        for b in 0..buckets as u64 {
            index.push(at as u32);
            while at < keys.len() && keys[at] >> (64 - bits) == b {
                at += 1;
            }
        }
        index.push(at as u32);
        Self {
            keys,
            index,
            bits,
            recent: HashSet::new(),
        }
    }

    /// Whether `fp` is in the set.
    pub(crate) fn contains(&self, fp: u64) -> bool {
        if !self.keys.is_empty() {
            let b = (fp >> (64 - self.bits)) as usize;
            let bucket = &self.keys[self.index[b] as usize..self.index[b + 1] as usize];
            if bucket.contains(&fp) {
                return true;
            }
        }
        !self.recent.is_empty() && self.recent.contains(&fp)
    }

    /// `out[i] = self.contains(fps[i])`, for many at once. The probes are sorted first so the
    /// lookups walk `keys` (~85 MB for 10 M units, far beyond the caches) forward, page after page,
    /// instead of one random cache and TLB miss each: with 64 Ki probes per call that is several
    /// times faster than one `contains` after another.
    pub(crate) fn contains_many(&self, fps: &[u64], out: &mut Vec<bool>) {
        out.clear();
        out.resize(fps.len(), false);
        let mut order: Vec<(u64, u32)> = fps
            .iter()
            .enumerate()
            .map(|(i, &fp)| (fp, i as u32))
            .collect();
        order.sort_unstable_by_key(|&(fp, _)| fp);
        let check_recent = !self.recent.is_empty();
        let mut cursor = 0usize;
        for (fp, i) in order {
            let mut hit = false;
            if !self.keys.is_empty() {
                let b = (fp >> (64 - self.bits)) as usize;
                let end = self.index[b + 1] as usize;
                let mut k = cursor.max(self.index[b] as usize);
                while k < end && self.keys[k] < fp {
                    k += 1;
                }
                hit = k < end && self.keys[k] == fp;
                cursor = k;
            }
            out[i as usize] = hit || (check_recent && self.recent.contains(&fp));
        }
    }

    /// Adds `fp`; returns whether it was new.
    pub(crate) fn insert(&mut self, fp: u64) -> bool {
        if self.contains(fp) {
            return false;
        }
        self.recent.insert(fp);
        if self.recent.len() >= MERGE_AT {
            self.merge_recent();
        }
        true
    }

    /// Moves `recent` into `keys` with an in-place merge from the back (no second copy of `keys`).
    fn merge_recent(&mut self) {
        let mut add: Vec<u64> = self.recent.drain().collect();
        add.sort_unstable();
        let old = std::mem::take(&mut self.keys);
        let mut keys = old;
        let (mut i, mut j) = (keys.len(), add.len());
        keys.reserve_exact(add.len());
        keys.resize(i + j, 0);
        let mut out = keys.len();
        while j > 0 {
            out -= 1;
            if i > 0 && keys[i - 1] > add[j - 1] {
                i -= 1;
                keys[out] = keys[i];
            } else {
                j -= 1;
                keys[out] = add[j];
            }
        }
        let recent = std::mem::take(&mut self.recent);
        *self = Self::from_sorted(keys);
        self.recent = recent; // keep its allocation
    }

    /// The number of distinct fingerprints.
    pub(crate) fn len(&self) -> usize {
        self.keys.len() + self.recent.len()
    }

    /// Heap bytes held (for the memory figures).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.index.capacity() * 4 + self.recent.capacity() * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn membership_matches_a_hash_set(keys in proptest::collection::vec(any::<u64>(), 0..2000),
                                         probes in proptest::collection::vec(any::<u64>(), 0..200)) {
            let mut b = DoneSetBuilder::default();
            for k in &keys { b.push(*k); }
            let mut set = b.build();
            let reference: HashSet<u64> = keys.iter().copied().collect();
            prop_assert_eq!(set.len(), reference.len());
            for k in keys.iter().chain(&probes) {
                prop_assert_eq!(set.contains(*k), reference.contains(k));
            }
            let mut many = Vec::new();
            set.contains_many(&probes, &mut many);
            prop_assert_eq!(many, probes.iter().map(|p| reference.contains(p)).collect::<Vec<_>>());
            for p in &probes {
                prop_assert_eq!(set.insert(*p), !reference.contains(p));
                prop_assert!(set.contains(*p));
            }
        }
    }

    #[test]
    fn extreme_keys() {
        let mut b = DoneSetBuilder::default();
        for k in [0, u64::MAX, 1 << 63, 5, 5] {
            b.push(k);
        }
        let set = b.build();
        assert_eq!(set.len(), 4);
        assert!(
            set.contains(0) && set.contains(u64::MAX) && set.contains(1 << 63) && set.contains(5)
        );
        assert!(!set.contains(6));
    }

    #[test]
    fn merging_recent_keeps_every_key() {
        let mut set = DoneSetBuilder::default().build();
        let keys: Vec<u64> = (0..(MERGE_AT as u64 * 2 + 7))
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        for k in &keys {
            assert!(set.insert(*k));
        }
        assert_eq!(set.len(), keys.len());
        assert!(set.recent.len() < MERGE_AT);
        assert!(keys.iter().all(|k| set.contains(*k) && !set.insert(*k)));
        assert!(!set.contains(1));
    }
}
