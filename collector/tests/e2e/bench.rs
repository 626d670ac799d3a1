//! `bench collector` end to end: the simulator and the collector as two processes of the binary, a
//! short window at a low rate. The figures depend on the machine; the test checks that each is
//! measured (frames from every product line, CPU, memory), not how fast anything is.

use marketprism_collector::bench::collector::{CollectorBenchOptions, run_collector_bench};
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_collector_measures_frames_cpu_and_memory_of_the_collector_process() {
    let opts = CollectorBenchOptions {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_marketprism-collector")),
        rate_per_s: 2,
        seconds: 3.0,
        warmup_s: 3.0,
        worker_threads: None,
        flush_interval_ms: None,
        keep: false,
        floor: false,
        nats_url: None,
        wake_coalesce_ms: None,
    };
    let report = tokio::task::spawn_blocking(move || run_collector_bench(&opts))
        .await
        .unwrap()
        .expect("the bench runs");
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
    let opts = CollectorBenchOptions {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_marketprism-collector")),
        rate_per_s: 2,
        seconds: 3.0,
        warmup_s: 3.0,
        worker_threads: None,
        flush_interval_ms: None,
        keep: false,
        floor: true,
        nats_url: None,
        wake_coalesce_ms: None,
    };
    let report = tokio::task::spawn_blocking(move || run_collector_bench(&opts))
        .await
        .unwrap()
        .expect("the floor bench runs");
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
