//! `marketprism-collector`: the collector pod's one binary.
//!
//! - `run`: collect from the configured sources into the configured outputs (Parquet by default).
//! - `sink`: consume JetStream and batch-insert into ClickHouse.
//! - `schema`: print the ClickHouse DDL for a server version; `--check` / `--migrate` a live server.
//! - `simulate`: serve the exchange simulator.
//! - `report`: the data-quality report of a Parquet dataset or ClickHouse database; exit 0 pass, 1 fail, 2 error.
//! - `job import` / `job replay` / `job verify` / `job repair`: resumable jobs over stored data (Parquet →
//!   ClickHouse; stored events → NATS or stdout; hot vs cold vs Parquet, and the copies that mend them);
//!   rerunning resumes, `--retry-failed`, `--show-stats`.
//! - `parquet compact` / `parquet check`: merge a Parquet dataset's small files per hour (crash-safe),
//!   retention; read every file and list damage with what to do; exit 0 clean, 1 problems, 2 cannot run.
//! - `bench pipeline`: publisher → JetStream → sink → ClickHouse throughput and latency, as JSON.
//! - `bench collector`: the whole collector against the simulator in another process: CPU per frame,
//!   RSS, context switches, as JSON.
#![forbid(unsafe_code)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use marketprism_collector::telemetry::{self, Health};
use marketprism_config::Config;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// mimalloc: the sink and publisher allocate per message; glibc malloc spent ~40% of the sink's CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "marketprism-collector", version, about)]
struct Cli {
    /// Log as JSON lines (for log shippers) instead of text.
    #[arg(long, global = true, env = "MARKETPRISM_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Collect market data into the configured outputs until a signal or `collector.duration_s`.
    Run {
        #[arg(long, short, env = "MARKETPRISM_CONFIG")]
        config: PathBuf,
    },
    /// Consume JetStream and insert into ClickHouse; ack only after the rows are in.
    Sink {
        #[arg(long, short, env = "MARKETPRISM_CONFIG")]
        config: PathBuf,
    },
    /// Print the ClickHouse DDL for a server version (18.16 gets the legacy dialect, 23.8+ production);
    /// with --check or --migrate, compare the configured server's tables with it (and fix them).
    Schema {
        /// Server version, as `SELECT version()` prints it.
        #[arg(long, default_value = "23.8")]
        server_version: String,
        /// Take database names and TTLs from this config's `sink.clickhouse`.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Compare every table and view the sink writes through with the DDL of the server's
        /// version; print each difference and its fix; exit 1 if any.
        #[arg(long, conflicts_with = "migrate")]
        check: bool,
        /// Apply the fixes that are safe in place (add or retype columns, recreate views, create
        /// what is missing), then check again; exit 1 if differences remain (engine, sort key).
        #[arg(long)]
        migrate: bool,
    },
    /// Serve the exchange simulator (Binance, OKX, Deribit, Gate.io and MEXC wire protocols) until a signal.
    Simulate {
        /// Take the `simulator:` section of this config (defaults otherwise).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Listen address (overrides the config).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        #[arg(long)]
        seed: Option<u64>,
        /// Serve `wss://` and `https://` with a CA generated at start (overrides the config).
        #[arg(long)]
        tls: bool,
        /// With TLS: write the CA certificate (PEM) here, for the collector's `tls.ca_file`.
        #[arg(long, requires = "tls")]
        ca_out: Option<PathBuf>,
    },
    /// Benchmarks on the local servers; results as JSON on stdout.
    #[command(subcommand)]
    Bench(Bench),
    /// The data-quality report per stream (exchange × market type × data type × symbol): rows, empty
    /// minutes, duplicates, gaps, latency, judged against acceptance criteria. Exit code 0 when every
    /// stream passes, 1 when one fails, 2 when the report cannot be made.
    Report(ReportArgs),
    /// Resumable jobs over stored data: `import` (Parquet → ClickHouse, one unit per file), `replay`
    /// (Parquet or ClickHouse → NATS or stdout NDJSON, in exchange-time order), `verify` (hot vs cold,
    /// ClickHouse vs Parquet) and `repair` (copies what verify finds missing). Rerunning the same
    /// command resumes; exit code 1 when units failed (verify: or a discrepancy was found).
    #[command(subcommand)]
    Job(marketprism_collector::job::JobCommand),
    /// A Parquet dataset at rest: `compact` (one file per partition and hour, retention) and `check`
    /// (read every file, list damage and what to do). Exit 0 clean, 1 problems found, 2 cannot run.
    #[command(subcommand)]
    Parquet(marketprism_collector::parquet_cmd::ParquetCommand),
}

#[derive(clap::Args)]
struct ReportArgs {
    /// The collector's config: its `outputs.parquet.dir`, else its `sink.clickhouse`.
    #[arg(long, short, env = "MARKETPRISM_CONFIG")]
    config: Option<PathBuf>,
    /// Read this Parquet dataset (`date=…/exchange=…/data_type=…/*.parquet`).
    #[arg(long)]
    parquet: Option<PathBuf>,
    /// Read ClickHouse: the config's `sink.clickhouse` (credentials from the environment).
    #[arg(long)]
    clickhouse: bool,
    /// With --clickhouse: the database to read (default: the hot database).
    #[arg(long)]
    database: Option<String>,
    /// Start of the range: RFC 3339 or UTC ms (default: the data's first row).
    #[arg(long)]
    from: Option<String>,
    /// End of the range, exclusive (default: now with --from/--last, else the data's last row).
    #[arg(long)]
    to: Option<String>,
    /// The range as a duration ending at --to or now: 90s, 15m, 2h, 3d.
    #[arg(long)]
    last: Option<String>,
    /// Criteria overrides (YAML or JSON); the OFI + CVD harvester's criteria otherwise.
    #[arg(long)]
    criteria: Option<PathBuf>,
    /// Write the whole report as JSON here (`-`: stdout; the default when no output is given).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the self-contained HTML page here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the compact verdict (≤ 4 KB JSON) here, e.g. `/dev/termination-log` in a Kubernetes Job.
    #[arg(long)]
    summary: Option<PathBuf>,
}

/// Makes and writes the report; its verdict.
async fn report_command(args: ReportArgs) -> anyhow::Result<marketprism_report::Verdict> {
    use marketprism_collector::report::{choose_source, load_criteria, make_report, write_outputs};
    let config = args.config.as_deref().map(Config::load).transpose()?;
    let source = choose_source(
        args.parquet.as_deref(),
        args.clickhouse,
        config.as_ref(),
        args.database.as_deref(),
    )?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let range = marketprism_report::when::range_from_args(
        args.from.as_deref(),
        args.to.as_deref(),
        args.last.as_deref(),
        now_ms,
    )?;
    let criteria = load_criteria(args.criteria.as_deref())?;
    // With a config, every stream it collects is judged, also one that wrote nothing.
    let expected = config
        .as_ref()
        .map(marketprism_collector::report::expected_streams)
        .unwrap_or_default();
    let report = make_report(&source, range, &criteria, &expected).await?;
    for skipped in &report.skipped {
        eprintln!("report: left out (not the dataset's layout): {skipped}");
    }
    let json = match (&args.json, &args.html, &args.summary) {
        (None, None, None) => Some(PathBuf::from("-")),
        (json, _, _) => json.clone(),
    };
    write_outputs(
        &report,
        json.as_deref(),
        args.html.as_deref(),
        args.summary.as_deref(),
    )?;
    let failing = report
        .streams
        .iter()
        .filter(|s| s.verdict == marketprism_report::Verdict::Fail)
        .count();
    eprintln!(
        "report: {:?}: {} streams, {failing} failing{}",
        report.verdict,
        report.streams.len(),
        report
            .failures
            .first()
            .map(|f| format!("; first: {f}"))
            .unwrap_or_default()
    );
    Ok(report.verdict)
}

#[derive(Subcommand)]
enum Bench {
    /// N synthetic events through publisher → JetStream → sink → ClickHouse (or, --publish-only, to
    /// JetStream alone): events/s, latency, CPU per stage and per server, RSS, lost, duplicated.
    Pipeline {
        #[arg(long, default_value_t = 500_000)]
        events: usize,
        /// Offered events per second; as fast as the publisher takes them when absent.
        #[arg(long)]
        rate: Option<u64>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(
            long,
            env = "MARKETPRISM_NATS_URL",
            default_value = "nats://127.0.0.1:4222"
        )]
        nats_url: String,
        #[arg(
            long,
            env = "MARKETPRISM_CLICKHOUSE_URL",
            default_value = "http://127.0.0.1:8123"
        )]
        clickhouse_url: String,
        /// Override every data type's batch max wait (ms).
        #[arg(long)]
        max_wait_ms: Option<u64>,
        #[arg(long, default_value_t = 600)]
        timeout_s: u64,
        /// Keep the run's streams and databases for inspection.
        #[arg(long)]
        keep: bool,
        /// Only source → publisher → JetStream (no sink, no ClickHouse): the JetStream baseline.
        #[arg(long)]
        publish_only: bool,
        /// NATS server pid for its CPU; default: the local process listening on the URL's port.
        #[arg(long)]
        nats_pid: Option<u32>,
        /// ClickHouse server pid for its CPU; default: the local process listening on the URL's port.
        #[arg(long)]
        clickhouse_pid: Option<u32>,
    },
    /// The whole collector (`run`, all nine product lines into Parquet) against the simulator in
    /// another process: CPU µs per frame, % of a core, RSS, context switches, frames per second.
    Collector {
        /// The simulator's `rate_per_s` (book diffs and trade batches per second per symbol).
        #[arg(long, default_value_t = 280, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        rate: u32,
        /// Length of the measured window, seconds.
        #[arg(long, default_value_t = 30.0, value_parser = positive_seconds)]
        seconds: f64,
        /// Seconds after the first frame before the window starts.
        #[arg(long, default_value_t = 10.0, value_parser = non_negative_seconds)]
        warmup_s: f64,
        /// The collector's `collector.worker_threads` (default: the config's default).
        #[arg(long)]
        worker_threads: Option<usize>,
        /// The collector's `outputs.parquet.flush_interval_ms` (default: the config's default).
        #[arg(long)]
        flush_interval_ms: Option<u64>,
        /// Keep the temporary directory (configs, logs, Parquet) and print its path.
        #[arg(long)]
        keep: bool,
        /// The collector's `collector.wake_coalesce_ms` (default: the config's default, off).
        #[arg(long)]
        wake_coalesce_ms: Option<u64>,
        /// Measure the floor instead: a child that only receives and counts the same frames (same
        /// connections, subscriptions, keep-alive and runtime), parsing and storing nothing.
        #[arg(long, conflicts_with = "nats_url")]
        floor: bool,
        /// Publish to JetStream at this URL (the production output) instead of writing Parquet.
        #[arg(long)]
        nats_url: Option<String>,
    },
    /// The child of `bench collector --floor` (see `bench::floor`).
    #[command(hide = true)]
    FloorReader {
        #[arg(long)]
        config: PathBuf,
    },
}

/// A `--seconds` value: finite and above zero.
fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 86_400.0 => Ok(x),
        _ => Err(format!("{s:?}: seconds above 0, at most 86400")),
    }
}

/// A `--warmup-s` value: finite, zero or more.
fn non_negative_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=86_400.0).contains(&x) => Ok(x),
        _ => Err(format!("{s:?}: seconds from 0 to 86400")),
    }
}

/// `schema --check` / `--migrate`: every difference with its fix on stdout; an error when any remain.
async fn check_schema(
    clickhouse: marketprism_config::ClickHouseConfig,
    migrate: bool,
) -> anyhow::Result<()> {
    use marketprism_model::DataType;
    use marketprism_pipeline::store::{ClickHouseWriter, schema_check};
    let writer = ClickHouseWriter::connect(&clickhouse).await?;
    let differences = async |writer: &ClickHouseWriter| -> anyhow::Result<Vec<_>> {
        let mut all = Vec::new();
        for data_type in DataType::ALL {
            all.extend(writer.check_schema(data_type).await?);
        }
        Ok(all)
    };
    let mut found = differences(&writer).await?;
    if migrate && !found.is_empty() {
        let (statements, _) = schema_check::migration(&found, writer.dialect(), &clickhouse);
        for sql in statements {
            println!("{sql};");
            writer.execute(&sql).await?;
        }
        found = differences(&writer).await?;
    }
    for d in &found {
        println!("{d}");
    }
    if !found.is_empty() {
        anyhow::bail!(
            "{} differences between ClickHouse {} and the schema",
            found.len(),
            writer.version()
        );
    }
    println!(
        "schema matches ({} dialect, ClickHouse {})",
        writer.dialect().as_str(),
        writer.version()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Before any client exists: the one rustls provider of the workspace (see `tls`).
    marketprism_config::tls::install_crypto_provider();
    telemetry::init_logging(cli.log_json);
    // `run` takes its runtime's threads from its config (an invalid config fails in `async_main`).
    let (threads, coalesce_ms) = match &cli.command {
        Command::Run { config } | Command::Bench(Bench::FloorReader { config }) => {
            Config::load(config).map_or((0, 0), |c| {
                (c.collector.worker_threads, c.collector.wake_coalesce_ms)
            })
        }
        _ => (0, 0),
    };
    let runtime = marketprism_collector::run::runtime(threads, coalesce_ms)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async_main(cli.command))
}

async fn async_main(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Parquet(cmd) => {
            let code =
                tokio::task::spawn_blocking(move || marketprism_collector::parquet_cmd::run(cmd))
                    .await
                    .unwrap_or(2);
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(code)
        }
        Command::Report(args) => {
            use std::io::Write;
            let code = match report_command(args).await {
                Ok(marketprism_report::Verdict::Pass) => 0,
                Ok(marketprism_report::Verdict::Fail) => 1,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    2
                }
            };
            let _ = std::io::stdout().flush();
            std::process::exit(code)
        }
        Command::Job(job) => {
            use marketprism_collector::job::{JobCommand, JobOutcome, run_job};
            // Replay to stdout owns stdout: the report goes to stderr then.
            let data_on_stdout = matches!(&job, JobCommand::Replay(a) if a.stdout);
            let outcome = match run_job(job).await {
                Ok(o) => o,
                Err(e) => {
                    // Could not run at all (config, servers, arguments): exit 2.
                    eprintln!("Error: {e:#}");
                    std::process::exit(2);
                }
            };
            match outcome {
                JobOutcome::Stats(text) => {
                    print!("{text}");
                    Ok(())
                }
                JobOutcome::Ran(report) => {
                    let line = serde_json::to_string(&report)?;
                    if data_on_stdout {
                        eprintln!("{line}");
                    } else {
                        println!("{line}");
                    }
                    let (code, why) = marketprism_collector::job::exit_status(&report);
                    if code != 0 {
                        eprintln!("Error: job {}: {why}", report.job);
                        let _ = std::io::Write::flush(&mut std::io::stdout());
                        std::process::exit(code);
                    }
                    Ok(())
                }
            }
        }
        Command::Run { config } => {
            let config = Config::load(&config)?;
            let (health, shutdown) = serve_probes(&config).await?;
            let summary =
                marketprism_collector::run::run_collector(config, health, shutdown.clone()).await?;
            shutdown.cancel();
            println!("{}", serde_json::to_string(&summary)?);
            if !summary.succeeded() {
                let all: Vec<&str> = summary
                    .problems
                    .iter()
                    .chain(&summary.errors)
                    .map(String::as_str)
                    .collect();
                anyhow::bail!(
                    "run did not do what was configured ({} problems): {}",
                    all.len(),
                    all.join("; ")
                );
            }
            Ok(())
        }
        Command::Sink { config } => {
            let config = Config::load(&config)?;
            let sink = config.sink.clone().context(
                "invalid config: sink: this command needs a `sink:` section with `clickhouse:`",
            )?;
            let (health, shutdown) = serve_probes(&config).await?;
            marketprism_pipeline::sink::run_sink(sink, health, shutdown.clone()).await?;
            shutdown.cancel();
            Ok(())
        }
        Command::Schema {
            config: Some(path),
            check,
            migrate,
            ..
        } if check || migrate => {
            let mut clickhouse = Config::load(&path)?.sink.map(|s| s.clickhouse).context(
                "invalid config: sink.clickhouse: --check and --migrate need the server",
            )?;
            clickhouse.create_schema = false;
            check_schema(clickhouse, migrate).await
        }
        Command::Schema { check: true, .. } | Command::Schema { migrate: true, .. } => {
            anyhow::bail!("--check and --migrate need --config with a sink.clickhouse section")
        }
        Command::Schema {
            server_version,
            config,
            ..
        } => {
            let clickhouse = match config {
                Some(path) => Config::load(&path)?
                    .sink
                    .map(|s| s.clickhouse)
                    .unwrap_or_default(),
                None => Default::default(),
            };
            let dialect =
                marketprism_pipeline::store::schema::Dialect::from_version(&server_version);
            for statement in marketprism_pipeline::store::schema::ddl(dialect, &clickhouse) {
                println!("{statement};\n");
            }
            Ok(())
        }
        Command::Simulate {
            config,
            listen,
            seed,
            tls,
            ca_out,
        } => {
            let mut sim = match config {
                Some(path) => Config::load(&path)?.simulator.unwrap_or_default(),
                None => Default::default(),
            };
            if let Some(listen) = listen {
                sim.listen = listen;
            }
            if let Some(seed) = seed {
                sim.seed = seed;
            }
            sim.tls |= tls;
            let handle = marketprism_simulator::Simulator::start(sim).await?;
            if let (Some(path), Some(pem)) = (&ca_out, handle.ca_pem()) {
                std::fs::write(path, pem)
                    .with_context(|| format!("cannot write the CA to {}", path.display()))?;
            }
            let endpoints: serde_json::Map<String, serde_json::Value> =
                marketprism_model::Exchange::ALL
                    .into_iter()
                    .map(|ex| {
                        let e = handle.endpoints(ex);
                        (
                            ex.to_string(),
                            serde_json::json!({ "ws_url": e.ws_url, "rest_url": e.rest_url }),
                        )
                    })
                    .collect();
            println!(
                "{}",
                serde_json::json!({
                    "addr": handle.addr().to_string(),
                    "endpoints": endpoints,
                    "ca_file": ca_out,
                })
            );
            wait_for_signal().await;
            handle.stop().await;
            Ok(())
        }
        Command::Bench(Bench::Collector {
            rate,
            seconds,
            warmup_s,
            worker_threads,
            flush_interval_ms,
            keep,
            wake_coalesce_ms,
            floor,
            nats_url,
        }) => {
            use marketprism_collector::bench::collector::{
                CollectorBenchOptions, run_collector_bench,
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let opts = CollectorBenchOptions {
                stop: stop.clone(),
                exe: std::env::current_exe()?,
                rate_per_s: rate,
                seconds,
                warmup_s,
                worker_threads,
                flush_interval_ms,
                keep,
                wake_coalesce_ms,
                floor,
                nats_url,
            };
            let mut bench = tokio::task::spawn_blocking(move || run_collector_bench(&opts));
            // On a signal the bench stops at its next step and cleans up (children, streams, files).
            let report = tokio::select! {
                r = &mut bench => r?,
                () = wait_for_signal() => {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    bench.await?
                }
            };
            println!("{}", serde_json::to_string_pretty(&report?)?);
            Ok(())
        }
        Command::Bench(Bench::FloorReader { config }) => {
            let config = Config::load(&config)?;
            let (_health, shutdown) = serve_probes(&config).await?;
            marketprism_collector::bench::floor::read_floor(config, shutdown).await
        }
        Command::Bench(Bench::Pipeline {
            events,
            rate,
            seed,
            nats_url,
            clickhouse_url,
            max_wait_ms,
            timeout_s,
            keep,
            publish_only,
            nats_pid,
            clickhouse_pid,
        }) => {
            use marketprism_collector::bench::pipeline::{
                PipelineBenchOptions, run_pipeline_bench,
            };
            let mut opts = PipelineBenchOptions::new(events, &nats_url, &clickhouse_url);
            opts.rate_per_s = rate;
            opts.seed = seed;
            opts.max_wait_ms = max_wait_ms;
            opts.timeout_s = timeout_s;
            opts.cleanup = !keep;
            opts.publish_only = publish_only;
            opts.nats_pid = nats_pid;
            opts.clickhouse_pid = clickhouse_pid;
            let report = run_pipeline_bench(opts)
                .await
                .context("bench pipeline failed")?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            // The report is printed for inspection, but lost or duplicated data fails the command.
            match report.failure() {
                Some(failure) => anyhow::bail!("bench pipeline: {failure}"),
                None => Ok(()),
            }
        }
    }
}

/// Metrics recorder, probe server, and a shutdown token cancelled by SIGTERM or ctrl-c.
async fn serve_probes(config: &Config) -> anyhow::Result<(Health, CancellationToken)> {
    let metrics = telemetry::install_metrics().map_err(anyhow::Error::msg)?;
    let health = Health::new();
    let shutdown = CancellationToken::new();
    // The probes stay up while the process drains; they end with it.
    let (addr, _task) = telemetry::http::serve(
        config.http.listen,
        health.clone(),
        metrics,
        CancellationToken::new(),
    )
    .await?;
    tracing::info!(%addr, "probes and metrics listening");
    let s = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received: draining and flushing");
        s.cancel();
        // A second signal means "now": skip the drain.
        wait_for_signal().await;
        tracing::warn!("second signal: exiting without draining");
        std::process::exit(130);
    });
    Ok((health, shutdown))
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
