//! Scale benchmark (issue 16): a 10-million-unit job with 9.99 M units done in its status log.
//! Goal: open + resume in ≤ 2 s with ≤ 100 MB of memory (peak RSS, VmHWM).
//!
//! `cargo bench -p marketprism-jobs` (a plain `harness = false` bench that prints its figures).
//! The parent process builds the work directory (≈ 0.6 GB of log and an 81 MB checkpoint, in
//! `$JOBS_BENCH_DIR` or the system temp dir, deleted at the end) through the public API (the
//! runner writes checkpoints every 1 Mi records and at its end), then measures in fresh child
//! processes (the bench binary re-invoked) so each peak-RSS figure is the measured phase's alone:
//! - `resume`: open the work dir, count the plan against it ([`WorkDir::tally`]) and stream the
//!   pending units ([`WorkDir::pending`]): two plan passes, without running them;
//! - `run`: open + run the 10 000 pending units to completion with a no-op unit (what rerunning
//!   the job does: one plan pass, as the runner keeps the few selected ids; 10 batches of 1000
//!   records each `fsync`ed, `progress.json` rewritten per batch; no checkpoint at its end, as
//!   10 000 records are fewer than `checkpoint_at_end`).
//!
//! `JOBS_BENCH_UNITS` (default 10 000 000) and `JOBS_BENCH_LEFT` (default 10 000) scale it down;
//! `JOBS_BENCH_KEEP=1` keeps the work dir and prints `JOBS_BENCH_REUSE=…`, which measures it again
//! without the setup (the `run` phase puts the log and the checkpoint back as they were).
//!
//! Figures (2026-11-30, shared 2-core VM, load average 5–6 from other builds; wall-clock figures
//! vary by ±50 % from run to run there, the CPU figure less):
//! - before checkpoints (the whole 523 MB log read on open; lookups by fingerprint only): open
//!   2.7–3.1 s; `resume` 28–35 s wall, 19–23 s CPU; `run` 23.9 s wall, 15.8 s CPU (4.7–6.2 s wall,
//!   3.2–4.0 s CPU on a quieter day); peak RSS ~90 MB.
//! - now: open 0.13–0.33 s (the checkpoint's keys are read, checked and indexed in one pass;
//!   no log record after it); `run` 1.4–2.0 s wall, 0.9–1.4 s CPU (goal ≤ 2 s; 2 of 11 runs, in
//!   load spikes, took 2.8–3.1 s); `resume` 2.9–3.2 s wall, 1.9–2.2 s CPU (each pass ~1.4 s, of
//!   which the bench's planner alone, 10 M `String`s allocated, validated and freed, ~0.7 s);
//!   peak RSS 91–93 MB (goal ≤ 100 MB; done set 80 MB + index 4 MB + plan maps 2.5 MB).
//!
//! Where the time goes now (`perf`): the planner's allocations and id validation, and the
//! fingerprints (about half), faulting in the 80 MB done set (~6 %, page faults are slow on this VM), the lookups of
//! the plan map's clear bits (~5 %). What would cut it further: keeping the done set's keys on disk
//! behind a sparse index (no 80 MB allocation; lookups by positioned reads), or a planner that
//! yields borrowed ids instead of one `String` each.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use marketprism_jobs::{RunOptions, Selection, UnitId, WorkDir, run};

const EXCHANGES: [&str; 5] = [
    "binance_spot",
    "binance_usdm",
    "okx_spot",
    "okx_swap",
    "deribit",
];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The planner: table/exchange/symbol/day, `n` units, always the same order (1000 days per
/// exchange × symbol, so the prefix is formatted once per 1000 units, as a real planner would).
fn plan(n: u64) -> impl Iterator<Item = UnitId> {
    let days: Vec<String> = (0..1000)
        .map(|d| format!("{}-d{:03}", 2024 + d / 365, d % 365))
        .collect();
    (0..n.div_ceil(1000)).flat_map(move |rest| {
        let prefix = format!(
            "trades/{}/SYM{:05}-USDT/",
            EXCHANGES[(rest % 5) as usize],
            rest / 5
        );
        let days = days.clone();
        (0..1000u64)
            .take_while(move |d| rest * 1000 + d < n)
            .map(move |d| {
                let mut id = String::with_capacity(prefix.len() + 10);
                id.push_str(&prefix);
                id.push_str(&days[d as usize]);
                UnitId::new(id).unwrap()
            })
    })
}

fn vm_hwm_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    kb / 1024.0
}

/// CPU seconds (user + system) of this process so far: on a loaded machine the wall-clock figures
/// include waiting for a CPU, this does not. (`/proc/self/stat` fields 14 and 15, at 100 ticks/s.)
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_name
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    fields
        .get(11)
        .zip(fields.get(12))
        .map_or(f64::NAN, |(u, s)| (u + s) / 100.0)
}

fn quiet() -> RunOptions {
    RunOptions {
        progress_bar: false,
        report_interval: Duration::from_secs(3600),
        ..RunOptions::default()
    }
}

fn measure(phase: &str, dir: &Path, units: u64, left: u64) {
    let log = dir.join(marketprism_jobs::LOG_FILE);
    let log_len = std::fs::metadata(&log).unwrap().len();
    let ckpt = dir.join(marketprism_jobs::CHECKPOINT_FILE);
    let saved = dir.join("checkpoint.bench-saved");
    if phase == "run" && ckpt.exists() {
        std::fs::copy(&ckpt, &saved).unwrap();
    }
    let t0 = Instant::now();
    let mut wd = WorkDir::open(dir, "bench").unwrap();
    let open = t0.elapsed();
    let done_set_mb = wd.done_set_bytes() as f64 / 1e6;
    println!(
        "{phase}: opened with{} a checkpoint, {} log records read",
        if wd.checkpoint_used() { "" } else { "out" },
        wd.records_read()
    );
    match phase {
        "resume" => {
            let t1 = Instant::now();
            let tally = wd.tally(plan(units), Selection::Pending);
            let count = t1.elapsed();
            let t2 = Instant::now();
            let pending = wd.pending(plan(units), Selection::Pending).count() as u64;
            let stream = t2.elapsed();
            assert_eq!(
                (tally.total, tally.done, tally.selected, pending),
                (units, units - left, left, left)
            );
            let (total, cpu) = (t0.elapsed(), cpu_s());
            // The planner alone (generating the ids, no lookups): what a pass costs at least.
            let t3 = Instant::now();
            assert_eq!(plan(units).count() as u64, units);
            println!(
                "resume: open {:.3} s, count pass {:.3} s, pending pass {:.3} s, total {:.3} s (CPU {:.2} s); \
                 peak RSS {:.1} MB (done set {:.1} MB); the planner alone {:.3} s a pass",
                open.as_secs_f64(),
                count.as_secs_f64(),
                stream.as_secs_f64(),
                total.as_secs_f64(),
                cpu,
                vm_hwm_mb(),
                done_set_mb,
                t3.elapsed().as_secs_f64()
            );
        }
        _ => {
            let s = run(&mut wd, || plan(units), &quiet(), |_| Ok(()), |_| {}).unwrap();
            assert_eq!((s.attempted, s.progress.done), (left, units));
            println!(
                "run:    open {:.3} s, open + run of the {left} pending units {:.3} s (CPU {:.2} s); peak RSS {:.1} MB",
                open.as_secs_f64(),
                t0.elapsed().as_secs_f64(),
                cpu_s(),
                vm_hwm_mb()
            );
            drop(wd);
            // Put the work dir back as it was, so it can be measured again.
            if saved.exists() {
                std::fs::rename(&saved, &ckpt).unwrap();
            }
            std::fs::OpenOptions::new()
                .write(true)
                .open(&log)
                .unwrap()
                .set_len(log_len)
                .unwrap();
        }
    }
}

fn main() {
    let units = env_u64("JOBS_BENCH_UNITS", 10_000_000);
    let left = env_u64("JOBS_BENCH_LEFT", 10_000).min(units);
    if let Ok(phase) = std::env::var("JOBS_BENCH_PHASE") {
        measure(
            &phase,
            Path::new(&std::env::var("JOBS_BENCH_WORKDIR").unwrap()),
            units,
            left,
        );
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / `cargo test --benches`
    }
    if let Ok(dir) = std::env::var("JOBS_BENCH_REUSE") {
        // A work dir kept from an earlier setup (`JOBS_BENCH_KEEP=1`): measure only.
        return phases(Path::new(&dir), units, left);
    }
    let base = std::env::var_os("JOBS_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let tmp = tempfile::Builder::new()
        .prefix("jobs-bench")
        .tempdir_in(base)
        .unwrap();
    let dir = tmp.path().join("work");

    // Build: 9.99 M units done through the runner (large batches to keep the setup short).
    let t = Instant::now();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut wd = WorkDir::open(&dir, "bench").unwrap();
    let opts = RunOptions {
        batch_size: 1 << 20,
        max_batch_interval: Duration::from_secs(60),
        cancel: Some(cancel.clone()),
        ..quiet()
    };
    let mut n = 0u64;
    run(
        &mut wd,
        || plan(units),
        &opts,
        |_| {
            n += 1;
            cancel.store(n >= units - left, Ordering::Relaxed);
            Ok(())
        },
        |_| {},
    )
    .unwrap();
    drop(wd);
    let log_mb = std::fs::metadata(dir.join(marketprism_jobs::LOG_FILE))
        .unwrap()
        .len() as f64
        / 1e6;
    println!(
        "setup: {units} units, {} done, log {log_mb:.0} MB, built in {:.1} s",
        units - left,
        t.elapsed().as_secs_f64()
    );

    if std::env::var_os("JOBS_BENCH_KEEP").is_some() {
        println!(
            "kept: JOBS_BENCH_REUSE={}",
            tmp.keep().join("work").display()
        );
        return;
    }
    phases(&dir, units, left);
}

fn phases(dir: &Path, units: u64, left: u64) {
    for phase in ["resume", "resume", "run"] {
        let status = Command::new(std::env::current_exe().unwrap())
            .env("JOBS_BENCH_PHASE", phase)
            .env("JOBS_BENCH_WORKDIR", dir)
            .env("JOBS_BENCH_UNITS", units.to_string())
            .env("JOBS_BENCH_LEFT", left.to_string())
            .status()
            .unwrap();
        assert!(status.success(), "{phase} failed");
    }
}
