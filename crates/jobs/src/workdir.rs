//! A job's work directory: its checkpoint and status log loaded into memory, the resume
//! selection, recording, and writing checkpoints.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::checkpoint::{self, CHECKPOINT_FILE, CHECKPOINT_TMP, Checkpoint, LOG_WINDOW, Snapshot};
use crate::doneset::DoneSet;
use crate::log::{self, Failure, StatusLog};
use crate::planmap::{PlanMap, chunk_digest};
use crate::progress::now_rfc3339;
use crate::unit::fingerprint;
use crate::{JobError, UnitError, UnitId};

/// The file name of the status log inside a work directory.
pub const LOG_FILE: &str = "status.log";

/// Which units of a plan a run works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selection {
    /// Units neither done nor failed: what rerunning the same command does (it resumes).
    #[default]
    Pending,
    /// Only the units whose last attempt failed (`--retry-failed`).
    FailedOnly,
    /// Every unit not done, failed ones included.
    PendingAndFailed,
}

/// How many plan ids [`WorkDir::pending`] looks up at once; also the plan map's chunk (a chunk
/// of a plan starts at an ordinal that is a multiple of it).
pub const PLAN_CHUNK: usize = 1 << 16;

/// The smallest log record (`crc D x\n`), to bound how many records a log tail can hold.
const MIN_RECORD_LEN: u64 = 13;

/// Counts of a plan against a work directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tally {
    /// Units in the plan.
    pub total: u64,
    /// Of them, done.
    pub done: u64,
    /// Of them, failed (and not done).
    pub failed: u64,
    /// Of them, selected by the [`Selection`] the tally was made for.
    pub selected: u64,
}

/// An open work directory. Holds an exclusive lock on its status log until dropped, so two runs
/// of one job cannot interleave.
///
/// Memory: ~8.3 bytes per finished unit (see [`crate::fingerprint`]), the failures in full, and
/// the plan map of the last checkpoint (1 bit per unit of its plan).
pub struct WorkDir {
    dir: PathBuf,
    job: String,
    log: StatusLog,
    done: DoneSet,
    failures: HashMap<u64, Failure>,
    corrupt_lines: u64,
    torn_bytes: u64,
    /// Done bits by ordinal of the last checkpointed plan: the fast path of [`Self::pending`].
    plan_map: Option<PlanMap>,
    /// Whether opening read a checkpoint (and only the log records after it).
    checkpoint_used: bool,
    /// Log records read on open.
    records_read: u64,
}

/// What a plan chunk's lookup found (see [`WorkDir::select_chunk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkLookup {
    /// The chunk's digest, when it was given at a chunk-aligned ordinal.
    pub(crate) digest: Option<u64>,
    /// Whether the plan map's bits were used (the chunk is the checkpointed plan's).
    pub(crate) mapped: bool,
}

impl WorkDir {
    /// Opens the work directory `dir` of job `job`, creating it if needed, and loads its checkpoint
    /// and the status log after it, or the whole log if there is no usable checkpoint (cutting off
    /// a torn last line: see the crate docs). Fails with [`JobError::Locked`] if another process
    /// has it open; a damaged checkpoint is not an error (it is logged and the log is read).
    pub fn open(dir: impl AsRef<Path>, job: &str) -> Result<Self, JobError> {
        let dir = dir.as_ref().to_owned();
        fs::create_dir_all(&dir).map_err(JobError::io("create", &dir))?;
        let path = dir.join(LOG_FILE);
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(JobError::io("open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(JobError::Locked(dir)),
            Err(fs::TryLockError::Error(e)) => return Err(JobError::io("lock", &path)(e)),
        }
        let ckpt = load_checkpoint(&dir, &path, &file)?.unwrap_or_default();
        let (log, loaded) = StatusLog::open(&path, file, ckpt.log_offset)?;
        if !existed {
            // Make the new log's directory entry durable too.
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(JobError::io("fsync", &dir))?;
        }
        let checkpoint_used = ckpt.log_offset > 0;
        let done = loaded.done.build_onto(ckpt.keys);
        // Replayed in log order: the checkpoint's failures, then the tail's; a success clears one.
        let mut failures: HashMap<u64, Failure> = ckpt
            .failures
            .into_iter()
            .map(|f| (fingerprint(&f.id), f))
            .collect();
        failures.extend(loaded.failures);
        failures.retain(|fp, _| !done.contains(*fp));
        Ok(Self {
            dir,
            job: job.to_owned(),
            log,
            done,
            failures,
            corrupt_lines: ckpt.corrupt_lines + loaded.corrupt_lines,
            torn_bytes: loaded.torn_bytes,
            plan_map: ckpt.map,
            checkpoint_used,
            records_read: loaded.records,
        })
    }

    /// Writes a checkpoint of everything recorded so far (after making the log durable), keeping
    /// the plan map of the last one: the next [`Self::open`] reads it and only the log records
    /// appended after it. The [`run`](crate::run)ner calls this itself (see
    /// [`RunOptions`](crate::RunOptions)); costs one sequential write of ~8 bytes per done unit.
    pub fn checkpoint(&mut self) -> Result<(), JobError> {
        let map = self.plan_map.take();
        let result = self.checkpoint_with(map.as_ref());
        self.plan_map = map;
        result
    }

    /// [`Self::checkpoint`] with `map` (sound: a set bit's unit is done) as the new plan map.
    pub(crate) fn checkpoint_with(&mut self, map: Option<&PlanMap>) -> Result<(), JobError> {
        self.log.sync()?;
        let log_offset = self.log.len();
        let window_crc = self
            .log
            .window_crc(log_offset, LOG_WINDOW)?
            .ok_or_else(|| JobError::BadCheckpoint {
                path: self.dir.join(CHECKPOINT_FILE),
                reason: format!("not written: log offset {log_offset} is not between two records"),
            })?;
        let keys = self.done.sorted_keys();
        let snap = Snapshot {
            log_offset,
            window_crc,
            corrupt_lines: self.corrupt_lines,
            keys,
            map,
            failures: self.failures.values().collect(),
        };
        checkpoint::write(&self.dir, &snap)?;
        self.log.checkpointed();
        if let Some(map) = map {
            self.plan_map = Some(map.clone());
        }
        tracing::debug!(dir = %self.dir.display(), log_offset, done = self.done.len(), "checkpoint written");
        Ok(())
    }

    /// Log records after the offset the last checkpoint covers (what the next open must read).
    pub fn records_since_checkpoint(&self) -> u64 {
        self.log.since_checkpoint()
    }

    /// Whether [`Self::open`] used a checkpoint (and read only the log records after it).
    pub fn checkpoint_used(&self) -> bool {
        self.checkpoint_used
    }

    /// Complete log records read by [`Self::open`] (all of them without a usable checkpoint).
    pub fn records_read(&self) -> u64 {
        self.records_read
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The job's name.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// Whether unit `id` is recorded done (durably, or buffered by this process).
    pub fn is_done(&self, id: &str) -> bool {
        self.done.contains(fingerprint(id))
    }

    /// The last failure of unit `id`, unless it has since succeeded.
    pub fn failure(&self, id: &str) -> Option<&Failure> {
        self.failures.get(&fingerprint(id))
    }

    /// Distinct units recorded done, whether in the current plan or not.
    pub fn done_count(&self) -> u64 {
        self.done.len() as u64
    }

    /// Units whose last attempt failed, in no particular order.
    pub fn failures(&self) -> impl Iterator<Item = &Failure> {
        self.failures.values()
    }

    /// Complete log lines ignored because of a bad checksum or syntax (see the crate docs).
    pub fn corrupt_lines(&self) -> u64 {
        self.corrupt_lines
    }

    /// Bytes of a torn last log line cut off when the log was opened.
    pub fn torn_bytes(&self) -> u64 {
        self.torn_bytes
    }

    /// Heap bytes of the finished-unit set and the plan map (for the memory figures).
    pub fn done_set_bytes(&self) -> usize {
        self.done.heap_bytes() + self.plan_map.as_ref().map_or(0, PlanMap::heap_bytes)
    }

    /// Whether `id` is selected by `selection` (not done; failed or not as `selection` says).
    pub fn selects(&self, id: &str, selection: Selection) -> bool {
        let fp = fingerprint(id);
        if self.done.contains(fp) {
            return false;
        }
        let failed = self.failures.contains_key(&fp);
        match selection {
            Selection::Pending => !failed,
            Selection::FailedOnly => failed,
            Selection::PendingAndFailed => true,
        }
    }

    /// The units of `plan` selected by `selection`, lazily and in plan order: the plan is never
    /// held in memory, so a planner can stream 10 M ids. Lookups are made [`PLAN_CHUNK`] ids at a
    /// time; [`Pending::tally`] counts what has been streamed so far.
    pub fn pending<I: IntoIterator<Item = UnitId>>(
        &self,
        plan: I,
        selection: Selection,
    ) -> Pending<'_, I::IntoIter> {
        Pending {
            wd: self,
            plan: plan.into_iter(),
            ordinal: 0,
            selection,
            chunk: Vec::new(),
            flags: Vec::new(),
            ready: std::collections::VecDeque::new(),
            tally: Tally::default(),
        }
    }

    /// Counts `plan` against the log: total, done, failed, and selected by `selection`.
    pub fn tally<I: IntoIterator<Item = UnitId>>(&self, plan: I, selection: Selection) -> Tally {
        let mut pending = self.pending(plan, selection);
        pending.by_ref().for_each(drop);
        pending.tally
    }

    /// `flags[i]` = whether `ids[i]` is selected; adds the chunk to `tally`. `ordinal`: the plan
    /// ordinal of `ids[0]` when `ids` is a whole plan chunk (at a multiple of [`PLAN_CHUNK`], up
    /// to `PLAN_CHUNK` ids): then a chunk the checkpoint's plan map knows takes its done units
    /// from the map's bits, and `map_out` (if given) gets the chunk's digest and done flags.
    pub(crate) fn select_chunk(
        &self,
        ordinal: Option<u64>,
        ids: &[UnitId],
        selection: Selection,
        flags: &mut Vec<bool>,
        tally: &mut Tally,
        map_out: Option<&mut PlanMap>,
    ) -> ChunkLookup {
        let fps: Vec<u64> = ids.iter().map(UnitId::fingerprint).collect();
        let aligned =
            ordinal.filter(|o| o.is_multiple_of(PLAN_CHUNK as u64) && ids.len() <= PLAN_CHUNK);
        let digest = aligned.map(|_| chunk_digest(&fps));
        let map = match (aligned, digest, &self.plan_map) {
            (Some(o), Some(d), Some(m))
                if m.chunk_matches((o / PLAN_CHUNK as u64) as usize, ids.len(), d) =>
            {
                Some((o, m))
            }
            _ => None,
        };
        if let Some((o, m)) = map {
            // A set bit is done; only the clear ones are looked up.
            flags.clear();
            flags.extend((o..o + ids.len() as u64).map(|i| m.bit(i)));
            let rest: Vec<usize> = (0..ids.len()).filter(|&i| !flags[i]).collect();
            let rest_fps: Vec<u64> = rest.iter().map(|&i| fps[i]).collect();
            let mut found = Vec::new();
            self.done.contains_many(&rest_fps, &mut found);
            for (i, hit) in rest.into_iter().zip(found) {
                flags[i] = hit;
            }
        } else {
            self.done.contains_many(&fps, flags);
        }
        if let (Some(out), Some(d)) = (map_out, digest) {
            out.push_chunk(d, flags);
        }
        for (done, fp) in flags.iter_mut().zip(&fps) {
            let failed = !*done && self.failures.contains_key(fp);
            tally.total += 1;
            tally.done += u64::from(*done);
            tally.failed += u64::from(failed);
            *done = !*done
                && match selection {
                    Selection::Pending => !failed,
                    Selection::FailedOnly => failed,
                    Selection::PendingAndFailed => true,
                };
            tally.selected += u64::from(*done);
        }
        ChunkLookup {
            digest,
            mapped: map.is_some(),
        }
    }

    /// Buffers a done record for `id` and clears any failure of it. Not durable, and not to be
    /// reported done to anyone, until [`Self::sync`] returns. Returns whether `id` was not done yet.
    pub fn record_done(&mut self, id: &UnitId) -> Result<bool, JobError> {
        let fp = id.fingerprint();
        if !self.done.insert(fp) {
            return Ok(false);
        }
        self.log.append_done(id.as_str())?;
        self.failures.remove(&fp);
        Ok(true)
    }

    /// [`Self::record_done`] for `id` (fingerprint `fp`) known not to be done: no lookup.
    pub(crate) fn record_done_new(&mut self, id: &UnitId, fp: u64) -> Result<(), JobError> {
        self.done.insert_new(fp);
        self.log.append_done(id.as_str())?;
        self.failures.remove(&fp);
        Ok(())
    }

    /// Buffers a failure record for `id` (replacing an earlier failure of it). Returns whether `id`
    /// had not failed before. A done unit is never marked failed (done is final): returns `false`.
    pub fn record_failed(&mut self, id: &UnitId, error: &UnitError) -> Result<bool, JobError> {
        let fp = id.fingerprint();
        if self.done.contains(fp) {
            return Ok(false);
        }
        let failure = Failure {
            id: id.as_str().to_owned(),
            step: error.step.clone(),
            error: error.message.clone(),
            at: now_rfc3339(),
        };
        self.log.append_failed(&failure)?;
        Ok(self.failures.insert(fp, failure).is_none())
    }

    /// Records buffered since the last [`Self::sync`].
    pub fn unsynced(&self) -> usize {
        self.log.unsynced()
    }

    /// Flushes the buffered records and `fsync`s the log: every record made so far is durable on
    /// return (and survives kill -9 or power loss).
    pub fn sync(&mut self) -> Result<(), JobError> {
        self.log.sync()
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = self.log.sync() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not sync the status log on close");
        }
    }
}

/// The selected units of a plan, streamed (see [`WorkDir::pending`]).
pub struct Pending<'a, I> {
    wd: &'a WorkDir,
    plan: I,
    /// The plan ordinal of the next chunk.
    ordinal: u64,
    selection: Selection,
    chunk: Vec<UnitId>,
    flags: Vec<bool>,
    ready: std::collections::VecDeque<UnitId>,
    tally: Tally,
}

impl<I> Pending<'_, I> {
    /// The counts of the plan ids streamed so far (all of them once the iterator is exhausted).
    pub fn tally(&self) -> Tally {
        self.tally
    }
}

impl<I: Iterator<Item = UnitId>> Iterator for Pending<'_, I> {
    type Item = UnitId;

    fn next(&mut self) -> Option<UnitId> {
        while self.ready.is_empty() {
            self.chunk.extend(self.plan.by_ref().take(PLAN_CHUNK));
            if self.chunk.is_empty() {
                return None;
            }
            self.wd.select_chunk(
                Some(self.ordinal),
                &self.chunk,
                self.selection,
                &mut self.flags,
                &mut self.tally,
                None,
            );
            self.ordinal += self.chunk.len() as u64;
            let flags = &self.flags;
            self.ready.extend(
                self.chunk
                    .drain(..)
                    .zip(flags)
                    .filter_map(|(id, f)| f.then_some(id)),
            );
        }
        self.ready.pop_front()
    }
}

/// Reads `dir`'s checkpoint if it is usable with the log `file` at `log_path`: intact, and the
/// log still holds the bytes it covers (same length or longer, same last bytes before its
/// offset). Anything else is logged and ignored (`Ok(None)`): the whole log is read instead, which
/// holds every record the checkpoint does. Removes a temporary file left by a crash.
fn load_checkpoint(
    dir: &Path,
    log_path: &Path,
    file: &File,
) -> Result<Option<Checkpoint>, JobError> {
    let tmp = dir.join(CHECKPOINT_TMP);
    if tmp.exists() {
        fs::remove_file(&tmp).map_err(JobError::io("remove", &tmp))?;
    }
    let log_len = file
        .metadata()
        .map_err(JobError::io("stat", log_path))?
        .len();
    let path = dir.join(CHECKPOINT_FILE);
    let ckpt = match checkpoint::read(&path, |at| {
        (log_len.saturating_sub(at) / MIN_RECORD_LEN) as usize
    }) {
        Ok(Some(c)) => c,
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the checkpoint: reading the whole status log");
            return Ok(None);
        }
    };
    let reject = |reason: &str| -> Result<Option<Checkpoint>, JobError> {
        tracing::warn!(path = %path.display(), log_len, log_offset = ckpt.log_offset, reason,
            "ignoring a checkpoint of another log: reading the whole status log");
        Ok(None)
    };
    if ckpt.log_offset == 0 || ckpt.log_offset > log_len {
        return reject("the log is shorter than the checkpoint");
    }
    if log::window_crc(log_path, file, ckpt.log_offset, LOG_WINDOW)? != Some(ckpt.window_crc) {
        return reject("the log's bytes differ");
    }
    Ok(Some(ckpt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(wd: &WorkDir, at: Option<u64>, ids: &[UnitId]) -> (ChunkLookup, Vec<bool>) {
        let (mut flags, mut tally) = (Vec::new(), Tally::default());
        let found = wd.select_chunk(at, ids, Selection::Pending, &mut flags, &mut tally, None);
        assert_eq!(tally.selected, flags.iter().filter(|f| **f).count() as u64);
        (found, flags)
    }

    #[test]
    fn the_plan_map_serves_only_the_checkpointed_plan() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<UnitId> = (0..100)
            .map(|i| UnitId::new(format!("u/{i}")).unwrap())
            .collect();
        let mut wd = WorkDir::open(dir.path(), "t").unwrap();
        for id in &ids[..60] {
            wd.record_done(id).unwrap();
        }
        let (mut flags, mut tally, mut map) = (Vec::new(), Tally::default(), PlanMap::default());
        let sel = Selection::Pending;
        let found = wd.select_chunk(Some(0), &ids, sel, &mut flags, &mut tally, Some(&mut map));
        assert!(!found.mapped && found.digest.is_some() && map.len == 100);
        wd.checkpoint_with(Some(&map)).unwrap();
        drop(wd);

        let wd = WorkDir::open(dir.path(), "t").unwrap();
        assert!(wd.checkpoint_used() && wd.plan_map.as_ref() == Some(&map));
        let want: Vec<bool> = (0..100).map(|i| i >= 60).collect();
        let (f, flags) = lookup(&wd, Some(0), &ids);
        assert!(f.mapped && f.digest == found.digest && flags == want);
        let mut swapped = ids.clone();
        swapped.swap(1, 70);
        let (f, flags) = lookup(&wd, Some(0), &swapped);
        assert!(!f.mapped, "a reordered chunk");
        assert!(flags[1] && !flags[70]);
        for (at, part) in [
            (Some(PLAN_CHUNK as u64), &ids[..]),
            (None, &ids[..]),
            (Some(0), &ids[..99]),
        ] {
            let (f, flags) = lookup(&wd, at, part);
            assert!(!f.mapped, "{at:?} {}", part.len());
            assert_eq!(flags, want[..part.len()]);
        }
    }
}
