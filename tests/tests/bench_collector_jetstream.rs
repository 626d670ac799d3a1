//! `bench collector --nats-url` with the release binary and a real JetStream: the benchmarked
//! collector publishes the nine product lines into two streams of the run's own (the production
//! output, not Parquet), with wake-up coalescing on. With `--keep` the streams stay and hold the
//! messages; without it they are deleted when the bench ends.
#![forbid(unsafe_code)]

use futures::TryStreamExt;
use marketprism_tests::servers::{env_or_skip, nats_url};
use serde_json::Value;
use std::process::Command;

fn bench(bin: &str, nats: &str, keep: bool) -> Value {
    let mut cmd = Command::new(bin);
    cmd.args(["bench", "collector", "--rate", "2", "--seconds", "2"])
        .args([
            "--warmup-s",
            "2",
            "--wake-coalesce-ms",
            "5",
            "--nats-url",
            nats,
        ]);
    if keep {
        cmd.arg("--keep");
    }
    let out = cmd.output().expect("the release binary runs");
    assert!(
        out.status.success(),
        "bench collector failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_collector_publishes_into_jetstream_streams_of_its_own_and_removes_them() {
    let test = "bench_collector_publishes_into_jetstream_streams_of_its_own_and_removes_them";
    let (Some(bin), Some(nats)) = (env_or_skip("MARKETPRISM_RELEASE_BIN", test), nats_url(test))
    else {
        return;
    };
    let js = async_nats::jetstream::new(async_nats::connect(&nats).await.unwrap());

    let kept = bench(&bin, &nats, true);
    let by_exchange = kept["frames_per_s_by_exchange"].as_object().unwrap();
    assert_eq!(by_exchange.len(), 9, "{kept}");
    assert!(
        by_exchange.values().all(|v| v.as_f64() > Some(0.0)),
        "{kept}"
    );
    let streams: Vec<String> = serde_json::from_value(kept["streams"].clone()).unwrap();
    assert_eq!(streams.len(), 2, "{kept}");
    let mut messages = 0;
    for name in &streams {
        let mut stream = js.get_stream(name).await.expect("a kept stream exists");
        messages += stream.info().await.unwrap().state.messages;
        js.delete_stream(name).await.unwrap();
    }
    assert!(messages > 0, "the collector published into {streams:?}");
    if let Some(dir) = kept["dir"].as_str() {
        let _ = std::fs::remove_dir_all(dir);
    }

    let removed = bench(&bin, &nats, false);
    assert!(removed.get("streams").is_none(), "{removed}");
    assert!(removed["frames"].as_u64() > Some(0), "{removed}");
    let names: Vec<String> = js.stream_names().try_collect().await.unwrap();
    assert!(
        !names.iter().any(|n| n.starts_with("BENCH_")),
        "a bench stream was left behind: {names:?}"
    );
}
