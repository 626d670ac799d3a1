//! Test-only stand-in for `marketprism-collector sink --config F`: the pipeline tests run the sink as a
//! child process to kill it with SIGKILL. Set `MARKETPRISM_COLLECTOR_BIN` to use the real CLI instead.
#![forbid(unsafe_code)]

use anyhow::Context;
use marketprism_config::Config;
use marketprism_telemetry::Health;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = match args.as_slice() {
        [_, cmd, flag, path] if cmd == "sink" && flag == "--config" => path,
        _ => anyhow::bail!("usage: test-sink sink --config FILE"),
    };
    let config = Config::load(path.as_ref())?;
    let sink = config.sink.context("config has no sink section")?;
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            s.cancel();
        }
    });
    marketprism_pipeline::sink::run_sink(sink, Health::new(), shutdown).await?;
    Ok(())
}
