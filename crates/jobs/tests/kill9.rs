//! kill -9 in the middle of a job: the test binary re-invokes itself as the job process
//! (`child_job` with `MARKETPRISM_JOBS_KILL9_CHILD` set), SIGKILLs it several times mid-run, and
//! then resumes in-process. Once with the default options (no checkpoint at this size), once
//! writing a checkpoint every ~200 records, so kills also land in the middle of checkpoints.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use marketprism_jobs::{LOG_FILE, Progress, RunOptions, Selection, UnitId, WorkDir, run};

const CHILD_ENV: &str = "MARKETPRISM_JOBS_KILL9_CHILD";
/// Set: the child writes a checkpoint every this many log records.
const CHECKPOINT_ENV: &str = "MARKETPRISM_JOBS_KILL9_CHECKPOINT_EVERY";
const UNITS: u32 = 20_000;
/// The child appends each unit id to this file once the framework has confirmed it durable.
const CONFIRMED: &str = "confirmed.txt";

fn plan() -> impl Iterator<Item = UnitId> {
    (0..UNITS)
        .map(|i| UnitId::new(format!("trades/okx_spot/SYM-{}/2026-11-30#{i}", i % 50)).unwrap())
}

/// The job process (does nothing unless started by the parent test).
#[test]
fn child_job() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let mut wd = WorkDir::open(dir.join("work"), "kill9").unwrap();
    let mut side = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(CONFIRMED))
        .unwrap();
    let mut opts = RunOptions {
        batch_size: 64,
        progress_bar: false,
        ..RunOptions::default()
    };
    if let Ok(every) = std::env::var(CHECKPOINT_ENV) {
        opts.checkpoint_every = every.parse().unwrap();
        opts.checkpoint_at_end = 1;
    }
    run(
        &mut wd,
        plan,
        &opts,
        |_| {
            std::thread::sleep(Duration::from_micros(50));
            Ok(())
        },
        |ids| {
            let lines: String = ids.iter().map(|id| format!("{id}\n")).collect();
            side.write_all(lines.as_bytes()).unwrap();
        },
    )
    .unwrap();
}

/// Complete lines of the side file (a line torn by the kill was never confirmed to the parent).
fn confirmed(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string(dir.join(CONFIRMED)).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
    complete.lines().map(str::to_owned).collect()
}

#[test]
fn kill_9_in_the_middle_loses_no_finished_unit_and_marks_no_unfinished_one_done() {
    kill_9_rounds(None);
}

#[test]
fn kill_9_around_checkpoints_loses_no_finished_unit_and_marks_no_unfinished_one_done() {
    kill_9_rounds(Some(200));
}

fn kill_9_rounds(checkpoint_every: Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut killed_at = Vec::new();
    for round in 1..=3 {
        let mut child = Command::new(&exe);
        child
            .args(["child_job", "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, dir.path());
        if let Some(every) = checkpoint_every {
            child.env(CHECKPOINT_ENV, every.to_string());
        }
        let mut child = child
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it once it has confirmed about another quarter of the units.
        let target = UNITS as usize * round / 4;
        let deadline = Instant::now() + Duration::from_secs(60);
        while confirmed(dir.path()).len() < target {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the child finished before it was killed"
            );
            assert!(Instant::now() < deadline, "the child made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        killed_at.push(confirmed(dir.path()).len());
    }
    let confirmed: Vec<String> = confirmed(dir.path());
    let unique: HashSet<&str> = confirmed.iter().map(String::as_str).collect();
    assert_eq!(
        unique.len(),
        confirmed.len(),
        "no unit was confirmed twice (none was redone after a kill)"
    );
    assert!(
        confirmed.len() < UNITS as usize,
        "killed mid-run: {killed_at:?}"
    );

    let mut wd = WorkDir::open(dir.path().join("work"), "kill9").unwrap();
    assert_eq!(wd.checkpoint_used(), checkpoint_every.is_some());
    assert!(
        unique.iter().all(|id| wd.is_done(id)),
        "a confirmed unit was lost"
    );
    let done_before = wd.done_count();
    assert!(done_before >= confirmed.len() as u64);
    let mut ran = Vec::new();
    let summary = run(
        &mut wd,
        plan,
        &RunOptions {
            progress_bar: false,
            ..RunOptions::default()
        },
        |id| {
            ran.push(id.to_string());
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    assert!(
        ran.iter().all(|id| !unique.contains(id.as_str())),
        "a confirmed unit was redone"
    );
    assert_eq!(
        done_before + ran.len() as u64,
        UNITS as u64,
        "every unit is done exactly once more or before"
    );
    assert_eq!(
        (summary.progress.done, summary.progress.pending),
        (UNITS as u64, 0)
    );
    let tally = wd.tally(plan(), Selection::Pending);
    assert_eq!((tally.done, tally.selected), (UNITS as u64, 0));
    drop(wd);

    // The log holds exactly one done record per unit.
    let log = fs::read_to_string(dir.path().join("work").join(LOG_FILE)).unwrap();
    let done_ids: Vec<&str> = log
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(" D ").map(|(_, id)| id))
        .collect();
    assert_eq!(done_ids.len(), UNITS as usize);
    assert_eq!(
        done_ids.iter().collect::<HashSet<_>>().len(),
        UNITS as usize
    );
    let p = Progress::read(&dir.path().join("work")).unwrap().unwrap();
    assert!(p.finished && p.done == UNITS as u64);

    // The same command once more does nothing.
    let mut wd = WorkDir::open(dir.path().join("work"), "kill9").unwrap();
    let again = run(
        &mut wd,
        plan,
        &RunOptions {
            progress_bar: false,
            ..RunOptions::default()
        },
        |_| panic!("nothing is left to do"),
        |_| {},
    )
    .unwrap();
    assert_eq!(again.attempted, 0);
}
