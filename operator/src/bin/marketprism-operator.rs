//! `marketprism-operator run`: elect a leader, then reconcile CollectorSets until SIGTERM.
use anyhow::Context;
use clap::{Parser, Subcommand};
use marketprism_operator::builders::BuildOptions;
use marketprism_operator::leader::{LeaderConfig, run_as_leader};
use marketprism_operator::{controller, http};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(version, about = "Reconciles CollectorSets into collector shards")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// `/metrics`, `/healthz`, `/readyz`.
    #[arg(
        long,
        env = "MARKETPRISM_OPERATOR_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    listen: SocketAddr,
    /// Watch only this namespace (all namespaces when unset).
    #[arg(long, env = "MARKETPRISM_OPERATOR_NAMESPACE")]
    namespace: Option<String>,
    /// Name of the leader-election Lease, created in `POD_NAMESPACE`.
    #[arg(
        long,
        env = "MARKETPRISM_OPERATOR_LEADER_LEASE",
        default_value = "marketprism-operator"
    )]
    leader_lease: String,
    /// Collector image for CollectorSets that do not set `spec.image`.
    #[arg(
        long,
        env = "MARKETPRISM_COLLECTOR_IMAGE",
        default_value = concat!("ghcr.io/marketprism/marketprism-collector:", env!("CARGO_PKG_VERSION"))
    )]
    collector_image: String,
    /// This replica's identity (downward API `metadata.name`).
    #[arg(long, env = "POD_NAME")]
    pod_name: String,
    /// The namespace the operator runs in (downward API `metadata.namespace`).
    #[arg(long, env = "POD_NAMESPACE")]
    pod_namespace: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before the Kubernetes client exists: the workspace's one rustls provider, `ring`
    // (kube's TLS asks rustls for the process default; see crates/config/src/tls.rs for the choice).
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let Command::Run(args) = Cli::parse().command;
    // Registered first: a SIGTERM from here on takes the one ordered shutdown path below.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let api_ok = Arc::new(AtomicBool::new(false));
    http::serve(args.listen, metrics, api_ok.clone()).await?;
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let leader = LeaderConfig {
        namespace: args.pod_namespace.clone(),
        name: args.leader_lease.clone(),
        identity: args.pod_name.clone(),
        duration: Duration::from_secs(15),
    };
    let options = BuildOptions {
        default_image: args.collector_image.clone(),
        ..BuildOptions::default()
    };
    // One shutdown path: the signal cancels this token; the controller stops taking reconciles and
    // finishes the running ones; only then is the leader Lease released; then the process exits.
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            tracing::info!("shutdown requested: stopping the controller");
            shutdown.cancel();
        }
    });
    let namespace = args.namespace;
    let instance = Some(args.pod_name);
    let work = {
        let client = client.clone();
        move |stop: CancellationToken| {
            controller::run(client, namespace, options, instance, stop.cancelled_owned())
        }
    };
    let ended = run_as_leader(client, leader, api_ok, shutdown, work)
        .await
        .context("leadership")?;
    tracing::info!(?ended, "shut down");
    Ok(())
}
