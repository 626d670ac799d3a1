//! The operator's HTTP port: `/metrics` (Prometheus), `/healthz` (the process answers) and `/readyz`
//! (the Kubernetes API answered; true on the leader and on followers alike).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    api_ok: Arc<AtomicBool>,
}

pub fn router(metrics: PrometheusHandle, api_ok: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { metrics, api_ok })
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.api_ok.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "kubernetes API not reached yet",
        )
    }
}

async fn render_metrics(
    State(state): State<AppState>,
) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Bind (failing at start on a port clash) and serve in the background.
pub async fn serve(
    listen: SocketAddr,
    metrics: PrometheusHandle,
    api_ok: Arc<AtomicBool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(metrics, api_ok)).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }))
}
