//! The JSON API: one file per tag, the spec at /api/openapi.json, docs at /api/docs.

mod accounts;
mod deletions;
mod fields;
mod me;
mod sessions;

use poem::{Endpoint, EndpointExt, Request, Response, Route, http::StatusCode};
use poem_openapi::{OpenApiService, SecurityScheme, Tags, auth::ApiKey};

use crate::{
    error::AppError,
    http::{
        error::{ApiError, api_fallback},
        session,
    },
    services::sessions::{COOKIE, CurrentSession},
    state::AppState,
};

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

/// The session cookie a log-in sets (`erasure_session`). An operation that takes it cannot
/// run without a live session: it answers `401 unauthenticated` first.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "erasure_session",
    key_in = "cookie",
    checker = "live_session"
)]
pub struct SessionCookie(pub CurrentSession);

async fn live_session(req: &Request, cookie: ApiKey) -> poem::Result<CurrentSession> {
    let refuse =
        |e: AppError| poem::Error::from_response(poem::IntoResponse::into_response(ApiError::from(e)));
    let state = req
        .data::<AppState>()
        .ok_or_else(|| refuse(AppError::internal(anyhow::anyhow!("application state missing"))))?;
    session::resolve(state, &cookie.key).await.map_err(refuse)
}

type Apis = (
    accounts::AccountsApi,
    sessions::SessionsApi,
    me::MeApi,
    deletions::DeletionsApi,
);

pub fn openapi(state: &AppState) -> OpenApiService<Apis, ()> {
    debug_assert_eq!(COOKIE, "erasure_session", "the security scheme names the cookie");
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
    let allowed = AllowedMethods::of(&api.spec());
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
        .catch_all_error(api_fallback)
        .around(move |ep, req| {
            let allowed = allowed.clone();
            async move {
                let path = req.uri().path().to_owned();
                let mut response = ep.get_response(req).await;
                if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                    allowed.annotate(&path, &mut response);
                }
                Ok(response)
            }
        })
}

/// The methods each path of the spec takes, so a 405 can say them in `Allow` (RFC 9110
/// §15.5.6); poem's router does not.
#[derive(Debug, Clone, Default)]
struct AllowedMethods(std::sync::Arc<Vec<(Vec<String>, String)>>);

impl AllowedMethods {
    fn of(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut table = Vec::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, operations) in paths {
                let methods: Vec<String> = operations
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                let segments = path.split('/').map(str::to_owned).collect();
                table.push((segments, methods.join(", ")));
            }
        }
        Self(std::sync::Arc::new(table))
    }

    /// `path` is relative to /api, as the spec's paths are.
    fn annotate(&self, path: &str, response: &mut Response) {
        let path = path.strip_prefix("/api").unwrap_or(path);
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let found = self.0.iter().find(|(pattern, _)| {
            pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}')))
        });
        if let Some((_, methods)) = found
            && let Ok(value) = poem::http::HeaderValue::from_str(methods)
        {
            response.headers_mut().insert(poem::http::header::ALLOW, value);
        }
    }
}
