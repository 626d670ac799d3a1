//! The checkpoint (`checkpoint.bin`): the work directory's state as of a byte offset of the
//! status log, so opening reads it plus only the log records after that offset.
//!
//! Binary, little-endian: [`MAGIC`], then eight `u64`s — the log offset covered, the CRC-32 of the
//! log's last ≤ 4096 bytes before it ([`LOG_WINDOW`], ties the checkpoint to that log), corrupt log
//! lines seen before it, [`PLAN_CHUNK`], the number of done fingerprints, the plan map's length in
//! ordinals and in chunks, and the byte length of the failures' JSON — then the done fingerprints
//! (sorted, unique), the plan map's chunk digests and bit words, the failures as a JSON array, and
//! the CRC-32 of everything before it. A file of the wrong length, a bad checksum, unsorted keys or
//! an inconsistent plan map is rejected whole ([`JobError::BadCheckpoint`]); the work directory
//! then reads the whole log instead, which always holds every record (it is never truncated).
//!
//! Written atomically: a temporary file, `fsync`, rename over the old one, `fsync` of the
//! directory; the log is `fsync`ed before, so the offset it names is durable. A crash at any step
//! leaves the old checkpoint (or none) or the new one, each consistent with the log.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::JobError;
use crate::doneset::SortedKeys;
use crate::log::Failure;
use crate::planmap::PlanMap;
use crate::unit::is_valid;
use crate::workdir::PLAN_CHUNK;

/// The file name of the checkpoint inside a work directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
/// The temporary file a checkpoint is written to before the rename (a leftover is removed on open).
pub(crate) const CHECKPOINT_TMP: &str = ".checkpoint.bin.tmp";
/// The first 8 bytes of a checkpoint (format version 1).
const MAGIC: &[u8; 8] = b"MPJCKPT1";
/// Header bytes: the magic and eight `u64`s.
const HEADER_LEN: u64 = 8 + 8 * 8;
/// The log bytes (at most) before the covered offset whose CRC-32 the checkpoint keeps.
pub(crate) const LOG_WINDOW: u64 = 4096;

/// A checkpoint's contents.
#[derive(Debug, Default)]
pub(crate) struct Checkpoint {
    /// Bytes of the status log (from its start) whose records the checkpoint includes.
    pub(crate) log_offset: u64,
    /// CRC-32 of the log bytes `[log_offset - min(log_offset, LOG_WINDOW), log_offset)`.
    pub(crate) window_crc: u32,
    /// Corrupt log lines ignored before `log_offset`.
    pub(crate) corrupt_lines: u64,
    /// Fingerprints of every done unit, sorted and unique, indexed.
    pub(crate) keys: SortedKeys,
    /// The plan map of the last run's plan, if any.
    pub(crate) map: Option<PlanMap>,
    /// Units whose last attempt failed (none of them done).
    pub(crate) failures: Vec<Failure>,
}

/// The header's counts, checked against the file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    log_offset: u64,
    window_crc: u32,
    corrupt_lines: u64,
    keys: u64,
    map_len: u64,
    digests: u64,
    failures_len: u64,
}

impl Header {
    fn bit_words(&self) -> u64 {
        self.map_len.div_ceil(64)
    }

    /// The file length this header implies, `None` on overflow.
    fn file_len(&self) -> Option<u64> {
        let words = self
            .keys
            .checked_add(self.digests)?
            .checked_add(self.bit_words())?;
        HEADER_LEN
            .checked_add(words.checked_mul(8)?)?
            .checked_add(self.failures_len)?
            .checked_add(4)
    }
}

/// Decodes and checks a header (everything but the trailing checksum, which covers it too).
fn parse_header(b: &[u8; HEADER_LEN as usize], file_len: u64) -> Result<Header, String> {
    if &b[..8] != MAGIC {
        return Err("not a marketprism-jobs checkpoint".into());
    }
    let word = |i: usize| u64::from_le_bytes(b[8 + 8 * i..16 + 8 * i].try_into().unwrap_or([0; 8]));
    let h = Header {
        log_offset: word(0),
        window_crc: u32::try_from(word(1)).map_err(|_| "bad window checksum")?,
        corrupt_lines: word(2),
        keys: word(4),
        map_len: word(5),
        digests: word(6),
        failures_len: word(7),
    };
    if word(3) != PLAN_CHUNK as u64 {
        return Err(format!(
            "plan chunk {} (this version: {PLAN_CHUNK})",
            word(3)
        ));
    }
    if h.digests != h.map_len.div_ceil(PLAN_CHUNK as u64) {
        return Err("plan map digests do not match its length".into());
    }
    if h.file_len() != Some(file_len) {
        return Err(format!(
            "length {file_len} does not match its header (torn or damaged)"
        ));
    }
    Ok(h)
}

/// Reads `n` little-endian `u64`s through `r` and the checksum, passing each to `push` (in one
/// pass over a 1 MiB buffer: ~80 MB of keys are touched once); false if `push` refused one.
fn read_words(
    r: &mut impl Read,
    crc: &mut crc32fast::Hasher,
    n: u64,
    mut push: impl FnMut(u64) -> bool,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; (n as usize * 8).min(1 << 20)];
    let mut left = n as usize * 8;
    let mut ok = true;
    while left > 0 {
        let part = &mut buf[..left.min(1 << 20)];
        r.read_exact(part)?;
        crc.update(part);
        for w in part.chunks_exact(8) {
            ok &= push(u64::from_le_bytes(w.try_into().unwrap_or([0; 8])));
        }
        left -= part.len();
    }
    Ok(ok)
}

/// Reads the checkpoint at `path`: `Ok(None)` if there is none, [`JobError::BadCheckpoint`] if it
/// is damaged. `extra(log_offset)` is how many more fingerprints to reserve room for in `keys`
/// (the log tail's, merged in later without a reallocation).
pub(crate) fn read(
    path: &Path,
    extra: impl FnOnce(u64) -> usize,
) -> Result<Option<Checkpoint>, JobError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JobError::io("open", path)(e)),
    };
    let bad = |reason: String| JobError::BadCheckpoint {
        path: path.to_owned(),
        reason,
    };
    let len = file.metadata().map_err(JobError::io("stat", path))?.len();
    let mut r = file; // large reads: no BufReader copy
    let mut crc = crc32fast::Hasher::new();
    let mut head = [0u8; HEADER_LEN as usize];
    if len < HEADER_LEN + 4 {
        return Err(bad(format!("{len} bytes: too short")));
    }
    r.read_exact(&mut head)
        .map_err(JobError::io("read", path))?;
    crc.update(&head);
    let h = parse_header(&head, len).map_err(bad)?;
    let mut keys = SortedKeys::with_capacity(h.keys as usize, extra(h.log_offset));
    let sorted = read_words(&mut r, &mut crc, h.keys, |k| keys.push(k))
        .map_err(JobError::io("read", path))?;
    if !sorted {
        return Err(bad("done fingerprints not sorted".into()));
    }
    let mut digests = Vec::with_capacity(h.digests as usize);
    read_words(&mut r, &mut crc, h.digests, |d| {
        digests.push(d);
        true
    })
    .map_err(JobError::io("read", path))?;
    let mut bits = Vec::with_capacity(h.bit_words() as usize);
    read_words(&mut r, &mut crc, h.bit_words(), |w| {
        bits.push(w);
        true
    })
    .map_err(JobError::io("read", path))?;
    let mut json = vec![0u8; h.failures_len as usize];
    r.read_exact(&mut json)
        .map_err(JobError::io("read", path))?;
    crc.update(&json);
    let mut stored = [0u8; 4];
    r.read_exact(&mut stored)
        .map_err(JobError::io("read", path))?;
    if u32::from_le_bytes(stored) != crc.finalize() {
        return Err(bad("checksum mismatch (damaged)".into()));
    }
    let map = PlanMap {
        len: h.map_len,
        digests,
        bits,
    };
    if !map.is_consistent() {
        return Err(bad("inconsistent plan map".into()));
    }
    let failures: Vec<Failure> = serde_json::from_slice(&json)?;
    if failures.iter().any(|f| !is_valid(&f.id)) {
        return Err(bad("invalid failed unit id".into()));
    }
    Ok(Some(Checkpoint {
        log_offset: h.log_offset,
        window_crc: h.window_crc,
        corrupt_lines: h.corrupt_lines,
        keys,
        map: (map.len > 0).then_some(map),
        failures,
    }))
}

/// A writer that checksums what goes through it.
struct Crc<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_words(w: &mut impl Write, words: &[u64]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1 << 16);
    for part in words.chunks(1 << 13) {
        buf.clear();
        buf.extend(part.iter().flat_map(|k| k.to_le_bytes()));
        w.write_all(&buf)?;
    }
    Ok(())
}

/// What [`write`] saves (borrowed from the work directory).
pub(crate) struct Snapshot<'a> {
    pub(crate) log_offset: u64,
    pub(crate) window_crc: u32,
    pub(crate) corrupt_lines: u64,
    /// Sorted, unique.
    pub(crate) keys: &'a [u64],
    pub(crate) map: Option<&'a PlanMap>,
    pub(crate) failures: Vec<&'a Failure>,
}

/// Writes `snap` as `dir`'s checkpoint atomically (temporary file, `fsync`, rename, `fsync` of
/// `dir`). The caller has made the log durable up to `snap.log_offset`.
pub(crate) fn write(dir: &Path, snap: &Snapshot<'_>) -> Result<(), JobError> {
    let tmp = dir.join(CHECKPOINT_TMP);
    let json = serde_json::to_vec(&snap.failures)?;
    let empty = PlanMap::default();
    let map = snap.map.unwrap_or(&empty);
    let header = [
        snap.log_offset,
        u64::from(snap.window_crc),
        snap.corrupt_lines,
        PLAN_CHUNK as u64,
        snap.keys.len() as u64,
        map.len,
        map.digests.len() as u64,
        json.len() as u64,
    ];
    let file = File::create(&tmp).map_err(JobError::io("create", &tmp))?;
    let mut w = Crc {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: crc32fast::Hasher::new(),
    };
    let body = (|| {
        w.write_all(MAGIC)?;
        write_words(&mut w, &header)?;
        write_words(&mut w, snap.keys)?;
        write_words(&mut w, &map.digests)?;
        write_words(&mut w, &map.bits)?;
        w.write_all(&json)?;
        let crc = w.crc.clone().finalize();
        w.inner.write_all(&crc.to_le_bytes())?;
        w.inner.flush()
    })();
    body.map_err(JobError::io("write", &tmp))?;
    let file = w
        .inner
        .into_inner()
        .map_err(|e| JobError::io("write", &tmp)(e.into_error()))?;
    file.sync_all().map_err(JobError::io("fsync", &tmp))?;
    drop(file);
    let path = dir.join(CHECKPOINT_FILE);
    fs::rename(&tmp, &path).map_err(JobError::io("rename", &path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(JobError::io("fsync", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<u64>, PlanMap, Vec<Failure>) {
        let keys: Vec<u64> = (0..100u64).map(|i| i * 3 + 1).collect();
        let mut map = PlanMap::default();
        let done: Vec<bool> = (0..130).map(|i| i % 2 == 0).collect();
        map.push_chunk(42, &done);
        let failures = vec![Failure {
            id: "a/b".into(),
            step: "fetch".into(),
            error: "HTTP 500\nbody".into(),
            at: "2026-11-30T00:00:00Z".into(),
        }];
        (keys, map, failures)
    }

    #[test]
    fn round_trip_and_every_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, map, failures) = sample();
        let snap = Snapshot {
            log_offset: 12345,
            window_crc: 0xdead_beef,
            corrupt_lines: 2,
            keys: &keys,
            map: Some(&map),
            failures: failures.iter().collect(),
        };
        write(dir.path(), &snap).unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        assert!(!dir.path().join(CHECKPOINT_TMP).exists());
        let c = read(&path, |_| 10).unwrap().unwrap();
        assert_eq!(
            (c.log_offset, c.window_crc, c.corrupt_lines),
            (12345, 0xdead_beef, 2)
        );
        assert_eq!(
            (c.keys.keys(), c.map.as_ref(), &c.failures),
            (&keys[..], Some(&map), &failures)
        );

        let good = fs::read(&path).unwrap();
        // Every flipped bit and every truncation is rejected, never read as other units.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 1 << (i % 8);
            fs::write(&path, &bad).unwrap();
            assert!(
                matches!(read(&path, |_| 0), Err(JobError::BadCheckpoint { .. })),
                "flip at {i}"
            );
        }
        for cut in 0..good.len() {
            fs::write(&path, &good[..cut]).unwrap();
            assert!(
                matches!(read(&path, |_| 0), Err(JobError::BadCheckpoint { .. })),
                "cut at {cut}"
            );
        }
        fs::remove_file(&path).unwrap();
        assert!(read(&path, |_| 0).unwrap().is_none());
    }
}
