//! A torn or garbled status log (kill -9 in the middle of a write, a damaged disk): the damaged
//! record is cut off or ignored, never mis-read, and its unit is redone.

use std::fs::{self, OpenOptions};
use std::io::Write;

use marketprism_jobs::{LOG_FILE, RunOptions, Selection, UnitId, WorkDir, run};

fn unit(i: u32) -> UnitId {
    UnitId::new(format!(
        "trades/binance_spot/SYM{}/2026-11-{:02}#{i}",
        i % 7,
        i % 30 + 1
    ))
    .unwrap()
}

/// Runs the first `n` units with a no-op unit; returns the units attempted.
fn run_job(wd: &mut WorkDir, n: u32) -> Vec<UnitId> {
    let mut ran = Vec::new();
    let opts = RunOptions {
        selection: Selection::Pending,
        progress_bar: false,
        batch_size: 7,
        ..RunOptions::default()
    };
    run(
        wd,
        || (0..n).map(unit),
        &opts,
        |id| {
            ran.push(id.clone());
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    ran
}

fn log_bytes(dir: &std::path::Path) -> Vec<u8> {
    fs::read(dir.join(LOG_FILE)).unwrap()
}

#[test]
fn a_torn_last_line_is_cut_off_and_its_unit_redone() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&mut WorkDir::open(dir.path(), "t").unwrap(), 10);
    let full = log_bytes(dir.path());
    // kill -9 in the middle of writing the last record: every proper prefix of it.
    let last_start = full[..full.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    for cut in last_start..full.len() {
        fs::write(dir.path().join(LOG_FILE), &full[..cut]).unwrap();
        let mut wd = WorkDir::open(dir.path(), "t").unwrap();
        assert_eq!(wd.done_count(), 9, "cut at {cut}");
        assert_eq!(wd.torn_bytes(), (cut - last_start) as u64);
        assert_eq!(run_job(&mut wd, 10), vec![unit(9)]);
        drop(wd);
        let wd = WorkDir::open(dir.path(), "t").unwrap();
        assert_eq!(
            (wd.done_count(), wd.torn_bytes(), wd.corrupt_lines()),
            (10, 0, 0),
            "the log is whole again"
        );
    }
}

#[test]
fn a_garbled_last_line_is_ignored_never_misread() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&mut WorkDir::open(dir.path(), "t").unwrap(), 10);
    let full = log_bytes(dir.path());
    let last_start = full[..full.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    for at in last_start..full.len() - 1 {
        for garbage in [b'\0', b'x', b'D', b'0'] {
            let mut bad = full.clone();
            if bad[at] == garbage {
                continue;
            }
            bad[at] = garbage;
            fs::write(dir.path().join(LOG_FILE), &bad).unwrap();
            let mut wd = WorkDir::open(dir.path(), "t").unwrap();
            assert_eq!(
                (wd.done_count(), wd.corrupt_lines()),
                (9, 1),
                "byte {at} = {garbage}"
            );
            assert_eq!(run_job(&mut wd, 10), vec![unit(9)]);
        }
    }
    // Garbage appended after a crash (e.g. zeroes from a file system), newline-terminated or not.
    fs::write(dir.path().join(LOG_FILE), &full).unwrap();
    OpenOptions::new()
        .append(true)
        .open(dir.path().join(LOG_FILE))
        .unwrap()
        .write_all(b"\0\0\0\0\n\0\0")
        .unwrap();
    let wd = WorkDir::open(dir.path(), "t").unwrap();
    assert_eq!(
        (wd.done_count(), wd.corrupt_lines(), wd.torn_bytes()),
        (10, 1, 2)
    );
}
