//! One HTTP port for Kubernetes: `/livez` (the process answers), `/readyz` (outputs connected and
//! flowing, per [`Health`]), `/metrics` (Prometheus text).

use super::Health;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: PrometheusHandle,
}

pub fn router(health: Health, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { health, metrics })
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let components: serde_json::Map<String, serde_json::Value> = state
        .health
        .snapshot()
        .into_iter()
        .map(|(name, s)| {
            (
                name,
                serde_json::json!({ "ready": s.ready, "reason": s.reason }),
            )
        })
        .collect();
    let ready = state.health.is_ready();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "ready": ready, "components": components });
    (code, axum::Json(body))
}

async fn render_metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Bind first (so a port clash fails at start, with the address), then serve until `shutdown`.
pub async fn serve(
    listen: SocketAddr,
    health: Health,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot listen on {listen} for probes: {e}"),
        )
    })?;
    let addr = listener.local_addr()?;
    let app = router(health, metrics);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "probe server failed");
        }
    });
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probes_report_liveness_readiness_and_metrics() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        let health = Health::new();
        let guard = health.register("nats");
        let shutdown = CancellationToken::new();
        let (addr, task) = serve(
            "127.0.0.1:0".parse().unwrap(),
            health.clone(),
            handle,
            shutdown.clone(),
        )
        .await
        .unwrap();
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            stream.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            stream.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/livez").await.starts_with("HTTP/1.1 200"));
        let not_ready = get("/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(not_ready.contains("starting"), "{not_ready}");
        guard.ready();
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/metrics").await.starts_with("HTTP/1.1 200"));
        shutdown.cancel();
        task.await.unwrap();
    }
}
