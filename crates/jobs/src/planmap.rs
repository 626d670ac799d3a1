//! The plan map: which ordinals of a plan were done, guarded by a digest per chunk of the plan.
//!
//! A plan is cut into chunks of [`PLAN_CHUNK`] ids (ordinals `c·PLAN_CHUNK ..`). The map holds, per
//! chunk, the XXH3 digest of the chunk's fingerprints (in order, so it covers the ids, their order
//! and the chunk's length), and one bit per ordinal: set only if that unit was durably done when
//! the map was saved. A later pass over a chunk whose digest matches takes a set bit as "done"
//! with one sequential bit read instead of a random lookup into the ~80 MB done set; a clear bit,
//! or a chunk whose digest differs (the plan changed), falls back to the done set. A set bit is
//! therefore only ever a shortcut for an answer the done set would also give (done is final).

use twox_hash::XxHash3_64;

use crate::workdir::PLAN_CHUNK;

/// Done bits by plan ordinal, with a digest per plan chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PlanMap {
    /// Ordinals covered: the plan's length when the map was built.
    pub(crate) len: u64,
    /// `digests[c]` is [`chunk_digest`] of chunk `c`'s fingerprints.
    pub(crate) digests: Vec<u64>,
    /// Bit `o % 64` of `bits[o / 64]` is set if the unit at ordinal `o` is done.
    pub(crate) bits: Vec<u64>,
}

/// The digest of one plan chunk: XXH3 over its fingerprints, little-endian, in plan order.
pub(crate) fn chunk_digest(fps: &[u64]) -> u64 {
    let mut bytes = vec![0u8; fps.len() * 8];
    for (b, fp) in bytes.chunks_exact_mut(8).zip(fps) {
        b.copy_from_slice(&fp.to_le_bytes());
    }
    XxHash3_64::oneshot(&bytes)
}

impl PlanMap {
    /// Whether chunk `chunk` (of `n` ids, digest `digest`) is the one the map was built from.
    pub(crate) fn chunk_matches(&self, chunk: usize, n: usize, digest: u64) -> bool {
        let start = chunk as u64 * PLAN_CHUNK as u64;
        self.digests.get(chunk) == Some(&digest)
            && start + n as u64 <= self.len
            && (n == PLAN_CHUNK || start + n as u64 == self.len)
    }

    /// Whether ordinal `o`'s bit is set.
    pub(crate) fn bit(&self, o: u64) -> bool {
        self.bits
            .get((o / 64) as usize)
            .is_some_and(|w| w >> (o % 64) & 1 == 1)
    }

    /// Appends the next chunk (its digest and its done flags); chunks must come in plan order,
    /// each but the last [`PLAN_CHUNK`] long.
    pub(crate) fn push_chunk(&mut self, digest: u64, done: &[bool]) {
        debug_assert!(self.len.is_multiple_of(PLAN_CHUNK as u64));
        self.digests.push(digest);
        let start = self.len;
        self.len += done.len() as u64;
        self.bits.resize(self.len.div_ceil(64) as usize, 0);
        for (i, d) in done.iter().enumerate() {
            if *d {
                self.set(start + i as u64);
            }
        }
    }

    /// Sets ordinal `o`'s bit (a unit of the plan just recorded done). Out of range: ignored.
    pub(crate) fn set(&mut self, o: u64) {
        if o < self.len {
            self.bits[(o / 64) as usize] |= 1 << (o % 64);
        }
    }

    /// Whether the shapes agree: one digest per chunk of `len`, one bit per ordinal.
    pub(crate) fn is_consistent(&self) -> bool {
        self.digests.len() as u64 == self.len.div_ceil(PLAN_CHUNK as u64)
            && self.bits.len() as u64 == self.len.div_ceil(64)
            && (self.len.is_multiple_of(64)
                || self.bits.last().is_some_and(|w| w >> (self.len % 64) == 0))
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        (self.digests.capacity() + self.bits.capacity()) * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_matches_only_itself() {
        let fps: Vec<u64> = (0..PLAN_CHUNK as u64 + 10).map(|i| i * 7 + 1).collect();
        let (a, b) = fps.split_at(PLAN_CHUNK);
        let mut map = PlanMap::default();
        let done_a: Vec<bool> = (0..a.len()).map(|i| i % 3 == 0).collect();
        map.push_chunk(chunk_digest(a), &done_a);
        map.push_chunk(chunk_digest(b), &[false; 10]);
        assert!(map.is_consistent());
        assert!(map.chunk_matches(0, a.len(), chunk_digest(a)));
        assert!(map.chunk_matches(1, b.len(), chunk_digest(b)));
        assert!(
            !map.chunk_matches(1, 9, chunk_digest(&b[..9])),
            "a shorter last chunk"
        );
        assert!(
            !map.chunk_matches(2, b.len(), chunk_digest(b)),
            "past the end"
        );
        let mut swapped = b.to_vec();
        swapped.swap(0, 1);
        assert!(
            !map.chunk_matches(1, 10, chunk_digest(&swapped)),
            "reordered"
        );
        assert!((0..a.len() as u64).all(|o| map.bit(o) == (o % 3 == 0)));
        map.set(PLAN_CHUNK as u64 + 9);
        assert!(map.bit(PLAN_CHUNK as u64 + 9) && !map.bit(PLAN_CHUNK as u64 + 10));
        map.set(1 << 40);
        assert!(map.is_consistent());
    }
}
