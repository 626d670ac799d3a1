//! What a rerun in the same work directory does, shared by the job kinds that check the present
//! (`verify`, `repair`, `backfill`): a finished run starts afresh ([`start_afresh_if_complete`]), an
//! unfinished one resumes; and the `--last <duration>` window, pinned in the work directory
//! ([`pinned_window`]) so a resumed run finishes exactly the plan it started.
//!
//! `import` and `replay` do not start afresh: their units are copies, and a finished copy rerun is
//! a no-op.

use super::{Error, Result, io_error};
use marketprism_jobs::Progress;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The subdirectory of a work directory holding the previous finished run's files.
pub const PREVIOUS_DIR: &str = "previous";
/// Where the previous run's files are gathered before they replace [`PREVIOUS_DIR`] (a crash in
/// the middle leaves it; the next call finishes the move).
const STAGING_DIR: &str = ".previous.new";
/// The pinned `--last` window of a work directory.
pub const WINDOW_FILE: &str = "window.json";

/// Whether the run recorded in `work_dir`'s `progress.json` finished its whole plan: every unit done,
/// none failed or pending, not cancelled (a killed run never wrote `finished: true`).
pub fn run_complete(work_dir: &Path, job: &str) -> Result<bool> {
    run_ended(work_dir, job, false)
}

/// [`run_complete`], or with `failures_too`: every unit attempted (none pending, not cancelled),
/// whether or not some failed.
fn run_ended(work_dir: &Path, job: &str, failures_too: bool) -> Result<bool> {
    let Some(p) = Progress::read(work_dir)? else {
        return Ok(false);
    };
    Ok(p.job == job
        && p.finished
        && !p.cancelled
        && p.total > 0
        && p.done + p.failed == p.total
        && (failures_too || p.failed == 0)
        && p.pending == 0)
}

/// For scheduled `--last` runs: if the last run in `work_dir` attempted its whole window (failed
/// units included), start afresh ([`start_afresh_if_complete`]) with a new window. The failed units
/// stay listed in `previous/`; the next window, which overlaps the last one, plans them again while
/// they are in it. Without this a single failure would pin the window forever: a plain rerun skips
/// failed units, and a CronJob reruns the same command.
pub fn start_afresh_if_attempted(work_dir: &Path, job: &str) -> Result<bool> {
    start_afresh(work_dir, job, true)
}

/// If the last run in `work_dir` completed ([`run_complete`]), moves everything in it into
/// `<work_dir>/previous/` (replacing an older `previous/`) so the job runs its plan again from
/// scratch; returns whether it did. An unfinished run (killed, cancelled, failed units) is left to
/// resume. Crash-safe: the files are gathered in a staging directory, `progress.json` last, and the
/// staging directory then replaces `previous/`; a crash in between is finished by the next call.
pub fn start_afresh_if_complete(work_dir: &Path, job: &str) -> Result<bool> {
    start_afresh(work_dir, job, false)
}

fn start_afresh(work_dir: &Path, job: &str, failures_too: bool) -> Result<bool> {
    let staging = work_dir.join(STAGING_DIR);
    let previous = work_dir.join(PREVIOUS_DIR);
    if staging.is_dir() {
        // A move interrupted after `progress.json` was gathered: finish it.
        if !work_dir.join(marketprism_jobs::PROGRESS_FILE).exists() {
            replace_previous(&staging, &previous)?;
            return Ok(true);
        }
        std::fs::remove_dir_all(&staging).map_err(io_error("remove", &staging))?;
    }
    if !run_ended(work_dir, job, failures_too)? {
        return Ok(false);
    }
    std::fs::create_dir(&staging).map_err(io_error("create", &staging))?;
    let mut names: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(work_dir).map_err(io_error("list", work_dir))? {
        let entry = entry.map_err(io_error("list", work_dir))?;
        let name = entry.file_name();
        if name == PREVIOUS_DIR || name == STAGING_DIR {
            continue;
        }
        names.push(PathBuf::from(name));
    }
    // progress.json last: while it is in place, the run still reads as complete.
    names.sort_by_key(|n| n.as_os_str() == marketprism_jobs::PROGRESS_FILE);
    for name in names {
        let (from, to) = (work_dir.join(&name), staging.join(&name));
        std::fs::rename(&from, &to).map_err(io_error("move", &from))?;
    }
    replace_previous(&staging, &previous)?;
    tracing::info!(work_dir = %work_dir.display(), "the last run was complete: starting afresh (its files are in previous/)");
    Ok(true)
}

fn replace_previous(staging: &Path, previous: &Path) -> Result<()> {
    if previous.exists() {
        std::fs::remove_dir_all(previous).map_err(io_error("remove", previous))?;
    }
    std::fs::rename(staging, previous).map_err(io_error("rename", staging))
}

/// A pinned time window: `[from_ms, to_ms)`, UTC ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Now, UTC ms, floored to the whole minute.
pub fn now_floored_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    now.div_euclid(60_000) * 60_000
}

/// `--last <duration>` (`90m`, `6h`, `1d`) at `now_ms`: `[now - d, now)`.
pub fn last_window(last: &str, now_ms: i64) -> Result<Window> {
    let d = marketprism_report::when::parse_duration(last)
        .map_err(|e| Error::Other(format!("invalid argument: {e}")))?;
    Ok(Window {
        from_ms: now_ms - d,
        to_ms: now_ms,
    })
}

/// The `--last` window of the run in `work_dir`: the one pinned in its `window.json` when there is
/// one (a resumed run finishes the plan it started), else `[now - d, now)` with now floored to the
/// minute, written to `window.json` (created with the work directory). Call it after
/// [`start_afresh_if_complete`], which moves a finished run's window away.
pub fn pinned_window(work_dir: &Path, last: &str) -> Result<Window> {
    // Validate the text even when a window is pinned: a typo must not pass silently.
    let fresh = last_window(last, now_floored_ms())?;
    let path = work_dir.join(WINDOW_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            return serde_json::from_slice(&bytes)
                .map_err(|e| Error::Other(format!("{}: {e}", path.display())));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("read", &path)(e)),
    }
    std::fs::create_dir_all(work_dir).map_err(io_error("create", work_dir))?;
    let tmp = work_dir.join(".window.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&fresh)?).map_err(io_error("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_error("rename", &tmp))?;
    Ok(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(dir: &Path, done: u64, total: u64, finished: bool, cancelled: bool) {
        let p = Progress {
            job: "verify".into(),
            total,
            done,
            failed: 0,
            pending: total - done,
            current_batch: 1,
            attempted_this_run: done,
            rate_units_per_s: 1.0,
            eta_s: None,
            finished,
            cancelled,
            started_at: "2026-11-30T00:00:00Z".into(),
            updated_at: "2026-11-30T00:00:00Z".into(),
        };
        p.write(dir).unwrap();
    }

    #[test]
    fn a_complete_run_moves_to_previous_and_an_unfinished_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path();
        assert!(!start_afresh_if_complete(wd, "verify").unwrap(), "empty");
        progress(wd, 2, 3, false, false);
        std::fs::write(wd.join("status.log"), b"x").unwrap();
        assert!(!start_afresh_if_complete(wd, "verify").unwrap(), "killed");
        progress(wd, 2, 3, true, true);
        assert!(
            !start_afresh_if_complete(wd, "verify").unwrap(),
            "cancelled"
        );
        progress(wd, 3, 3, true, false);
        assert!(
            !start_afresh_if_complete(wd, "repair").unwrap(),
            "other job"
        );
        assert!(wd.join("status.log").exists());
        assert!(start_afresh_if_complete(wd, "verify").unwrap());
        assert!(!wd.join("status.log").exists() && !wd.join("progress.json").exists());
        assert_eq!(std::fs::read(wd.join("previous/status.log")).unwrap(), b"x");
        // A second complete run replaces the older previous/.
        progress(wd, 3, 3, true, false);
        std::fs::write(wd.join("status.log"), b"y").unwrap();
        assert!(start_afresh_if_complete(wd, "verify").unwrap());
        assert_eq!(std::fs::read(wd.join("previous/status.log")).unwrap(), b"y");
        assert!(!wd.join("previous/previous").exists());
    }

    #[test]
    fn a_scheduled_run_moves_on_after_failed_units_and_a_manual_one_waits_for_retry() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path();
        // Finished, every unit attempted, one failed.
        let mut p = Progress::read(wd).unwrap().unwrap_or_else(|| {
            progress(wd, 2, 3, true, false);
            Progress::read(wd).unwrap().unwrap()
        });
        (p.failed, p.pending) = (1, 0);
        p.write(wd).unwrap();
        assert!(
            !start_afresh_if_complete(wd, "verify").unwrap(),
            "manual: --retry-failed"
        );
        assert!(
            start_afresh_if_attempted(wd, "verify").unwrap(),
            "--last: a new window"
        );
        assert!(wd.join("previous/progress.json").exists());
        // Interrupted (units pending): both resume.
        progress(wd, 1, 3, true, false);
        assert!(!start_afresh_if_attempted(wd, "verify").unwrap());
    }

    #[test]
    fn an_interrupted_move_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path();
        std::fs::create_dir(wd.join(STAGING_DIR)).unwrap();
        std::fs::write(wd.join(STAGING_DIR).join("progress.json"), b"{}").unwrap();
        assert!(start_afresh_if_complete(wd, "verify").unwrap());
        assert!(wd.join("previous/progress.json").exists());
        assert!(!wd.join(STAGING_DIR).exists());
    }

    #[test]
    fn the_last_window_is_pinned_until_moved_away() {
        let dir = tempfile::tempdir().unwrap();
        let wd = dir.path().join("w");
        assert_eq!(
            last_window("90m", 6_000_000).unwrap(),
            Window {
                from_ms: 600_000,
                to_ms: 6_000_000
            }
        );
        assert!(
            last_window("90", 0)
                .unwrap_err()
                .to_string()
                .contains("--last")
        );
        let first = pinned_window(&wd, "1d").unwrap();
        assert_eq!(first.to_ms % 60_000, 0);
        assert_eq!(first.to_ms - first.from_ms, 86_400_000);
        // Pinned: a later call (another `now`) gets the same window, whatever the clock says.
        let fake = Window {
            from_ms: 1,
            to_ms: 2,
        };
        std::fs::write(wd.join(WINDOW_FILE), serde_json::to_vec(&fake).unwrap()).unwrap();
        assert_eq!(pinned_window(&wd, "1d").unwrap(), fake);
        assert!(pinned_window(&wd, "x").is_err());
    }
}
