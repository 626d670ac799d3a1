//! Behaviour of the framework, in temporary work directories: resume, retry-failed, stats, torn
//! log lines, progress.json, locking.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use marketprism_jobs::{
    JobError, LOG_FILE, PROGRESS_FILE, Progress, RunOptions, Selection, UnitError, UnitId, WorkDir,
    run,
};

fn unit(i: u32) -> UnitId {
    UnitId::new(
        format!("trades/binance_spot/SYM{}/2026-11-{:02}", i % 7, i % 30 + 1) + &format!("#{i}"),
    )
    .unwrap()
}

fn plan(n: u32) -> impl Fn() -> std::vec::IntoIter<UnitId> {
    move || (0..n).map(unit).collect::<Vec<_>>().into_iter()
}

fn quiet(selection: Selection) -> RunOptions {
    RunOptions {
        selection,
        progress_bar: false,
        batch_size: 7,
        ..RunOptions::default()
    }
}

/// Runs `plan(n)` with `fail` deciding failures; returns the units attempted.
fn run_job(
    wd: &mut WorkDir,
    n: u32,
    opts: &RunOptions,
    fail: impl Fn(&UnitId) -> Option<UnitError>,
) -> Vec<UnitId> {
    let mut ran = Vec::new();
    run(
        wd,
        plan(n),
        opts,
        |id| {
            ran.push(id.clone());
            fail(id).map_or(Ok(()), Err)
        },
        |_| {},
    )
    .unwrap();
    ran
}

#[test]
fn resume_skips_finished_units_and_a_finished_job_reruns_as_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        cancel: Some(cancel.clone()),
        ..quiet(Selection::Pending)
    };
    let mut first = Vec::new();
    let mut confirmed = Vec::new();
    {
        let mut wd = WorkDir::open(dir.path(), "t").unwrap();
        let s = run(
            &mut wd,
            plan(100),
            &opts,
            |id| {
                first.push(id.clone());
                if first.len() == 40 {
                    cancel.store(true, Ordering::Relaxed);
                }
                Ok(())
            },
            |ids| confirmed.extend_from_slice(ids),
        )
        .unwrap();
        assert!(s.cancelled && s.progress.cancelled && !s.progress.finished);
        assert_eq!(
            (s.attempted, s.progress.done, s.progress.pending),
            (40, 40, 60)
        );
    }
    assert_eq!(
        first, confirmed,
        "every unit done before the cancel is confirmed at the end"
    );
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    assert_eq!(wd.done_count(), 40);
    let pending: Vec<UnitId> = wd.pending(plan(100)(), Selection::Pending).collect();
    assert_eq!(pending, (40..100).map(unit).collect::<Vec<_>>());
    let second = run_job(&mut wd, 100, &quiet(Selection::Pending), |_| None);
    assert_eq!(
        second, pending,
        "only the unfinished units run, in plan order"
    );
    drop(wd);

    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    assert_eq!(wd.done_count(), 100);
    let third = run_job(&mut wd, 100, &quiet(Selection::Pending), |_| None);
    assert!(third.is_empty(), "rerunning a finished job does nothing");
    let p = Progress::read(dir.path()).unwrap().unwrap();
    assert_eq!(
        (p.total, p.done, p.failed, p.pending, p.finished),
        (100, 100, 0, 0, true)
    );
    assert_eq!(p.eta_s, Some(0.0));
}

#[test]
fn retry_failed_runs_only_failed_units_and_a_success_clears_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    let fail_every_10th = |id: &UnitId| {
        id.as_str()
            .ends_with('0')
            .then(|| UnitError::new("fetch", "HTTP 429"))
    };
    let first = run_job(&mut wd, 50, &quiet(Selection::Pending), fail_every_10th);
    assert_eq!(first.len(), 50);
    let failed: Vec<UnitId> = [0, 10, 20, 30, 40].into_iter().map(unit).collect();
    assert!(
        failed
            .iter()
            .all(|id| wd.failure(id.as_str()).is_some_and(|f| f.step == "fetch"))
    );

    // A plain rerun skips failed units; so does a rerun after reopening.
    assert!(run_job(&mut wd, 50, &quiet(Selection::Pending), |_| None).is_empty());
    drop(wd);
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(run_job(&mut wd, 50, &quiet(Selection::Pending), |_| None).is_empty());

    // --retry-failed: only the failed units; #20 fails again, in another step.
    let opts = quiet(Selection::FailedOnly);
    let retried = run_job(&mut wd, 50, &opts, |id| {
        (id == &unit(20)).then(|| UnitError::new("insert", "timeout"))
    });
    assert_eq!(retried, failed);
    assert!(wd.failure(unit(10).as_str()).is_none() && wd.is_done(unit(10).as_str()));
    assert_eq!(wd.failure(unit(20).as_str()).unwrap().step, "insert");
    drop(wd);

    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    assert_eq!(
        (wd.done_count(), wd.failures().count()),
        (49, 1),
        "the log replays successes over failures"
    );
    let p = Progress::read(dir.path()).unwrap().unwrap();
    assert_eq!((p.done, p.failed, p.pending), (49, 1, 0));
    assert_eq!(run_job(&mut wd, 50, &opts, |_| None), vec![unit(20)]);
    assert_eq!((wd.done_count(), wd.failures().count()), (50, 0));
    assert!(run_job(&mut wd, 50, &opts, |_| None).is_empty());
}

#[test]
fn pending_and_failed_selection_runs_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        cancel: Some(cancel.clone()),
        ..quiet(Selection::Pending)
    };
    let mut n = 0;
    run(
        &mut wd,
        plan(20),
        &opts,
        |_| {
            n += 1;
            cancel.store(n == 10, Ordering::Relaxed);
            if n % 2 == 0 {
                Err(UnitError::new("parse", "bad row"))
            } else {
                Ok(())
            }
        },
        |_| {},
    )
    .unwrap();
    let tally = wd.tally(plan(20)(), Selection::PendingAndFailed);
    assert_eq!(
        (tally.total, tally.done, tally.failed, tally.selected),
        (20, 5, 5, 15)
    );
    let ran = run_job(&mut wd, 20, &quiet(Selection::PendingAndFailed), |_| None);
    assert_eq!(ran.len(), 15);
    assert_eq!(wd.done_count(), 20);
}

#[test]
fn show_stats_groups_failures_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut wd = WorkDir::open(dir.path(), "stats").unwrap();
    run_job(&mut wd, 30, &quiet(Selection::Pending), |id| {
        let i: u32 = id.as_str().rsplit('#').next().unwrap().parse().unwrap();
        match i % 5 {
            0 => Some(UnitError::new(
                "fetch",
                format!("HTTP 500 for {i}\nsecond line"),
            )),
            1 if i < 20 => Some(UnitError::new("insert", "connection reset")),
            _ => None,
        }
    });
    let stats = wd.stats().unwrap();
    assert_eq!((stats.done, stats.failed), (20, 10));
    let steps: Vec<(&str, u64, usize)> = stats
        .by_step
        .iter()
        .map(|s| (s.step.as_str(), s.count, s.examples.len()))
        .collect();
    assert_eq!(steps, vec![("fetch", 6, 3), ("insert", 4, 3)]);
    let ex = &stats.by_step[0].examples;
    assert!(
        ex.windows(2).all(|w| w[0].id < w[1].id),
        "examples are the smallest ids"
    );
    assert!(
        ex.iter()
            .all(|f| f.step == "fetch" && f.error.starts_with("HTTP 500") && f.at.ends_with('Z'))
    );
    let p = stats.progress.as_ref().unwrap();
    assert_eq!(
        (p.job.as_str(), p.total, p.done, p.failed),
        ("stats", 30, 20, 10)
    );
    let text = stats.to_string();
    assert!(
        text.contains("job stats: 20 of 30 units done, 10 failed, 0 pending"),
        "{text}"
    );
    assert!(
        text.contains("  step fetch: 6 failed\n") && text.contains("  step insert: 4 failed\n"),
        "{text}"
    );
    assert!(
        !text.contains("second line"),
        "only the first line of a message: {text}"
    );
    serde_json::to_string(&stats).unwrap();
}

#[test]
fn progress_json_is_always_valid_json() {
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (path, stop) = (dir.path().to_owned(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if let Some(p) = Progress::read(&path).unwrap() {
                    assert_eq!(p.done + p.failed + p.pending, p.total);
                    reads += 1;
                }
            }
            reads
        })
    };
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    let opts = RunOptions {
        batch_size: 1,
        ..quiet(Selection::Pending)
    };
    let mut seen = 0;
    run(
        &mut wd,
        plan(300),
        &opts,
        |id| {
            let p: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.path().join(PROGRESS_FILE)).unwrap()).unwrap();
            assert!(p["done"].as_u64().unwrap() <= 300 && p["rate_units_per_s"].is_number());
            seen += 1;
            if seen % 3 == 0 {
                Err(UnitError::new("x", id))
            } else {
                Ok(())
            }
        },
        |_| {},
    )
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let p = Progress::read(dir.path()).unwrap().unwrap();
    assert_eq!(
        (p.total, p.done, p.failed, p.pending, p.current_batch),
        (300, 200, 100, 0, 300)
    );
}

#[test]
fn on_durable_sees_only_units_already_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    let path = dir.path().join(LOG_FILE);
    let opts = RunOptions {
        batch_size: 13,
        ..quiet(Selection::Pending)
    };
    let mut batches = 0;
    run(
        &mut wd,
        plan(100),
        &opts,
        |_| Ok(()),
        |ids| {
            batches += 1;
            let log = String::from_utf8(fs::read(&path).unwrap()).unwrap();
            assert!(ids.iter().all(|id| log.contains(&format!(" D {id}\n"))));
        },
    )
    .unwrap();
    assert_eq!(batches, 8);
}

#[test]
fn one_work_directory_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert!(matches!(
        WorkDir::open(dir.path(), "t"),
        Err(JobError::Locked(_))
    ));
    drop(wd);
    WorkDir::open(dir.path(), "t").unwrap();
}

#[test]
fn a_foreign_file_is_refused_and_bad_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(LOG_FILE), "id,status\n").unwrap();
    assert!(matches!(
        WorkDir::open(dir.path(), "t"),
        Err(JobError::BadHeader { .. })
    ));
    for bad in ["", "a\nb", "tab\there", &"x".repeat(1025)] {
        assert!(
            matches!(UnitId::new(bad), Err(JobError::InvalidUnitId(_))),
            "{bad:?}"
        );
    }
    assert_eq!(
        UnitId::new("gap/binance_spot/BTC-USDT/123-456")
            .unwrap()
            .to_string(),
        "gap/binance_spot/BTC-USDT/123-456"
    );
}

#[test]
fn a_plan_that_repeats_ids_runs_each_unit_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut wd = WorkDir::open(dir.path(), "t").unwrap();
    let order = [0, 1, 2, 1, 3, 0, 4, 1, 4];
    let plan = || order.iter().map(|&i| unit(i));
    let go = |wd: &mut WorkDir, selection, fail: bool| {
        let mut ran = Vec::new();
        run(
            wd,
            plan,
            &quiet(selection),
            |id| {
                ran.push(id.clone());
                if fail && id == &unit(1) {
                    Err(UnitError::new("fetch", "HTTP 500"))
                } else {
                    Ok(())
                }
            },
            |_| {},
        )
        .unwrap();
        ran
    };
    let first = go(&mut wd, Selection::Pending, true);
    assert_eq!(first, [0, 1, 2, 3, 4].map(unit));
    assert_eq!((wd.done_count(), wd.failures().count()), (4, 1));
    assert_eq!(go(&mut wd, Selection::FailedOnly, false), [unit(1)]);
    assert!(go(&mut wd, Selection::PendingAndFailed, false).is_empty());
    drop(wd);
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert_eq!((wd.done_count(), wd.failures().count()), (5, 0));
}
