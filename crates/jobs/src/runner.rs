//! The runner: drives a unit's work function over the selected units of a plan, in batches.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::planmap::PlanMap;
use crate::progress::{Progress, now_rfc3339};
use crate::workdir::PLAN_CHUNK;
use crate::{JobError, Selection, Tally, UnitError, UnitId, WorkDir};

/// A first pass keeps up to this many selected ids (~10 MB) to run them without a second pass.
const QUEUE_CAP: usize = 1 << 17;

/// A run's settings.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Which units of the plan to work on.
    pub selection: Selection,
    /// A batch ends after this many attempted units (default 1000)…
    pub batch_size: usize,
    /// …or once it is this old (default 1 s), whichever comes first. At the end of a batch the log is
    /// `fsync`ed, the batch's done units are reported durable, and `progress.json` is rewritten.
    pub max_batch_interval: Duration,
    /// Seconds between structured progress lines when there is no progress bar (default 10 s).
    pub report_interval: Duration,
    /// Draw a progress bar when stderr is a terminal (default true); otherwise (or when false) log
    /// structured `tracing` lines.
    pub progress_bar: bool,
    /// Checked before each unit; once set, the run commits what it has done and returns.
    pub cancel: Option<Arc<AtomicBool>>,
    /// At the end of a batch, write a checkpoint ([`WorkDir::checkpoint`]) once the log holds this
    /// many records after the last one (default 1 Mi, ~50 MB of log): bounds what the next open
    /// reads after a crash.
    pub checkpoint_every: u64,
    /// At the end of the run, write a checkpoint if the log holds at least this many records after
    /// the last one, or if the plan was not the checkpoint's and at least this many of its units
    /// are done (default 64 Ki): a small tail is cheaper to re-read than ~8 bytes per done unit to
    /// rewrite.
    pub checkpoint_at_end: u64,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            selection: Selection::Pending,
            batch_size: 1000,
            max_batch_interval: Duration::from_secs(1),
            report_interval: Duration::from_secs(10),
            progress_bar: true,
            cancel: None,
            checkpoint_every: 1 << 20,
            checkpoint_at_end: 1 << 16,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The plan counted against the log when the run started.
    pub before: Tally,
    /// Units attempted in this run.
    pub attempted: u64,
    /// Of them, succeeded (and durably recorded done).
    pub succeeded: u64,
    /// Of them, failed (and durably recorded failed).
    pub failed: u64,
    /// Whether the run stopped early on its cancellation flag.
    pub cancelled: bool,
    /// The final progress snapshot (as written to `progress.json`).
    pub progress: Progress,
}

/// Runs `work` on every unit of `plan()` selected by `opts.selection`, in plan order.
///
/// `plan` is called once to count and, unless at most 131 072 units are selected (which are
/// then kept), once more to run; it must yield the same ids both times. Ids are streamed. The
/// counting pass also records the plan's map (a digest per [`PLAN_CHUNK`] ids and which are
/// done), saved with the checkpoints of this run (see [`RunOptions::checkpoint_every`]) so the
/// next run's passes over an unchanged plan skip its done units without a lookup. A unit is
/// recorded done only after `work` returns `Ok`, and
/// `on_durable` receives each batch's done units only after the log is `fsync`ed: a unit it has
/// seen is never redone, and a unit it has not seen may be redone (unit work is idempotent). A
/// failed unit is recorded with its step and message and the run goes on. Returns early with
/// `cancelled` set when `opts.cancel` is raised, after committing the current batch.
pub fn run<P, I, F, D>(
    wd: &mut WorkDir,
    plan: P,
    opts: &RunOptions,
    mut work: F,
    mut on_durable: D,
) -> Result<RunSummary, JobError>
where
    P: Fn() -> I,
    I: IntoIterator<Item = UnitId>,
    F: FnMut(&UnitId) -> Result<(), UnitError>,
    D: FnMut(&[UnitId]),
{
    // First pass: count the plan and map it, keeping the selected ids (and their ordinals) if
    // they are few (a resume), so the second pass need not re-generate the plan.
    let (mut chunk, mut flags) = (Vec::with_capacity(PLAN_CHUNK), Vec::new());
    let mut map = PlanMap::default();
    let (mut before, mut unmapped) = (Tally::default(), false);
    let mut queue: Vec<(u64, UnitId)> = Vec::new();
    let mut overflow = false;
    let mut first = plan().into_iter();
    loop {
        chunk.extend(first.by_ref().take(PLAN_CHUNK));
        if chunk.is_empty() {
            break;
        }
        let at = map.len;
        let found = wd.select_chunk(
            Some(at),
            &chunk,
            opts.selection,
            &mut flags,
            &mut before,
            Some(&mut map),
        );
        unmapped |= !found.mapped;
        for (o, (id, selected)) in (at..).zip(chunk.drain(..).zip(&flags)) {
            if !selected || overflow {
                continue;
            }
            if queue.len() < QUEUE_CAP {
                queue.push((o, id));
            } else {
                overflow = true;
                queue = Vec::new();
            }
        }
    }
    drop(first);
    let mut map = Some(map);
    let mut state = State::new(wd.job(), before, opts);
    state.report(wd, true)?;
    let mut source: Box<dyn Iterator<Item = (u64, UnitId)>> = if overflow {
        Box::new((0..).zip(plan()))
    } else {
        Box::new(queue.into_iter())
    };
    let mut batch: Vec<UnitId> = Vec::with_capacity(opts.batch_size.min(1 << 16));
    let mut batch_len = 0usize;
    let mut batch_start = Instant::now();
    let (mut ordinals, mut scratch) = (Vec::with_capacity(PLAN_CHUNK), Tally::default());
    // Fingerprints of the kept ids attempted so far (at most QUEUE_CAP).
    let mut attempted: HashSet<u64> = HashSet::new();
    'plan: loop {
        for (o, id) in source.by_ref().take(PLAN_CHUNK) {
            ordinals.push(o);
            chunk.push(id);
        }
        if chunk.is_empty() {
            break;
        }
        if overflow {
            let at = Some(ordinals[0]);
            let found = wd.select_chunk(at, &chunk, opts.selection, &mut flags, &mut scratch, None);
            // A plan that yields other ids the second time: its map is not to be trusted.
            if let Some(m) = &map
                && m.digests.get((ordinals[0] / PLAN_CHUNK as u64) as usize)
                    != found.digest.as_ref()
            {
                tracing::warn!(job = wd.job(), "the plan changed between its two passes");
                map = None;
            }
        } else {
            // Kept ids were selected by the first pass (a repeated one is checked again below).
            flags.clear();
            flags.resize(chunk.len(), true);
        }
        for ((o, id), selected) in ordinals.drain(..).zip(chunk.drain(..)).zip(&flags) {
            if opts
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                state.cancelled = true;
                break 'plan;
            }
            // A kept id is as the first pass found it unless the plan repeats an id attempted
            // in this run; any other is checked again (a plan may repeat an id).
            let fp = id.fingerprint();
            let fresh = !overflow && attempted.insert(fp);
            if !selected || (!fresh && !wd.selects(id.as_str(), opts.selection)) {
                continue;
            }
            let was_failed = wd.failure(id.as_str()).is_some();
            state.attempted += 1;
            batch_len += 1;
            match work(&id) {
                Ok(()) => {
                    let new = if fresh {
                        wd.record_done_new(&id, fp)?;
                        true
                    } else {
                        wd.record_done(&id)?
                    };
                    if new {
                        if let Some(m) = &mut map {
                            m.set(o);
                        }
                        state.succeeded += 1;
                        state.progress.failed -= u64::from(was_failed);
                        batch.push(id);
                    }
                }
                Err(e) => {
                    tracing::debug!(job = wd.job(), unit = %id, step = %e.step, error = %e.message, "unit failed");
                    state.failed += 1;
                    state.progress.failed += u64::from(wd.record_failed(&id, &e)?);
                }
            }
            if batch_len >= opts.batch_size.max(1)
                || batch_start.elapsed() >= opts.max_batch_interval
            {
                commit(wd, &mut batch, &mut on_durable)?;
                if wd.records_since_checkpoint() >= opts.checkpoint_every.max(1) {
                    wd.checkpoint_with(map.as_ref())?;
                }
                state.progress.current_batch += 1;
                state.report(wd, false)?;
                batch_len = 0;
                batch_start = Instant::now();
            }
        }
    }
    commit(wd, &mut batch, &mut on_durable)?;
    let at_end = opts.checkpoint_at_end.max(1);
    if wd.records_since_checkpoint() >= at_end
        || (unmapped && map.is_some() && before.done + state.succeeded >= at_end)
    {
        wd.checkpoint_with(map.as_ref())?;
    }
    state.progress.finished = !state.cancelled;
    state.report(wd, true)?;
    if let Some(bar) = &state.bar {
        bar.finish();
    }
    Ok(RunSummary {
        before,
        attempted: state.attempted,
        succeeded: state.succeeded,
        failed: state.failed,
        cancelled: state.cancelled,
        progress: state.progress,
    })
}

/// Makes the batch durable, then reports its done units.
fn commit<D: FnMut(&[UnitId])>(
    wd: &mut WorkDir,
    batch: &mut Vec<UnitId>,
    on_durable: &mut D,
) -> Result<(), JobError> {
    wd.sync()?;
    if !batch.is_empty() {
        on_durable(batch);
        batch.clear();
    }
    Ok(())
}

struct State {
    before: Tally,
    attempted: u64,
    succeeded: u64,
    failed: u64,
    cancelled: bool,
    started: Instant,
    last_line: Option<Instant>,
    report_interval: Duration,
    bar: Option<ProgressBar>,
    progress: Progress,
}

impl State {
    fn new(job: &str, before: Tally, opts: &RunOptions) -> Self {
        let bar = (opts.progress_bar && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(before.selected);
            let style = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} units {per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(job.to_owned());
            bar
        });
        let now = now_rfc3339();
        Self {
            before,
            attempted: 0,
            succeeded: 0,
            failed: 0,
            cancelled: false,
            started: Instant::now(),
            last_line: None,
            report_interval: opts.report_interval,
            bar,
            progress: Progress {
                job: job.to_owned(),
                total: before.total,
                done: before.done,
                failed: before.failed,
                pending: 0,
                current_batch: 0,
                attempted_this_run: 0,
                rate_units_per_s: 0.0,
                eta_s: None,
                finished: false,
                cancelled: false,
                started_at: now.clone(),
                updated_at: now,
            },
        }
    }

    /// Updates the snapshot, writes `progress.json`, and moves the bar or logs a line.
    fn report(&mut self, wd: &WorkDir, force_line: bool) -> Result<(), JobError> {
        let p = &mut self.progress;
        let elapsed = self.started.elapsed().as_secs_f64();
        p.done = self.before.done + self.succeeded;
        p.pending = p.total.saturating_sub(p.done + p.failed);
        p.attempted_this_run = self.attempted;
        p.rate_units_per_s = if elapsed > 0.0 {
            self.attempted as f64 / elapsed
        } else {
            0.0
        };
        let left = self.before.selected.saturating_sub(self.attempted);
        p.eta_s = if left == 0 {
            Some(0.0)
        } else if p.rate_units_per_s > 0.0 {
            Some(left as f64 / p.rate_units_per_s)
        } else {
            None
        };
        p.cancelled = self.cancelled;
        p.updated_at = now_rfc3339();
        p.write(wd.path())?;
        if let Some(bar) = &self.bar {
            bar.set_position(self.attempted);
            bar.set_message(format!("{} failed", self.failed));
        } else if force_line
            || self
                .last_line
                .is_none_or(|t| t.elapsed() >= self.report_interval)
        {
            self.last_line = Some(Instant::now());
            tracing::info!(
                job = %p.job, total = p.total, done = p.done, failed = p.failed, pending = p.pending,
                batch = p.current_batch, attempted = self.attempted, rate_units_per_s = p.rate_units_per_s,
                eta_s = p.eta_s, finished = p.finished, cancelled = p.cancelled, "job progress"
            );
        }
        Ok(())
    }
}
