//! The JSON API: one file per tag, the spec at /api/openapi.json, docs at /api/docs.

mod accounts;
mod deletions;
pub mod error;
mod me;
mod sessions;

use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route, http::StatusCode};
use poem_openapi::{OpenApiService, Tags};

use crate::state::AppState;

#[derive(Tags)]
pub enum ApiTags {
    /// Signing up.
    Accounts,
    /// Logging in and out.
    Sessions,
    /// The logged-in account: profile and self-service deletion.
    Me,
    /// Following a deletion by its receipt.
    Deletions,
}

pub fn openapi(
    state: &AppState,
) -> OpenApiService<
    (
        accounts::AccountsApi,
        sessions::SessionsApi,
        me::MeApi,
        deletions::DeletionsApi,
    ),
    (),
> {
    OpenApiService::new(
        (accounts::AccountsApi, sessions::SessionsApi, me::MeApi, deletions::DeletionsApi),
        "erasure",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Account deletion, done properly: self-service deletion for free accounts, a receipt to follow it, and an audit ledger.")
    .server(format!("{}/api", state.settings.server.public_url.trim_end_matches('/')))
}

pub fn service(state: &AppState) -> impl Endpoint + use<> {
    let api = openapi(state);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .catch_all_error(json_error)
}

/// Errors raised outside the operations (unknown path, wrong method, unreadable body) in the
/// API's error shape; the operations' own error responses pass through untouched.
async fn json_error(err: poem::Error) -> Response {
    // Operations answer with a ready response (poem wraps it without a source error).
    if !err.has_source() {
        return err.into_response();
    }
    // An unreadable body is bad input like any other: one status and code for clients.
    let status = match err.status() {
        StatusCode::BAD_REQUEST => StatusCode::UNPROCESSABLE_ENTITY,
        s => s,
    };
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "invalid_input",
        _ => "internal",
    };
    let message = if status.is_server_error() {
        "internal error".to_owned()
    } else {
        err.to_string()
    };
    poem::web::Json(serde_json::json!({ "code": code, "message": message }))
        .with_status(status)
        .into_response()
}
