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
    /// `--frame-ancestors`: who may show the hosted pages in a frame (a CSP source list,
    /// `'none'` by default).
    pub frame_ancestors: Arc<str>,
    /// Requests per API key and per client address on the token routes (`--rate-limit`, …).
    pub rate_limits: Arc<crate::rate_limit::RateLimits>,
    /// Calendar connections: sources, busy-time cache, live reads (`--calendar-cache-seconds`, …).
    pub calendars: Arc<crate::calendars::Calendars>,
}

/// The full router (API, operations endpoints, docs) and the OpenAPI document it serves.
pub fn router(state: AppState) -> Router {
    let (api_router, openapi) = api::routes();
    let openapi = Arc::new(openapi);
    let metrics = metrics_handle();
    let request_id = HeaderName::from_static("x-request-id");
    let page_headers = crate::pages::PageHeaders::new(&state.frame_ancestors);
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
        .route("/manage/{token}", get(crate::pages::manage::manage_page))
        .route("/manage/{token}/reschedule", post(crate::pages::manage::reschedule_form))
        .route("/manage/{token}/cancel", post(crate::pages::manage::cancel_form))
        .route("/oauth/google/callback", get(crate::pages::oauth::google_callback))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn_with_state(rate_limits, crate::rate_limit::limit_token_routes))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let headers = page_headers.clone();
            async move { headers.apply(req, next).await }
        }))
        .layer(middleware::from_fn(track_metrics))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            let path = redacted_path(req.uri().path());
            tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

/// Where a manage token sits in a path: `/manage/{token}…`, `/v1/manage/{token}…`, `/b/{token}.ics`.
const TOKEN_PREFIXES: [&str; 3] = ["/manage/", "/v1/manage/", "/b/"];

/// Whether `path` carries a manage token (and so gets the hosted pages' headers).
pub fn is_token_path(path: &str) -> bool {
    TOKEN_PREFIXES.iter().any(|prefix| path.starts_with(prefix))
}

/// `path` with its manage token replaced by `[token]`, for logs: a token is a credential.
/// `/manage/abc/reschedule` → `/manage/[token]/reschedule`, `/b/abc.ics` → `/b/[token].ics`.
pub fn redacted_path(path: &str) -> std::borrow::Cow<'_, str> {
    let Some(prefix) = TOKEN_PREFIXES.iter().find(|prefix| path.starts_with(**prefix)) else {
        return std::borrow::Cow::Borrowed(path);
    };
    let rest = &path[prefix.len()..];
    let segment_end = rest.find('/').unwrap_or(rest.len());
    let (segment, tail) = rest.split_at(segment_end);
    let suffix = if *prefix == "/b/" && segment.ends_with(".ics") { ".ics" } else { "" };
    std::borrow::Cow::Owned(format!("{prefix}[token]{suffix}{tail}"))
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

#[cfg(test)]
mod tests {
    use super::redacted_path;

    #[test]
    fn manage_tokens_are_cut_out_of_logged_paths_and_other_paths_are_kept() {
        let token = "AZP3x-Qk_secret.token";
        assert_eq!(redacted_path(&format!("/manage/{token}")), "/manage/[token]");
        assert_eq!(redacted_path(&format!("/manage/{token}/reschedule")), "/manage/[token]/reschedule");
        assert_eq!(redacted_path(&format!("/manage/{token}/cancel")), "/manage/[token]/cancel");
        assert_eq!(redacted_path(&format!("/v1/manage/{token}/slots")), "/v1/manage/[token]/slots");
        assert_eq!(redacted_path(&format!("/v1/manage/{token}")), "/v1/manage/[token]");
        assert_eq!(redacted_path("/b/AZP3xQk.ics"), "/b/[token].ics");
        assert_eq!(redacted_path("/b/AZP3xQk"), "/b/[token]");
        assert_eq!(redacted_path("/b/AZP3x.Qk"), "/b/[token]");
        assert_eq!(redacted_path("/manage/"), "/manage/[token]");
        for kept in ["/v1/bookings/BK-7Q4M2X", "/healthz", "/", "/managed/x", "/v1/manage", "/bb/x"] {
            assert_eq!(redacted_path(kept), kept);
        }
        for path in [format!("/manage/{token}/reschedule"), format!("/v1/manage/{token}"), format!("/b/{token}.ics")] {
            assert!(!redacted_path(&path).contains("secret"), "{path}");
        }
    }
}
