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

use crate::state::AppState;

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

/// The database (and with it the queue store) answers.
#[handler]
async fn readyz(state: Data<&AppState>) -> (StatusCode, &'static str) {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
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
