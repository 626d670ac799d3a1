//! A small fake of the Kubernetes API for the `coordination.k8s.io/v1` Lease endpoints, served over
//! HTTPS with a private CA and a bearer token, so the real kube clients (the collector's lease keeper,
//! the operator's leader election, and the release binaries through `KUBECONFIG`) are exercised on the
//! path production takes: kubeconfig → TLS verification → token auth → JSON.
//!
//! Semantics kept from the API server: GET/POST/PUT on
//! `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}]`, 404 for a missing Lease, 409 on
//! POST of an existing one and on PUT with a stale `metadata.resourceVersion`, 401 without the token.
//! Everything else answers 404 with a `Status` body.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use marketprism_simulator::tls::SimulatorCa;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The bearer token the fake accepts.
pub const TOKEN: &str = "marketprism-test-token";

#[derive(Default)]
struct Store {
    leases: BTreeMap<(String, String), Value>,
    version: u64,
}

#[derive(Clone)]
struct AppState {
    store: Arc<Mutex<Store>>,
    requests: Arc<AtomicU64>,
    unauthorized: Arc<AtomicU64>,
}

/// A running fake API server. Dropping it stops it.
pub struct FakeApiServer {
    pub url: String,
    /// A kubeconfig (CA file + bearer token) pointing at this server.
    pub kubeconfig: PathBuf,
    pub ca_file: PathBuf,
    state: AppState,
    stop: CancellationToken,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn status(code: StatusCode, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()
    });
    (code, axum::Json(body)).into_response()
}

/// `Err` is the 401 answer to send back (boxed: a `Response` is large).
fn authorized(state: &AppState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let expected = format!("Bearer {TOKEN}");
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v == expected => Ok(()),
        _ => {
            state.unauthorized.fetch_add(1, Ordering::Relaxed);
            Err(Box::new(status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Unauthorized".into(),
            )))
        }
    }
}

async fn get_lease(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorized(&state, &headers) {
        return *r;
    }
    let store = state.store.lock().unwrap_or_else(|e| e.into_inner());
    match store.leases.get(&(ns, name.clone())) {
        Some(l) => axum::Json(l.clone()).into_response(),
        None => status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("leases.coordination.k8s.io \"{name}\" not found"),
        ),
    }
}

async fn create_lease(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    axum::Json(mut body): axum::Json<Value>,
) -> Response {
    if let Err(r) = authorized(&state, &headers) {
        return *r;
    }
    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut store = state.store.lock().unwrap_or_else(|e| e.into_inner());
    if store.leases.contains_key(&(ns.clone(), name.clone())) {
        return status(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("leases.coordination.k8s.io \"{name}\" already exists"),
        );
    }
    store.version += 1;
    body["metadata"]["resourceVersion"] = store.version.to_string().into();
    body["metadata"]["namespace"] = ns.clone().into();
    store.leases.insert((ns, name), body.clone());
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn replace_lease(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    axum::Json(mut body): axum::Json<Value>,
) -> Response {
    if let Err(r) = authorized(&state, &headers) {
        return *r;
    }
    let mut store = state.store.lock().unwrap_or_else(|e| e.into_inner());
    let key = (ns, name.clone());
    let Some(current) = store.leases.get(&key) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("leases.coordination.k8s.io \"{name}\" not found"),
        );
    };
    if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
        return status(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified"
            ),
        );
    }
    store.version += 1;
    body["metadata"]["resourceVersion"] = store.version.to_string().into();
    store.leases.insert(key, body.clone());
    axum::Json(body).into_response()
}

async fn not_found(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers) {
        return *r;
    }
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "not served by the fake".into(),
    )
}

impl FakeApiServer {
    /// Serve on a free loopback port; the CA and kubeconfig are written into `dir`.
    pub async fn start(dir: &FsPath) -> FakeApiServer {
        let ca = SimulatorCa::generate().expect("test CA");
        let ca_file = dir.join("fake-apiserver-ca.pem");
        std::fs::write(&ca_file, ca.ca_pem()).expect("write CA");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("https://{}", listener.local_addr().expect("addr"));
        let kubeconfig = dir.join("kubeconfig.yaml");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\n    certificate-authority: {}\nusers:\n- name: fake\n  user:\n    token: {TOKEN}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\ncurrent-context: fake\n",
                ca_file.display()
            ),
        )
        .expect("write kubeconfig");
        let state = AppState {
            store: Arc::default(),
            requests: Arc::default(),
            unauthorized: Arc::default(),
        };
        let app = Router::new()
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                get(get_lease).put(replace_lease),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                post(create_lease),
            )
            .fallback(not_found)
            .with_state(state.clone());
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config());
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopped.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((tcp, _)) = accepted else { continue };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        FakeApiServer {
            url,
            kubeconfig,
            ca_file,
            state,
            stop,
        }
    }

    /// A kube client built the way production builds one: from the kubeconfig file.
    pub async fn client(&self) -> kube::Client {
        marketprism_config::tls::install_crypto_provider();
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("kube config from the kubeconfig");
        kube::Client::try_from(config).expect("kube client")
    }

    /// Create or overwrite a Lease (as the operator would create a shard's Lease).
    pub fn put_lease(&self, namespace: &str, name: &str, spec: Value) {
        let mut store = self.state.store.lock().unwrap_or_else(|e| e.into_inner());
        store.version += 1;
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": store.version.to_string()},
            "spec": spec,
        });
        store
            .leases
            .insert((namespace.to_owned(), name.to_owned()), lease);
    }

    /// The Lease as stored, if any.
    pub fn lease(&self, namespace: &str, name: &str) -> Option<Value> {
        let store = self.state.store.lock().unwrap_or_else(|e| e.into_inner());
        store
            .leases
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// `spec.holderIdentity` of a Lease (None when absent, released or empty).
    pub fn holder(&self, namespace: &str, name: &str) -> Option<String> {
        self.lease(namespace, name)?["spec"]["holderIdentity"]
            .as_str()
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
    }

    /// Requests answered so far, and how many of them lacked the token.
    pub fn requests(&self) -> (u64, u64) {
        (
            self.state.requests.load(Ordering::Relaxed),
            self.state.unauthorized.load(Ordering::Relaxed),
        )
    }
}
