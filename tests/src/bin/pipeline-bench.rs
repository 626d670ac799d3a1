//! Stand-in for `marketprism-collector bench pipeline` until the CLI wires it:
//! `pipeline-bench EVENTS [RATE_PER_S|max] [MAX_WAIT_MS]`, servers from the MARKETPRISM_TEST_* env vars.
#![forbid(unsafe_code)]

use anyhow::Context;
use marketprism_collector::bench::{PipelineBenchOptions, run_pipeline_bench};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events: usize = args.first().map_or(Ok(100_000), |s| s.parse())?;
    let nats = std::env::var("MARKETPRISM_TEST_NATS_URL").context("MARKETPRISM_TEST_NATS_URL")?;
    let clickhouse = std::env::var("MARKETPRISM_TEST_CLICKHOUSE_URL")
        .context("MARKETPRISM_TEST_CLICKHOUSE_URL")?;
    let mut opts = PipelineBenchOptions::new(events, &nats, &clickhouse);
    opts.rate_per_s = match args.get(1).map(String::as_str) {
        None | Some("max") => None,
        Some(r) => Some(r.parse()?),
    };
    opts.max_wait_ms = args.get(2).map(|s| s.parse()).transpose()?;
    opts.cleanup = std::env::var_os("BENCH_KEEP").is_none();
    opts.timeout_s = 120;
    let report = run_pipeline_bench(opts).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    anyhow::ensure!(
        report.lost == 0 && report.duplicated == 0,
        "rows lost or duplicated"
    );
    Ok(())
}
