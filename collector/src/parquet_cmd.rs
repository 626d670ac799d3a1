//! `parquet compact` and `parquet check`: maintenance of a Parquet dataset at rest (the Parquet
//! output's `dir`). Exit codes: 0 done / clean, 1 problems found, 2 cannot run.

use marketprism_pipeline::store::parquet::check::{CheckReport, check_dataset};
use marketprism_pipeline::store::parquet::compact_io::{CompactOptions, compact_dataset};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum ParquetCommand {
    /// Merge each partition's files of closed hours into one file per partition and hour, finish or
    /// undo merges a kill interrupted, and delete `date=` partitions beyond `--retention-days`. Safe to
    /// kill at any moment and to rerun. Exit 0 done, 1 some files were left untouched (listed), 2 cannot
    /// run (no such directory, or another compaction of it is running).
    Compact(CompactArgs),
    /// Read every data file fully (footer and every row group); list damaged files and crash leftovers,
    /// each with what to do, and the files, rows and bytes per data type. Exit 0 clean, 1 damage or
    /// leftovers found, 2 cannot run (no such directory).
    Check(CheckArgs),
}

#[derive(clap::Args)]
pub struct CompactArgs {
    /// The dataset: the Parquet output's `dir`.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seconds after an hour's end (UTC, event time) before its files are merged.
    #[arg(long, default_value_t = 120)]
    pub grace_s: u64,
    /// Delete `date=` partitions older than today minus this many days (UTC); 0 keeps everything.
    #[arg(long, default_value_t = 0)]
    pub retention_days: u32,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The dataset: the Parquet output's `dir`.
    #[arg(long)]
    pub dir: PathBuf,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs the command; its exit code.
pub fn run(command: ParquetCommand) -> i32 {
    match command {
        ParquetCommand::Compact(args) => compact(args),
        ParquetCommand::Check(args) => check(args),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn compact(args: CompactArgs) -> i32 {
    let opts = CompactOptions {
        now_ms: now_ms(),
        grace_ms: (args.grace_s as i64).saturating_mul(1000),
        retention_days: args.retention_days,
        merge: true,
    };
    let started = std::time::Instant::now();
    let report = match compact_dataset(&args.dir, &opts, &|| false) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: parquet compact {}: {e}", args.dir.display());
            return 2;
        }
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    if args.json {
        let mut v = serde_json::to_value(&report).unwrap_or_default();
        v["elapsed_ms"] = elapsed_ms.into();
        println!("{v}");
    } else {
        println!(
            "{}: {} partitions, {} files merged into {} ({} rows), {} interrupted merges finished, {} undone, \
             {} temporaries removed, {} days deleted by retention{}, in {elapsed_ms} ms",
            args.dir.display(),
            report.partitions,
            report.files_merged,
            report.merges,
            report.rows_merged,
            report.recovered_forward,
            report.recovered_back,
            report.temporaries_removed,
            report.dates_deleted.len(),
            if report.dates_deleted.is_empty() {
                String::new()
            } else {
                format!(" ({})", report.dates_deleted.join(", "))
            },
        );
        for p in &report.problems {
            println!("left untouched: {p}");
        }
    }
    i32::from(!report.problems.is_empty())
}

fn check(args: CheckArgs) -> i32 {
    let report = match check_dataset(&args.dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: parquet check: {e}");
            return 2;
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print_check(&report);
    }
    i32::from(!report.is_clean())
}

fn print_check(r: &CheckReport) {
    println!(
        "{}: {} readable data files, {} rows, {} bytes",
        r.dir.display(),
        r.total.files,
        r.total.rows,
        r.total.bytes
    );
    for (data_type, c) in &r.per_data_type {
        println!(
            "  {data_type:<24} {:>8} files {:>12} rows {:>14} bytes",
            c.files, c.rows, c.bytes
        );
    }
    if !r.damaged.is_empty() {
        println!("{} damaged data files:", r.damaged.len());
        for d in &r.damaged {
            println!(
                "  {}\n    failed: {}\n    do: {}",
                d.path.display(),
                d.error,
                d.advice
            );
        }
    }
    if !r.leftovers.is_empty() {
        println!(
            "{} leftovers of interrupted writes (hidden, not data):",
            r.leftovers.len()
        );
        for l in &r.leftovers {
            println!("  {}\n    do: {}", l.path.display(), l.advice);
        }
    }
    if r.is_clean() {
        println!("clean: every file read fully");
    }
}
