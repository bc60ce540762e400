//! HTTP: the JSON API (poem-openapi, under /api), the user pages, health probes and static
//! assets, behind one edge:
//! - `server`: our accept loop, bounding connections and slow clients;
//! - `limits`: every body bounded in size and time;
//! - `error`: every error's status and code, once;
//! - `extract`: session, CSRF-checked forms and the client's address, as types.
//!
//! Handlers translate between HTTP and services; they never build queries.

pub mod api;
pub mod error;
pub mod extract;
mod limits;
pub mod pages;
mod request_log;
pub mod server;
mod session;
mod slashes;

use std::time::Duration;

use poem::{
    Endpoint, EndpointExt, Route, get, handler,
    http::StatusCode,
    middleware::{CookieJarManager, Csrf, SetHeader},
    web::{Data, cookie::SameSite},
};

use crate::{services, state::AppState};

const STYLESHEET: &str = include_str!("../../admin-ui/static/erasure.css");
/// htmx 2, vendored (0BSD): the console needs no JS build step and loads nothing from elsewhere.
const HTMX: &str = include_str!("../../admin-ui/static/htmx-2.0.11.min.js");
/// `/readyz` answers within this, whatever a dependency does, and within the second a probe
/// waits once a loaded host has served the request (with 800 ms, answers took up to 974 ms on
/// a busy test machine: tests/api/outages.rs).
const READINESS_BUDGET: Duration = Duration::from_millis(500);
/// `/metrics` waits this long for its snapshot.
const METRICS_BUDGET: Duration = Duration::from_millis(800);

pub fn app(state: AppState) -> impl Endpoint {
    let settings = &state.settings;
    let csrf = Csrf::new()
        .key(state.keys.csrf_key())
        .cookie_name("erasure_csrf")
        .secure(settings.secure_cookies())
        .http_only(true)
        .same_site(SameSite::Lax);
    let limits = limits::BodyLimit {
        max_bytes: settings.server.max_body_bytes,
        read_timeout: settings.server.body_read_timeout(),
        larger: &[(api::inbound::PATH, services::intake::MAX_MESSAGE_BYTES)],
    };
    let hsts =
        SetHeader::new().overriding("strict-transport-security", "max-age=31536000; includeSubDomains");
    Route::new()
        .nest("/api", api::service(&state).with(data_headers()))
        .nest(
            "/",
            pages::routes()
                .catch_all_error(pages::fallback)
                .with(csrf)
                .with(page_headers()),
        )
        .at(
            pages::RECEIPT_STATUS,
            pages::receipt_status().with(page_headers()),
        )
        .at("/healthz", get(healthz).with(data_headers()))
        .at("/readyz", get(readyz).with(data_headers()))
        .at("/metrics", get(metrics).with(data_headers()))
        .at("/.well-known/erasure-log-key", get(log_key).with(data_headers()))
        .at("/static/erasure.css", get(stylesheet))
        .at("/static/htmx-2.0.11.min.js", get(htmx))
        .at("/favicon.ico", get(favicon))
        .with(limits)
        .with(slashes::NormalizeSlashes)
        .with(CookieJarManager::new())
        .with(SetHeader::new().overriding("x-content-type-options", "nosniff"))
        .with_if(settings.secure_cookies(), hsts)
        .with(request_log::RequestLog)
        .data(state)
}

/// The rules a self-service deletion is checked against, from the settings.
pub(crate) fn self_service(state: &AppState) -> services::deletion::SelfService<'_> {
    services::deletion::SelfService {
        support_email: &state.settings.support.email,
        reauth_window: state.reauth_window(),
        grace: state.grace(),
    }
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
        .overriding("referrer-policy", "no-referrer")
        .overriding("cache-control", "no-store")
}

/// JSON, the API docs and the probes: never cached (`/me` carries personal data), never
/// framed.
fn data_headers() -> SetHeader {
    SetHeader::new()
        .overriding("cache-control", "no-store")
        .overriding("x-frame-options", "DENY")
        .overriding("referrer-policy", "no-referrer")
}

/// The log's public key where RFC 8615 says to look (also `GET /api/v1/log/key`).
#[handler]
fn log_key(state: Data<&AppState>) -> poem::web::Json<crate::transparency::PublishedKey> {
    poem::web::Json(state.log_signer.public().published())
}

/// The process is up.
#[handler]
fn healthz() -> &'static str {
    "ok"
}

/// The database and the queue answer, within `READINESS_BUDGET` however they fail.
#[handler]
async fn readyz(state: Data<&AppState>) -> (StatusCode, &'static str) {
    let database = tokio::time::timeout(READINESS_BUDGET, state.db.ping());
    let queue = tokio::time::timeout(READINESS_BUDGET, state.queue.backlog());
    let (database, queue) = tokio::join!(database, queue);
    match database {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable");
        }
        Err(_) => {
            tracing::warn!(
                budget_ms = READINESS_BUDGET.as_millis(),
                "readiness: database did not answer in time"
            );
            return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable");
        }
    }
    match queue {
        Ok(Ok(_)) => (StatusCode::OK, "ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: queue unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "queue unreachable")
        }
        Err(_) => {
            tracing::warn!(
                budget_ms = READINESS_BUDGET.as_millis(),
                "readiness: queue did not answer in time"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "queue unreachable")
        }
    }
}

/// Prometheus text format. Names no account: counts, durations and route patterns only.
#[handler]
async fn metrics(state: Data<&AppState>) -> poem::Response {
    match tokio::time::timeout(
        METRICS_BUDGET,
        services::monitoring::snapshot(state.env(), &state.queue),
    )
    .await
    {
        Ok(Ok(snapshot)) => poem::Response::builder()
            .content_type(crate::metrics::CONTENT_TYPE)
            .body(state.metrics.render(&snapshot)),
        outcome => {
            let cause = match outcome {
                Ok(Err(e)) => e.detail(),
                _ => "a dependency did not answer in time".to_owned(),
            };
            tracing::warn!(error = %cause, "metrics snapshot failed");
            poem::Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("metrics unavailable")
        }
    }
}

/// No icon: an empty answer, so browsers stop asking and log no failed load.
#[handler]
fn favicon() -> poem::Response {
    poem::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header("cache-control", "public, max-age=86400")
        .finish()
}

/// The file's name carries its version, so it may be cached for long.
#[handler]
fn htmx() -> poem::Response {
    poem::Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header("cache-control", "public, max-age=31536000, immutable")
        .body(HTMX)
}

#[handler]
fn stylesheet() -> poem::Response {
    poem::Response::builder()
        .content_type("text/css; charset=utf-8")
        .header("cache-control", "public, max-age=3600")
        .body(STYLESHEET)
}
