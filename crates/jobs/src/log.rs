//! The append-only status log of a work directory (`status.log`).
//!
//! Format: a header line [`HEADER`], then one record per line:
//! `<crc32 of the rest, 8 lowercase hex digits> <kind> <payload>\n` where kind `D` (done) has the unit
//! id as payload and kind `F` (failed) a JSON [`Failure`]. A line without its final newline (a write
//! torn by kill -9) is cut off on open; a complete line whose checksum or syntax is wrong is
//! counted as corrupt and ignored. Either way the unit it named is simply not done, and is redone.
//!
//! Writes go through a buffer; [`StatusLog::sync`] flushes it and `fsync`s the file. Only after
//! `sync` returns are the records durable, and only then does the runner report them done.
//!
//! The log is never truncated (except a torn last line): a checkpoint (`crate::checkpoint`) names
//! the offset up to which it includes the log's records, and opening reads only the records after
//! it; without a usable checkpoint the whole log is read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::JobError;
use crate::doneset::DoneSetBuilder;
use crate::unit::{fingerprint, fingerprint_bytes, is_valid};

/// The first line of every status log (format version 1).
pub const HEADER: &str = "marketprism-jobs status log v1";

/// One failed unit, as recorded (the last failure of a unit wins; a later success clears it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The unit id.
    pub id: String,
    /// The step that failed.
    pub step: String,
    /// The error message.
    pub error: String,
    /// When it failed, RFC 3339 UTC.
    pub at: String,
}

/// What reading the log found.
#[derive(Default)]
pub(crate) struct Loaded {
    pub(crate) done: DoneSetBuilder,
    /// Failures by fingerprint, possibly including units also done (the caller drops those).
    pub(crate) failures: HashMap<u64, Failure>,
    /// Complete lines with a bad checksum or syntax, ignored.
    pub(crate) corrupt_lines: u64,
    /// Bytes of a torn last line that were cut off.
    pub(crate) torn_bytes: u64,
    /// Complete records read (from the start offset on).
    pub(crate) records: u64,
}

/// The open log, appending.
pub(crate) struct StatusLog {
    path: PathBuf,
    out: BufWriter<File>,
    line: Vec<u8>,
    /// Records written since the last `sync`.
    unsynced: usize,
    /// The log's length in bytes, buffered records included.
    len: u64,
    /// Records after the offset the last checkpoint covers (read on open or appended since).
    since_checkpoint: u64,
}

impl StatusLog {
    /// Opens (creating if needed) the log at `path`, reads every record from byte `from` on (0: all;
    /// else the offset a checkpoint covers, ≤ the file's length and just after a newline) and cuts
    /// off a torn tail. `file` is the already-locked handle of the log opened read + write.
    pub(crate) fn open(path: &Path, mut file: File, from: u64) -> Result<(Self, Loaded), JobError> {
        let len = file.metadata().map_err(JobError::io("stat", path))?.len();
        let mut loaded = Loaded::default();
        let valid_len = if len == 0 {
            let header = format!("{HEADER}\n");
            file.write_all(header.as_bytes())
                .map_err(JobError::io("write", path))?;
            header.len() as u64
        } else {
            read_records(path, &file, from, &mut loaded)?
        };
        if valid_len < len {
            loaded.torn_bytes = len - valid_len;
            tracing::warn!(path = %path.display(), bytes = loaded.torn_bytes, "cutting off a torn last log line");
            file.set_len(valid_len)
                .map_err(JobError::io("truncate", path))?;
        }
        if len == 0 || valid_len < len {
            file.sync_all().map_err(JobError::io("fsync", path))?;
        }
        file.seek(SeekFrom::End(0))
            .map_err(JobError::io("seek", path))?;
        let out = BufWriter::with_capacity(256 * 1024, file);
        Ok((
            Self {
                path: path.to_owned(),
                out,
                line: Vec::with_capacity(256),
                unsynced: 0,
                len: valid_len,
                since_checkpoint: loaded.records + loaded.corrupt_lines,
            },
            loaded,
        ))
    }

    /// Buffers a done record for `id` (not durable until [`Self::sync`]).
    pub(crate) fn append_done(&mut self, id: &str) -> Result<(), JobError> {
        self.line.clear();
        self.line.extend_from_slice(b"D ");
        self.line.extend_from_slice(id.as_bytes());
        self.write_line()
    }

    /// Buffers a failure record (not durable until [`Self::sync`]).
    pub(crate) fn append_failed(&mut self, failure: &Failure) -> Result<(), JobError> {
        self.line.clear();
        self.line.extend_from_slice(b"F ");
        serde_json::to_writer(&mut self.line, failure)?;
        self.write_line()
    }

    fn write_line(&mut self) -> Result<(), JobError> {
        let crc = crc32fast::hash(&self.line);
        let path = &self.path;
        write!(self.out, "{crc:08x} ").map_err(JobError::io("append", path))?;
        self.out
            .write_all(&self.line)
            .map_err(JobError::io("append", path))?;
        self.out
            .write_all(b"\n")
            .map_err(JobError::io("append", path))?;
        self.unsynced += 1;
        self.since_checkpoint += 1;
        self.len += 8 + 1 + self.line.len() as u64 + 1;
        Ok(())
    }

    /// Records buffered or written since the last sync.
    pub(crate) fn unsynced(&self) -> usize {
        self.unsynced
    }

    /// The log's length in bytes, buffered records included.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Records after the offset the last checkpoint covers.
    pub(crate) fn since_checkpoint(&self) -> u64 {
        self.since_checkpoint
    }

    /// Notes that a checkpoint now covers the whole log.
    pub(crate) fn checkpointed(&mut self) {
        self.since_checkpoint = 0;
    }

    /// CRC-32 of the log's bytes `[end - window, end)` (written: call after [`Self::sync`]);
    /// `None` if they do not end a line.
    pub(crate) fn window_crc(&self, end: u64, window: u64) -> Result<Option<u32>, JobError> {
        window_crc(&self.path, self.out.get_ref(), end, window)
    }

    /// Writes the buffer and `fsync`s the file: every record appended so far is durable on return.
    pub(crate) fn sync(&mut self) -> Result<(), JobError> {
        if self.unsynced == 0 {
            return Ok(());
        }
        self.out
            .flush()
            .map_err(JobError::io("append", &self.path))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(JobError::io("fsync", &self.path))?;
        self.unsynced = 0;
        Ok(())
    }
}

/// CRC-32 of `file`'s bytes `[end - min(end, window), end)`; `None` if they do not end a line
/// (`end` is not between two records).
pub(crate) fn window_crc(
    path: &Path,
    file: &File,
    end: u64,
    window: u64,
) -> Result<Option<u32>, JobError> {
    let start = end - end.min(window);
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start)
        .map_err(JobError::io("read", path))?;
    Ok((buf.last() == Some(&b'\n')).then(|| crc32fast::hash(&buf)))
}

/// Reads the header, then every record from byte `from` on (0: just after the header); returns
/// the length of the prefix made of complete lines.
fn read_records(path: &Path, file: &File, from: u64, loaded: &mut Loaded) -> Result<u64, JobError> {
    let mut reader = BufReader::with_capacity(if from == 0 { 4 << 20 } else { 1 << 20 }, file);
    let mut line = Vec::with_capacity(4096);
    let mut valid = reader
        .read_until(b'\n', &mut line)
        .map_err(JobError::io("read", path))? as u64;
    if line.last() != Some(&b'\n') || &line[..line.len() - 1] != HEADER.as_bytes() {
        let found = String::from_utf8_lossy(&line)
            .trim_end()
            .chars()
            .take(80)
            .collect();
        return Err(JobError::BadHeader {
            path: path.to_owned(),
            found,
        });
    }
    if from > valid {
        reader
            .seek(SeekFrom::Start(from))
            .map_err(JobError::io("seek", path))?;
        valid = from;
    }
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(JobError::io("read", path))?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(valid); // end of file, or a torn last line that is cut off
        }
        valid += n as u64;
        if parse_record(&line[..n - 1], loaded) {
            loaded.records += 1;
        } else {
            loaded.corrupt_lines += 1;
        }
    }
}

/// Applies one complete line (without its newline); false if it is corrupt.
fn parse_record(line: &[u8], loaded: &mut Loaded) -> bool {
    let Some((crc, rest)) = split_crc(line) else {
        return false;
    };
    if crc32fast::hash(rest) != crc {
        return false;
    }
    match rest {
        // The checksum vouches for the id (only valid ids are ever written): no UTF-8 re-validation
        // on the 10 M-record path. Fingerprints are over the same bytes as `fingerprint(&str)`.
        [b'D', b' ', id @ ..] if !id.is_empty() => loaded.done.push(fingerprint_bytes(id)),
        [b'F', b' ', json @ ..] => match serde_json::from_slice::<Failure>(json) {
            Ok(f) if is_valid(&f.id) => {
                loaded.failures.insert(fingerprint(&f.id), f);
            }
            _ => return false,
        },
        _ => return false,
    }
    true
}

fn split_crc(line: &[u8]) -> Option<(u32, &[u8])> {
    if line.len() < 10 || line[8] != b' ' {
        return None;
    }
    let hex = std::str::from_utf8(&line[..8]).ok()?;
    Some((u32::from_str_radix(hex, 16).ok()?, &line[9..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(bytes: &[u8]) -> Option<Loaded> {
        let mut l = Loaded::default();
        let mut ok = true;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            ok &= parse_record(line, &mut l);
        }
        ok.then_some(l)
    }

    #[test]
    fn checksums_reject_any_flipped_byte() {
        let rest = b"D trades/binance_spot/BTC-USDT/2026-11-30";
        let line = format!(
            "{:08x} {}",
            crc32fast::hash(rest),
            std::str::from_utf8(rest).unwrap()
        );
        assert!(load(line.as_bytes()).is_some());
        for i in 0..line.len() {
            let mut bad = line.clone().into_bytes();
            bad[i] ^= 0x04;
            assert!(load(&bad).is_none(), "flip at {i} accepted");
        }
        assert!(
            load(&line.as_bytes()[..line.len() - 1]).is_none(),
            "a truncated record is accepted"
        );
    }
}
