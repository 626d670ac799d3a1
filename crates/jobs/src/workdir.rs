//! A job's work directory: its status log loaded into memory, the resume selection, and recording.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::doneset::DoneSet;
use crate::log::{Failure, StatusLog};
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

/// How many plan ids [`WorkDir::pending`] looks up at once.
pub const PLAN_CHUNK: usize = 1 << 16;

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
/// Memory: ~8.3 bytes per finished unit (see [`crate::fingerprint`]) plus the failures in full.
pub struct WorkDir {
    dir: PathBuf,
    job: String,
    log: StatusLog,
    done: DoneSet,
    failures: HashMap<u64, Failure>,
    corrupt_lines: u64,
    torn_bytes: u64,
}

impl WorkDir {
    /// Opens the work directory `dir` of job `job`, creating it if needed, and loads its status log
    /// (cutting off a torn last line: see the crate docs). Fails with [`JobError::Locked`] if another
    /// process has it open.
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
        let (log, loaded) = StatusLog::open(&path, file)?;
        if !existed {
            // Make the new log's directory entry durable too.
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(JobError::io("fsync", &dir))?;
        }
        let done = loaded.done.build();
        let mut failures = loaded.failures;
        failures.retain(|fp, _| !done.contains(*fp));
        Ok(Self {
            dir,
            job: job.to_owned(),
            log,
            done,
            failures,
            corrupt_lines: loaded.corrupt_lines,
            torn_bytes: loaded.torn_bytes,
        })
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

    /// Heap bytes of the finished-unit set (for the memory figures).
    pub fn done_set_bytes(&self) -> usize {
        self.done.heap_bytes()
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

    /// `flags[i]` = whether `ids[i]` is selected; adds the chunk to `tally`.
    pub(crate) fn select_chunk(
        &self,
        ids: &[UnitId],
        selection: Selection,
        flags: &mut Vec<bool>,
        tally: &mut Tally,
    ) {
        let fps: Vec<u64> = ids.iter().map(UnitId::fingerprint).collect();
        self.done.contains_many(&fps, flags);
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
                &self.chunk,
                self.selection,
                &mut self.flags,
                &mut self.tally,
            );
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
