//! The HTTP application: shared state, the router with every resource merged in one place,
//! the cross-cutting layers (request ids, tracing, metrics, body limit), and `serve` with
//! graceful shutdown.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use slotd_store::Store;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi;

use crate::api;
use crate::error::ApiError;

/// Largest accepted request body.
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Base URL for links this server hands out.
    pub public_url: Arc<str>,
    /// Derives and checks the manage tokens in attendees' links.
    pub manage_key: Arc<slotd_core::manage_token::ManageTokenKey>,
    /// Recently confirmed API keys.
    pub key_cache: Arc<crate::key_cache::KeyCache>,
    /// Seals and opens stored secrets (webhook signing secrets).
    pub sealer: Arc<crate::sealing::Sealer>,
    /// How webhook hosts are resolved for the SSRF guard.
    pub resolver: crate::ssrf::Resolver,
    /// `--allow-private-webhooks`: loopback and private targets are accepted (local use, tests).
    pub allow_private_webhooks: bool,
    /// Requests per API key and per client address on the token routes (`--rate-limit`, …).
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
}

/// The full router (API, operations endpoints, docs) and the OpenAPI document it serves.
pub fn router(state: AppState) -> Router {
    let (api_router, openapi) = api::routes();
    let openapi = Arc::new(openapi);
    let metrics = metrics_handle();
    let request_id = HeaderName::from_static("x-request-id");
    let rate_limits = state.rate_limits.clone();

    api_router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(move || std::future::ready(metrics.render())))
        .route("/openapi.json", {
            let doc = openapi.clone();
            get(move || std::future::ready(axum::Json(doc.as_ref().clone())))
        })
        .route("/docs", {
            let page = Html(crate::docs::render(&openapi));
            get(move || std::future::ready(page.clone()))
        })
        .route("/manage/{token}", get(crate::pages::manage_page))
        .route("/manage/{token}/reschedule", post(crate::pages::reschedule_form))
        .route("/manage/{token}/cancel", post(crate::pages::cancel_form))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn_with_state(rate_limits, crate::rate_limit::limit_token_routes))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(track_metrics))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// The OpenAPI document alone (for `slotd openapi`).
pub fn openapi() -> OpenApi {
    api::routes().1
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(e)) => ApiError::Unavailable(e.to_string()).into_response(),
        Err(_) => ApiError::Unavailable("the database did not answer within 2 s".into()).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// The process-wide Prometheus recorder (metrics macros write to one global recorder, so every
/// router in a process, tests included, shares it).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is already installed; then ours just stays empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Counts requests and records their latency by method, route template and status.
async fn track_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
/// Each request knows its peer's address (`ConnectInfo<SocketAddr>`), which the per-address
/// rate limit of the token routes counts by.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
