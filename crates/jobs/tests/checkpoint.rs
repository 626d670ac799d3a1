//! Checkpoints: resume from a checkpoint plus the log tail, a crash at any step of writing one,
//! a damaged or foreign checkpoint (detected, and the whole log read instead), and a plan that
//! changed since the checkpoint (its plan map is not applied to other ids).

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use marketprism_jobs::{
    CHECKPOINT_FILE, LOG_FILE, PLAN_CHUNK, RunOptions, Selection, UnitError, UnitId, WorkDir, run,
};

fn unit(i: u32) -> UnitId {
    UnitId::new(format!("candles/okx_swap/SYM{}/2026-11-30#{i}", i % 11)).unwrap()
}

/// Options with checkpoints at the end of every run (`at_end` 1) or never (`u64::MAX`).
fn opts(selection: Selection, at_end: u64) -> RunOptions {
    RunOptions {
        selection,
        progress_bar: false,
        batch_size: 16,
        checkpoint_every: u64::MAX,
        checkpoint_at_end: at_end,
        ..RunOptions::default()
    }
}

/// Runs `plan` until `stop` units were attempted; units `i % 9 == 4` fail in step `fetch`.
fn run_some(wd: &mut WorkDir, plan: &[u32], opts: &RunOptions, stop: usize) -> Vec<UnitId> {
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        cancel: Some(cancel.clone()),
        ..opts.clone()
    };
    let mut ran = Vec::new();
    run(
        wd,
        || plan.iter().map(|&i| unit(i)),
        &opts,
        |id| {
            ran.push(id.clone());
            cancel.store(ran.len() >= stop, Ordering::Relaxed);
            let i: u32 = id.as_str().rsplit('#').next().unwrap().parse().unwrap();
            if i % 9 == 4 {
                Err(UnitError::new("fetch", "HTTP 503"))
            } else {
                Ok(())
            }
        },
        |_| {},
    )
    .unwrap();
    ran
}

/// What a work directory knows, for comparing two ways of opening it.
#[derive(Debug, PartialEq)]
struct View {
    done: u64,
    failed: Vec<(String, String)>,
    pending: Vec<UnitId>,
    retry: Vec<UnitId>,
    corrupt_lines: u64,
}

fn view(wd: &WorkDir, plan: &[u32]) -> View {
    let ids = || plan.iter().map(|&i| unit(i));
    let mut failed: Vec<(String, String)> = wd
        .failures()
        .map(|f| (f.id.clone(), f.step.clone()))
        .collect();
    failed.sort();
    View {
        done: wd.done_count(),
        failed,
        pending: wd.pending(ids(), Selection::Pending).collect(),
        retry: wd.pending(ids(), Selection::FailedOnly).collect(),
        corrupt_lines: wd.corrupt_lines(),
    }
}

/// The same, from a copy of the log alone (read whole, without the checkpoint).
fn view_from_log(dir: &Path, plan: &[u32]) -> View {
    let copy = tempfile::tempdir().unwrap();
    fs::copy(dir.join(LOG_FILE), copy.path().join(LOG_FILE)).unwrap();
    let wd = WorkDir::open(copy.path(), "t").unwrap();
    assert!(!wd.checkpoint_used());
    view(&wd, plan)
}

#[test]
fn resume_reads_the_checkpoint_and_only_the_log_tail() {
    let dir = tempfile::tempdir().unwrap();
    let plan: Vec<u32> = (0..300).collect();
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    run_some(&mut wd, &plan, &opts(Selection::Pending, 1), 120);
    drop(wd);
    assert!(dir.path().join(CHECKPOINT_FILE).exists());

    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(wd.checkpoint_used());
    assert_eq!(
        (wd.records_read(), wd.records_since_checkpoint()),
        (0, 0),
        "the checkpoint covers the whole log"
    );
    let v = view(&wd, &plan);
    assert_eq!(v, view_from_log(dir.path(), &plan));
    assert_eq!(v.pending, (120..300).map(unit).collect::<Vec<_>>());
    assert_eq!(
        v.failed.len(),
        (0..120).filter(|i| i % 9 == 4).count(),
        "failures are in the checkpoint"
    );
    assert!(v.failed.iter().all(|(_, step)| step == "fetch"));

    // Another 50 units, no checkpoint: the next open reads those 50 records only.
    let ran = run_some(&mut wd, &plan, &opts(Selection::Pending, u64::MAX), 50);
    assert_eq!(ran, (120..170).map(unit).collect::<Vec<_>>());
    drop(wd);
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(wd.checkpoint_used());
    assert_eq!(wd.records_read(), 50);
    let v = view(&wd, &plan);
    assert_eq!(v, view_from_log(dir.path(), &plan));
    assert_eq!(v.pending, (170..300).map(unit).collect::<Vec<_>>());

    // --retry-failed after a checkpoint; successes clear failures kept in the checkpoint.
    let retried = run_some(&mut wd, &plan, &opts(Selection::FailedOnly, 1), usize::MAX);
    assert_eq!(retried, v.retry);
    assert_eq!(wd.failures().count(), v.failed.len(), "they fail again");
    let stats = wd.stats().unwrap();
    assert_eq!(
        (stats.by_step.len(), stats.by_step[0].count),
        (1, v.failed.len() as u64)
    );
    drop(wd);
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    let all_ok = RunOptions {
        selection: Selection::FailedOnly,
        ..opts(Selection::FailedOnly, 1)
    };
    let mut ran = 0;
    run(
        &mut wd,
        || plan.iter().map(|&i| unit(i)),
        &all_ok,
        |_| {
            ran += 1;
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(ran, v.failed.len());
    drop(wd);
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(wd.checkpoint_used() && wd.failures().count() == 0);
    assert_eq!(view(&wd, &plan), view_from_log(dir.path(), &plan));
}

/// A work directory with a checkpoint after 100 units and 40 more records in the log after it.
fn checkpointed(dir: &Path, plan: &[u32]) {
    let mut wd = WorkDir::open(dir, "t").unwrap();
    run_some(&mut wd, plan, &opts(Selection::Pending, 1), 100);
    run_some(&mut wd, plan, &opts(Selection::Pending, u64::MAX), 40);
}

#[test]
fn a_crash_at_any_step_of_writing_a_checkpoint_loses_nothing() {
    let plan: Vec<u32> = (0..200).collect();
    let dir = tempfile::tempdir().unwrap();
    checkpointed(dir.path(), &plan);
    let want = view_from_log(dir.path(), &plan);
    let ckpt = fs::read(dir.path().join(CHECKPOINT_FILE)).unwrap();
    let tmp = dir.path().join(".checkpoint.bin.tmp");

    // Killed while writing the temporary file (any prefix of it), before the rename: the old
    // checkpoint, or none, is used and the leftover removed.
    for old in [true, false] {
        for cut in (0..ckpt.len()).step_by(97) {
            if old {
                fs::write(dir.path().join(CHECKPOINT_FILE), &ckpt).unwrap();
            } else {
                let _ = fs::remove_file(dir.path().join(CHECKPOINT_FILE));
            }
            fs::write(&tmp, &ckpt[..cut]).unwrap();
            let wd = WorkDir::open(dir.path(), "t").unwrap();
            assert_eq!(wd.checkpoint_used(), old);
            assert_eq!(view(&wd, &plan), want, "cut at {cut}");
            assert!(!tmp.exists());
        }
    }
    // Killed after the rename: the new checkpoint covers the whole log.
    fs::write(dir.path().join(CHECKPOINT_FILE), &ckpt).unwrap();
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    wd.checkpoint().unwrap();
    drop(wd);
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(wd.checkpoint_used() && wd.records_read() == 0);
    assert_eq!(view(&wd, &plan), want);
    drop(wd);
    // Killed after records were appended past the checkpoint, one of them torn.
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    run_some(&mut wd, &plan, &opts(Selection::Pending, u64::MAX), 3);
    drop(wd);
    let log = dir.path().join(LOG_FILE);
    let mut bytes = fs::read(&log).unwrap();
    bytes.truncate(bytes.len() - 5);
    fs::write(&log, &bytes).unwrap();
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(wd.checkpoint_used() && wd.torn_bytes() > 0);
    assert_eq!(wd.records_read(), 2);
    assert_eq!(view(&wd, &plan), view_from_log(dir.path(), &plan));
    assert_eq!(wd.done_count(), want.done + 2);
    assert!(wd.is_done(unit(141).as_str()) && !wd.is_done(unit(142).as_str()));
}

#[test]
fn a_damaged_checkpoint_is_detected_and_the_whole_log_read() {
    let plan: Vec<u32> = (0..200).collect();
    let dir = tempfile::tempdir().unwrap();
    checkpointed(dir.path(), &plan);
    let want = view_from_log(dir.path(), &plan);
    let path = dir.path().join(CHECKPOINT_FILE);
    let good = fs::read(&path).unwrap();
    // Every byte: garbled (a flipped bit) or torn (the file cut there).
    for at in 0..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 1 << (at % 8);
        for damaged in [&bad[..], &good[..at]] {
            fs::write(&path, damaged).unwrap();
            let wd = WorkDir::open(dir.path(), "t").unwrap();
            assert!(!wd.checkpoint_used(), "damage at {at} not detected");
            assert_eq!(view(&wd, &plan), want, "damage at {at}");
        }
    }
    // A checkpoint whose log was rolled back (a shorter copy) or replaced by another job's log.
    fs::write(&path, &good).unwrap();
    let log = dir.path().join(LOG_FILE);
    let full = fs::read(&log).unwrap();
    let first_records: usize = full
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(30)
        .unwrap()
        .0
        + 1;
    fs::write(&log, &full[..first_records]).unwrap();
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(!wd.checkpoint_used());
    assert_eq!(
        (wd.done_count(), wd.failures().count()),
        (27, 3),
        "the first 30 records"
    );
    drop(wd);
    let other = tempfile::tempdir().unwrap();
    let mut wd = WorkDir::open(other.path(), "t").unwrap();
    run_some(
        &mut wd,
        &(1000..1300).collect::<Vec<_>>(),
        &opts(Selection::Pending, u64::MAX),
        300,
    );
    drop(wd);
    fs::write(&path, &good).unwrap();
    fs::copy(other.path().join(LOG_FILE), &log).unwrap();
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(
        !wd.checkpoint_used(),
        "the other log is longer, but its bytes differ"
    );
    assert!(plan.iter().all(|&i| !wd.is_done(unit(i).as_str())));
}

#[test]
fn a_plan_changed_since_the_checkpoint_is_looked_up_not_mapped() {
    // Three plan chunks, the last one partial: the map's chunks and ordinals are exercised.
    let n = 2 * PLAN_CHUNK as u32 + 500;
    let plan: Vec<u32> = (0..n).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    // More selected units than the runner keeps: its second pass re-generates the plan.
    let big = RunOptions {
        batch_size: 4096,
        ..opts(Selection::Pending, 1)
    };
    let ran = run_some(&mut wd, &plan, &big, n as usize - 300);
    assert_eq!(ran.len(), n as usize - 300);
    drop(wd);
    // Units before n - 300 were attempted: done, or failed (skipped by `Pending`).
    let expect = |plan: &[u32]| -> Vec<UnitId> {
        plan.iter()
            .filter(|&&i| i >= n - 300)
            .map(|&i| unit(i))
            .collect()
    };
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(wd.checkpoint_used());
    let changes: Vec<(&str, Vec<u32>)> = vec![
        ("unchanged", plan.clone()),
        ("one id replaced", {
            let mut p = plan.clone();
            p[5] = n + 7;
            p[PLAN_CHUNK + 1] = n + 8;
            p
        }),
        ("one id inserted first: every ordinal shifts", {
            let mut p = vec![n + 9];
            p.extend(&plan);
            p
        }),
        ("reordered within a chunk", {
            let mut p = plan.clone();
            p.swap(10, 13);
            p.swap(PLAN_CHUNK * 2 + 1, PLAN_CHUNK * 2 + 3);
            p
        }),
        ("shorter", plan[..PLAN_CHUNK + 17].to_vec()),
        ("longer", (0..n + 40).collect()),
        ("another plan", (n..n + 1000).collect()),
    ];
    for (what, p) in &changes {
        let pending: Vec<UnitId> = wd
            .pending(p.iter().map(|&i| unit(i)), Selection::Pending)
            .collect();
        assert_eq!(pending, expect(p), "{what}");
        let tally = wd.tally(p.iter().map(|&i| unit(i)), Selection::Pending);
        assert_eq!(tally.selected, pending.len() as u64, "{what}");
    }
    drop(wd);
    // The runner on a changed plan runs exactly the units not done, and maps the new plan.
    let mut changed = changes[2].1.clone();
    changed.swap(3, PLAN_CHUNK + 3);
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    let ran = run_some(&mut wd, &changed, &big, usize::MAX);
    assert_eq!(ran, expect(&changed));
    drop(wd);
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    let left: Vec<UnitId> = wd
        .pending(changed.iter().map(|&i| unit(i)), Selection::Pending)
        .collect();
    assert!(left.is_empty());
    let retry: Vec<UnitId> = wd
        .pending(changed.iter().map(|&i| unit(i)), Selection::FailedOnly)
        .collect();
    assert_eq!(
        retry,
        changed
            .iter()
            .filter(|i| *i % 9 == 4)
            .map(|&i| unit(i))
            .collect::<Vec<_>>()
    );
}
