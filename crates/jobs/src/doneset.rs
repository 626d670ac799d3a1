//! A compact, read-mostly set of 64-bit fingerprints: the finished units of a job.
//!
//! A checkpoint's keys arrive sorted and are indexed as they are read ([`SortedKeys`]); the log's
//! (all of them, or the tail after a checkpoint) are collected in fixed-size chunks, then sorted
//! and merged into one sorted, de-duplicated `Vec<u64>` with a bucket index over the top bits
//! (4 bytes per ~16 entries). Memory is ~8.3 bytes per finished unit; a lookup touches the index and one small
//! bucket (one or two cache misses). Units finished during this process go into a small hash set.

use std::collections::HashSet;

/// `recent` is merged into `keys` when it reaches this many entries (~4 MB), bounding memory on
/// a long first run to the same ~8.3 bytes per unit.
const MERGE_AT: usize = 1 << 18;

/// Fingerprints per loading chunk (8 MB): peak memory while loading is the final vector plus one chunk.
const CHUNK: usize = 1 << 20;

/// Collects fingerprints while the log is read; [`DoneSetBuilder::build_onto`] turns it into a [`DoneSet`].
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

    /// The set of the pushed fingerprints and `base`'s (a checkpoint's keys). With room reserved
    /// in `base` for the pushed ones, peak memory is `base` plus one chunk; with none pushed,
    /// `base` and its index are used as they are (no pass over them).
    pub(crate) fn build_onto(self, base: SortedKeys) -> DoneSet {
        let total: usize = self.chunks.iter().map(Vec::len).sum();
        if total == 0 {
            let (keys, index, bits) = base.finish();
            return DoneSet {
                keys,
                index,
                bits,
                recent: HashSet::new(),
            };
        }
        let mut keys = base.keys;
        let sorted = keys.len();
        keys.reserve(total);
        for chunk in self.chunks {
            keys.extend_from_slice(&chunk); // each chunk is freed as soon as it is copied
        }
        if sorted == 0 {
            keys.sort_unstable();
        } else {
            keys[sorted..].sort_unstable();
            merge_tail(&mut keys, sorted);
        }
        keys.dedup();
        if keys.capacity() - keys.len() > keys.len() / 16 {
            keys.shrink_to_fit();
        }
        DoneSet::from_sorted(keys)
    }
}

/// Bucket bits for `n` keys: about 16 keys per bucket; at least 1 bit so shifts stay < 64.
fn bucket_bits(n: usize) -> u32 {
    (n / 16)
        .max(2)
        .next_power_of_two()
        .trailing_zeros()
        .clamp(1, 28)
}

/// Sorted, unique fingerprints and their bucket index, built in one pass as they are read in
/// order (a checkpoint's keys: no second pass over ~80 MB).
#[derive(Debug)]
pub(crate) struct SortedKeys {
    keys: Vec<u64>,
    index: Vec<u32>,
    bits: u32,
}

impl Default for SortedKeys {
    fn default() -> Self {
        Self::with_capacity(0, 0)
    }
}

impl SortedKeys {
    /// Room for `n` keys pushed now and `extra` merged later.
    pub(crate) fn with_capacity(n: usize, extra: usize) -> Self {
        let bits = bucket_bits(n);
        Self {
            keys: Vec::with_capacity(n.saturating_add(extra)),
            index: Vec::with_capacity((1 << bits) + 1),
            bits,
        }
    }

    /// Appends `k`; returns false (and ignores it) unless it is greater than the last key.
    pub(crate) fn push(&mut self, k: u64) -> bool {
        if self.keys.last().is_some_and(|&last| last >= k) {
            return false;
        }
        let b = (k >> (64 - self.bits)) as usize;
        while self.index.len() <= b {
            self.index.push(self.keys.len() as u32);
        }
        self.keys.push(k);
        true
    }

    /// The keys.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> &[u64] {
        &self.keys
    }

    fn finish(mut self) -> (Vec<u64>, Vec<u32>, u32) {
        while self.index.len() <= 1 << self.bits {
            self.index.push(self.keys.len() as u32);
        }
        (self.keys, self.index, self.bits)
    }
}

/// Merges the sorted `keys[..at]` and `keys[at..]` into one sorted vector, in place, with a
/// buffer of only the second run (the small log tail).
fn merge_tail(keys: &mut [u64], at: usize) {
    let add = keys[at..].to_vec();
    let (mut i, mut j, mut out) = (at, add.len(), keys.len());
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
        let bits = bucket_bits(keys.len());
        let buckets = 1usize << bits;
        let mut index = Vec::with_capacity(buckets + 1);
        for (i, k) in keys.iter().enumerate() {
            while index.len() <= (k >> (64 - bits)) as usize {
                index.push(i as u32);
            }
        }
        while index.len() <= buckets {
            index.push(keys.len() as u32);
        }
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

    /// Adds `fp`, known not to be in the set (no lookup).
    pub(crate) fn insert_new(&mut self, fp: u64) {
        debug_assert!(!self.contains(fp));
        self.recent.insert(fp);
        if self.recent.len() >= MERGE_AT {
            self.merge_recent();
        }
    }

    /// Moves `recent` into `keys` with an in-place merge from the back (no second copy of `keys`).
    fn merge_recent(&mut self) {
        let mut keys = std::mem::take(&mut self.keys);
        let at = keys.len();
        keys.reserve_exact(self.recent.len());
        keys.extend(self.recent.drain());
        keys[at..].sort_unstable();
        merge_tail(&mut keys, at);
        let recent = std::mem::take(&mut self.recent);
        *self = Self::from_sorted(keys);
        self.recent = recent; // keep its allocation
    }

    /// Every fingerprint, sorted (moves the ones finished in this process into the sorted vector).
    pub(crate) fn sorted_keys(&mut self) -> &[u64] {
        if !self.recent.is_empty() {
            self.merge_recent();
        }
        &self.keys
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
            let mut set = b.build_onto(SortedKeys::default());
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
    fn building_onto_sorted_keys_merges_and_dedups() {
        let base: Vec<u64> = (0..1000u64).map(|i| i * 4).collect();
        let mut b = DoneSetBuilder::default();
        for k in [3, 0, 3999, 4000, 2, 8, u64::MAX] {
            b.push(k);
        }
        let mut sorted = SortedKeys::with_capacity(base.len(), 0);
        assert!(base.iter().all(|k| sorted.push(*k)) && !sorted.push(4));
        let mut set = b.build_onto(sorted);
        let mut want: Vec<u64> = base
            .into_iter()
            .chain([3, 3999, 4000, 2, u64::MAX])
            .collect();
        want.sort_unstable();
        assert_eq!(set.len(), want.len());
        assert_eq!(set.sorted_keys(), &want[..]);
        assert!(set.insert(5) && set.sorted_keys().contains(&5) && set.contains(5));
    }

    #[test]
    fn keys_read_in_order_need_no_rebuild() {
        let keys: Vec<u64> = (0..5000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        let mut sorted = SortedKeys::with_capacity(keys.len(), 0);
        assert!(sorted_keys.iter().all(|k| sorted.push(*k)));
        let set = DoneSetBuilder::default().build_onto(sorted);
        let rebuilt = DoneSet::from_sorted(sorted_keys);
        assert_eq!(
            (&set.keys, &set.index, set.bits),
            (&rebuilt.keys, &rebuilt.index, rebuilt.bits)
        );
        assert!(keys.iter().all(|k| set.contains(*k)) && !set.contains(1));
    }

    #[test]
    fn extreme_keys() {
        let mut b = DoneSetBuilder::default();
        for k in [0, u64::MAX, 1 << 63, 5, 5] {
            b.push(k);
        }
        let set = b.build_onto(SortedKeys::default());
        assert_eq!(set.len(), 4);
        assert!(
            set.contains(0) && set.contains(u64::MAX) && set.contains(1 << 63) && set.contains(5)
        );
        assert!(!set.contains(6));
    }

    #[test]
    fn merging_recent_keeps_every_key() {
        let mut set = DoneSetBuilder::default().build_onto(SortedKeys::default());
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
