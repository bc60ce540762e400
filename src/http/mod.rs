//! HTTP: the JSON API (poem-openapi, under /api), the user pages, health probes and static
//! assets. Handlers translate between HTTP and services; they never build queries.

pub mod api;
pub mod pages;
mod request_log;
mod session;

use poem::{
    Endpoint, EndpointExt, Route, get, handler,
    http::StatusCode,
    middleware::{CookieJarManager, Csrf, NormalizePath, SetHeader, TrailingSlash},
    web::{Data, cookie::SameSite},
};

use crate::{services, state::AppState};

const STYLESHEET: &str = include_str!("../../admin-ui/static/erasure.css");

pub fn app(state: AppState) -> impl Endpoint {
    let csrf = Csrf::new()
        .key(state.keys.csrf_key())
        .cookie_name("erasure_csrf")
        .secure(state.settings.secure_cookies())
        .http_only(true)
        .same_site(SameSite::Lax);
    Route::new()
        .nest("/api", api::service(&state))
        .nest("/", pages::routes().with(csrf).with(page_headers()))
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .at("/static/erasure.css", get(stylesheet))
        .with(NormalizePath::new(TrailingSlash::Trim))
        .with(CookieJarManager::new())
        .with(request_log::RequestLog)
        .data(state)
}

/// Pages are never framed (a framed DELETE MY ACCOUNT button is the classic clickjacking
/// target), load nothing from elsewhere, never send their URLs (which may carry reset or
/// receipt tokens) to other sites, and are not cached: they show personal data.
fn page_headers() -> SetHeader {
    SetHeader::new()
        .overriding("x-frame-options", "DENY")
        .overriding(
            "content-security-policy",
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        .overriding("x-content-type-options", "nosniff")
        .overriding("referrer-policy", "no-referrer")
        .overriding("cache-control", "no-store")
}

/// The client's IP address, for throttling failed log-ins.
pub(crate) fn client_address(remote: &poem::web::RemoteAddr) -> Option<String> {
    remote.as_socket_addr().map(|a| a.ip().to_string())
}

/// The process is up.
#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// The database and the queue answer.
#[handler]
async fn readyz(state: Data<&AppState>) -> (StatusCode, &'static str) {
    if let Err(e) = state.db.ping().await {
        tracing::warn!(error = %e, "readiness check failed");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable");
    }
    if let Err(e) = state.queue.backlog().await {
        tracing::warn!(error = %e, "readiness check failed");
        return (StatusCode::SERVICE_UNAVAILABLE, "queue unreachable");
    }
    (StatusCode::OK, "ready")
}

/// Prometheus text format. Names no account: counts, durations and route patterns only.
#[handler]
async fn metrics(state: Data<&AppState>) -> poem::Response {
    match services::monitoring::snapshot(&state).await {
        Ok(snapshot) => poem::Response::builder()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .header("cache-control", "no-store")
            .body(state.metrics.render(&snapshot)),
        Err(e) => {
            tracing::warn!(error = %e, "metrics snapshot failed");
            poem::Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("metrics unavailable")
        }
    }
}

#[handler]
fn stylesheet() -> poem::Response {
    poem::Response::builder()
        .content_type("text/css; charset=utf-8")
        .header("cache-control", "public, max-age=3600")
        .body(STYLESHEET)
}
