//! The JSON API: one file per tag, the spec at /api/openapi.json, docs at /api/docs.

mod accounts;
mod admin;
pub mod auth;
mod deletions;
mod fields;
pub mod inbound;
mod ledger;
mod log;
mod me;
mod processors;
mod quarantine;
mod sessions;
mod staff;
mod takeout;
mod termination;
mod ticket_work;
mod tickets;

use poem::{Endpoint, EndpointExt, Response, Route, http::StatusCode};
use poem_openapi::{OpenApiService, Tags};

pub use auth::SessionCookie;

use crate::{http::error::api_fallback, services::sessions::COOKIE, state::AppState};

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
    /// Staff (support agents, auditors, administrators): their sessions.
    Staff,
    /// Support agents: the tickets paid terminations arrive as.
    Tickets,
    /// Mail to help@, posted by a mail provider; what could not be read, for admins.
    Inbound,
    /// Auditors: the deletion ledger, its exports, and "was this person deleted?".
    Ledger,
    /// The transparency log, for anyone: signed tree heads, consistency proofs, the public key.
    Log,
    /// Administrators: re-registration blocks.
    Admin,
    /// Downstream processors told of each deletion: their notices and how they answer.
    Processors,
}

type Apis = (
    accounts::AccountsApi,
    sessions::SessionsApi,
    me::MeApi,
    takeout::TakeoutApi,
    termination::TerminationApi,
    deletions::DeletionsApi,
    staff::StaffApi,
    tickets::TicketsApi,
    ticket_work::TicketWorkApi,
    inbound::InboundApi,
    quarantine::QuarantineApi,
    ledger::LedgerApi,
    log::LogApi,
    admin::AdminApi,
    processors::ProcessorsApi,
);

pub fn openapi(state: &AppState) -> OpenApiService<Apis, ()> {
    debug_assert_eq!(COOKIE, "erasure_session", "the security scheme names the cookie");
    OpenApiService::new(
        (
            accounts::AccountsApi,
            sessions::SessionsApi,
            me::MeApi,
            takeout::TakeoutApi,
            termination::TerminationApi,
            deletions::DeletionsApi,
            staff::StaffApi,
            tickets::TicketsApi,
            ticket_work::TicketWorkApi,
            inbound::InboundApi,
            quarantine::QuarantineApi,
            ledger::LedgerApi,
            log::LogApi,
            admin::AdminApi,
            processors::ProcessorsApi,
        ),
        "erasure",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Account deletion, done properly: self-service deletion for free accounts, a receipt to follow it, and an audit ledger.")
    .server(format!("{}/api", state.settings.server.public_url.trim_end_matches('/')))
}

/// The workflow between operations, as OpenAPI links (sign-up → log-in → deletion →
/// receipt): what a client, or schemathesis' stateful phase, follows. Request bodies name the
/// fields they carry over, and the session cookie is taken from `Set-Cookie`.
const LINKS: &str = include_str!("links.json");

/// poem-openapi's document, completed with what its derives cannot say: the links, and that
/// a new password comes with the current one.
pub fn spec_document(state: &AppState) -> serde_json::Value {
    let mut spec: serde_json::Value = serde_json::from_str(&openapi(state).spec()).unwrap_or_default();
    if let Ok(links) = serde_json::from_str::<serde_json::Value>(LINKS) {
        merge(&mut spec, &links);
    }
    // The export answers CSV or NDJSON as `format` asks; poem-openapi keeps one content type
    // per status.
    let export = &mut spec["paths"]["/v1/ledger/export"]["get"]["responses"]["200"]["content"];
    if let Some(ndjson) = export.get("application/x-ndjson").cloned() {
        export["text/csv; charset=utf-8"] = ndjson;
    }
    spec["components"]["schemas"]["AccountPatch"]["anyOf"] = serde_json::json!([
        { "not": { "required": ["password"] } },
        { "required": ["current_password"] },
    ]);
    spec
}

/// Adds `extra`'s keys into `into`, recursively.
fn merge(into: &mut serde_json::Value, extra: &serde_json::Value) {
    match (into, extra) {
        (serde_json::Value::Object(into), serde_json::Value::Object(extra)) => {
            for (key, value) in extra {
                merge(into.entry(key.clone()).or_insert(serde_json::Value::Null), value);
            }
        }
        (into, extra) => *into = extra.clone(),
    }
}

pub fn service(state: &AppState) -> impl Endpoint + use<> {
    let api = openapi(state);
    let document = spec_document(state);
    let allowed = AllowedMethods::of(&document);
    let spec_json = serde_json::to_string_pretty(&document).unwrap_or_default();
    let docs = api.swagger_ui();
    Route::new()
        .at(
            "/openapi.json",
            poem::get(poem::endpoint::make_sync(move |_| {
                poem::Response::builder()
                    .content_type("application/json; charset=utf-8")
                    .body(spec_json.clone())
            })),
        )
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
    fn of(spec: &serde_json::Value) -> Self {
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
