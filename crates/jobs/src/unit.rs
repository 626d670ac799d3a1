//! Unit ids and their 64-bit in-memory fingerprints.

use std::fmt;

use twox_hash::XxHash3_64;

use crate::JobError;

/// The longest unit id accepted, in bytes.
pub const MAX_UNIT_ID_LEN: usize = 1024;

/// The stable id of one unit of work, e.g. `trades/binance_spot/BTC-USDT/2026-11-30` or a gap's id.
///
/// A job kind's planner (a pure function of the job's arguments) produces the same ids, in the same
/// order, every time it is run with the same arguments; this is what makes a rerun resume. An id is
/// 1..=1024 bytes of UTF-8 without control characters (so one log record is one line).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitId(String);

impl UnitId {
    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, JobError> {
        let id = id.into();
        if is_valid(&id) {
            Ok(Self(id))
        } else {
            Err(JobError::InvalidUnitId(id))
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's 64-bit fingerprint (see [`fingerprint`]).
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.0)
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UnitId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UnitId {
    type Error = JobError;
    fn try_from(id: String) -> Result<Self, JobError> {
        Self::new(id)
    }
}

impl TryFrom<&str> for UnitId {
    type Error = JobError;
    fn try_from(id: &str) -> Result<Self, JobError> {
        Self::new(id)
    }
}

pub(crate) fn is_valid(id: &str) -> bool {
    let b = id.as_bytes();
    if b.is_empty() || b.len() > MAX_UNIT_ID_LEN {
        return false;
    }
    // Fast path, 8 bytes at a time: every byte printable ASCII (0x20..0x7f) is valid.
    let mut words = b.chunks_exact(8);
    let mut odd = 0u64;
    for w in &mut words {
        odd |= not_printable(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
    }
    for &c in words.remainder() {
        odd |= u64::from(!(0x20..0x7f).contains(&c));
    }
    if odd == 0 {
        return true;
    }
    // ASCII controls (C0 and DEL) are single bytes; the C1 controls U+0080..=U+009F are 0xC2 0x80..=0x9F.
    // A fold without early exit vectorizes.
    if b.iter()
        .fold(false, |bad, &c| bad | (c < 0x20) | (c == 0x7f))
    {
        return false;
    }
    b.is_ascii() || !id.chars().any(char::is_control)
}

/// Non-zero if a byte of `x` is below 0x20, is 0x7f or is ≥ 0x80 (exact as a whole: zero only if
/// every byte is printable ASCII; the classic "has less" / "has zero" byte tricks).
fn not_printable(x: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let below_space = x.wrapping_sub(0x20 * LO) & !x & HI;
    let del = x ^ (0x7f * LO);
    let is_del = del.wrapping_sub(LO) & !del & HI;
    below_space | is_del | (x & HI)
}

/// The 64-bit XXH3 fingerprint of a unit id: what the work directory keeps in memory instead of
/// the id's text (8 bytes per finished unit, so 10 M finished units cost 80 MB, not ~600 MB of
/// `String`s).
///
/// Collision trade-off: two distinct ids share a fingerprint with probability 2⁻⁶⁴, so over a plan
/// of `n` units checked against `d` finished ones the chance that any unfinished unit is wrongly
/// taken as finished is at most `n·d / 2⁶⁴` — about 5·10⁻⁶ for a 10 M × 10 M job, and 5·10⁻¹⁰ at
/// 100 k units. The log stores full ids; the checkpoint stores fingerprints (and per-chunk digests
/// of them) but can always be rebuilt from the log; a `verify` run finds the (vanishingly rare)
/// skipped unit.
pub fn fingerprint(id: &str) -> u64 {
    fingerprint_bytes(id.as_bytes())
}

pub(crate) fn fingerprint_bytes(id: &[u8]) -> u64 {
    XxHash3_64::oneshot(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, byte by byte.
    fn slow(id: &str) -> bool {
        !id.is_empty() && id.len() <= MAX_UNIT_ID_LEN && !id.chars().any(char::is_control)
    }

    proptest! {
        #[test]
        fn validation_matches_its_definition(bytes in proptest::collection::vec(
            prop_oneof![0x1eu8..=0x22, 0x7du8..=0x81, any::<u8>(), Just(b'a')], 0..40)) {
            let id = String::from_utf8_lossy(&bytes);
            prop_assert_eq!(is_valid(&id), slow(&id), "{:?}", id);
        }
    }

    #[test]
    fn every_single_byte_in_every_position() {
        for len in 1..=17 {
            for at in 0..len {
                for c in 0..=0x7fu8 {
                    let mut id = vec![b'x'; len];
                    id[at] = c;
                    let id = String::from_utf8(id).unwrap();
                    assert_eq!(is_valid(&id), slow(&id), "{id:?}");
                }
                for c in ['\u{80}', '\u{9f}', '\u{a0}', 'é', '\u{2028}'] {
                    let mut id: Vec<char> = vec!['x'; len];
                    id[at] = c;
                    let id: String = id.into_iter().collect();
                    assert_eq!(is_valid(&id), slow(&id), "{id:?}");
                }
            }
        }
    }
}
