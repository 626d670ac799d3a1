//! `bench collector` end to end: the simulator and the collector as two processes of the binary, a
//! short window at a low rate. The figures depend on the machine; the test checks that each is
//! measured (frames from every product line, CPU, memory), not how fast anything is.

use marketprism_collector::bench::collector::{
    CollectorBenchOptions, CollectorBenchReport, run_collector_bench,
};
use std::path::PathBuf;

/// A 3 s window at rate 2 after 3 s of warm-up, the collector (or with `floor` the floor reader) into Parquet.
async fn short_bench(floor: bool) -> CollectorBenchReport {
    let opts = CollectorBenchOptions {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_marketprism-collector")),
        rate_per_s: 2,
        seconds: 3.0,
        warmup_s: 3.0,
        worker_threads: None,
        flush_interval_ms: None,
        keep: false,
        floor,
        nats_url: None,
        wake_coalesce_ms: None,
        stop: Default::default(),
    };
    tokio::task::spawn_blocking(move || run_collector_bench(&opts))
        .await
        .unwrap()
        .expect("the bench runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_collector_measures_frames_cpu_and_memory_of_the_collector_process() {
    let report = short_bench(false).await;
    assert!(report.frames > 0, "{report:?}");
    assert!(
        report.frames_per_s > 0.0 && report.cpu_us_per_frame > 0.0,
        "{report:?}"
    );
    assert!(report.cpu_percent_of_core > 0.0, "{report:?}");
    assert!(
        report.rss_mb > 1.0 && report.peak_rss_mb >= report.rss_mb,
        "{report:?}"
    );
    assert!(report.threads >= 1, "{report:?}");
    // Every product line delivered frames inside the window, and they are data, not acks.
    assert_eq!(report.frames_per_s_by_exchange.len(), 9, "{report:?}");
    assert!(
        report.frames_per_s_by_exchange.values().all(|&n| n > 0.0),
        "{report:?}"
    );
    assert!(
        report
            .frames_per_s_by_channel
            .get("trades")
            .is_some_and(|&n| n > 0.0),
        "{report:?}"
    );
    assert!(report.dir.is_none(), "the temporary directory is removed");
}

/// `--floor`: the same connections, subscriptions and keep-alive, every frame counted unparsed. A
/// reader that subscribed wrongly or got disconnected would count nothing on some product line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_collector_floor_receives_every_product_line_without_parsing() {
    let report = short_bench(true).await;
    assert_eq!(report.frames_per_s_by_exchange.len(), 9, "{report:?}");
    assert!(
        report.frames_per_s_by_exchange.values().all(|&n| n > 0.0),
        "{report:?}"
    );
    // Nothing is parsed: every frame is counted on the floor channel alone.
    assert_eq!(
        report.frames_per_s_by_channel.keys().collect::<Vec<_>>(),
        ["floor"],
        "{report:?}"
    );
    assert!(report.cpu_us_per_frame > 0.0, "{report:?}");
}

const BIN: &str = env!("CARGO_BIN_EXE_marketprism-collector");

fn bench_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN)
        .args(["bench", "collector"])
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Bad windows, rates and combinations are refused by the command line, before any child starts.
#[test]
fn bench_collector_refuses_bad_windows_rates_and_combinations() {
    for (args, names) in [
        (&["--seconds=-1"][..], "--seconds"),
        (&["--seconds", "nan"], "--seconds"),
        (&["--seconds", "0"], "--seconds"),
        (&["--warmup-s=-1"], "--warmup-s"),
        (&["--rate", "0"], "--rate"),
        (
            &["--floor", "--nats-url", "nats://127.0.0.1:4222"],
            "--floor",
        ),
    ] {
        let out = bench_cli(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}

/// A collector that cannot start (an invalid setting) or an output it cannot reach fails the bench
/// with the reason, instead of a wait for frames or a report of a collector that dropped everything.
#[test]
fn bench_collector_fails_with_the_reason_when_the_collector_cannot_work() {
    for (setting, reason) in [
        // The child's own error, at once: not "no frame counted within 60 s".
        (
            ["--wake-coalesce-ms", "51"],
            &["the collector exited", "collector.wake_coalesce_ms"][..],
        ),
        (
            ["--nats-url", "nats://127.0.0.1:1"],
            &["--nats-url nats://127.0.0.1:1"],
        ),
    ] {
        let window = ["--rate", "2", "--seconds", "1", "--warmup-s", "0"];
        let out = bench_cli(&[&window[..], &setting[..]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{setting:?}: {stderr}");
        assert!(
            reason.iter().all(|r| stderr.contains(r)),
            "{setting:?}: {stderr}"
        );
    }
}

/// SIGTERM to the bench mid-window: it stops, kills both children and removes its directory.
#[test]
fn an_interrupted_bench_collector_leaves_no_process_or_directory_behind() {
    let mut bench = std::process::Command::new(BIN)
        .args([
            "bench",
            "collector",
            "--rate",
            "2",
            "--seconds",
            "60",
            "--warmup-s",
            "0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!("marketprism-bench-collector-{}-", bench.id());
    let run_dir = || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&prefix)
            })
    };
    // Both children run once the collector's config is written.
    let dir = loop {
        if let Some(dir) = run_dir().filter(|d| d.join("collector.yaml").exists()) {
            break dir;
        }
        assert!(bench.try_wait().unwrap().is_none(), "the bench ended early");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let children_of_run = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|cmd| String::from_utf8_lossy(cmd).contains(&*dir.to_string_lossy()))
            .count()
    };
    assert_eq!(children_of_run(), 2, "simulator and collector run");
    std::process::Command::new("kill")
        .args(["-TERM", &bench.id().to_string()])
        .status()
        .unwrap();
    let out = bench.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(children_of_run(), 0, "a child outlived the bench");
    assert!(!dir.exists(), "{} was left behind", dir.display());
}
