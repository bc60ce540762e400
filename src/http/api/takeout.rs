//! Takeout over the API (GDPR Art. 20): ask for an archive of the account's data and follow
//! it; the archive is downloaded at `download_url` with the same session.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{ApiTags, SessionCookie};
use crate::{
    error::AppError,
    http::error::ApiResult,
    services::takeout::{self, Export},
    state::AppState,
};

pub struct TakeoutApi;

/// An archive of the account's data.
#[derive(Object)]
pub struct ExportView {
    pub id: String,
    /// queued | running | ready | failed
    pub status: String,
    /// Rows written so far, of `items_total` (messages, contacts, calls, devices).
    pub items_done: i64,
    pub items_total: i64,
    /// The archive's size once ready.
    #[oai(nullable)]
    pub bytes: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// Until when it can be downloaded (`export.ttl_hours` after it was ready).
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Where to download it (with the session) while it can be; `null` otherwise.
    #[oai(nullable)]
    pub download_url: Option<String>,
}

impl ExportView {
    fn of(e: &Export, now: DateTime<Utc>) -> Self {
        Self {
            id: e.id.to_string(),
            status: e.status.as_str().to_owned(),
            items_done: e.items_done,
            items_total: e.items_total,
            bytes: e.bytes,
            created_at: e.created_at,
            expires_at: e.expires_at,
            download_url: e
                .downloadable(now)
                .then(|| format!("/account/export/{}/download", e.id)),
        }
    }
}

#[derive(ApiResponse)]
enum StartResponse {
    /// The archive is being built; the account's address is mailed when it is ready.
    #[oai(status = 202)]
    Accepted(Json<ExportView>),
    /// One is being built already: that one.
    #[oai(status = 200)]
    Ok(Json<ExportView>),
}

#[derive(ApiResponse)]
enum ExportResponse {
    #[oai(status = 200)]
    Ok(Json<ExportView>),
}

#[OpenApi(tag = "ApiTags::Me")]
impl TakeoutApi {
    /// Ask for an archive of this account's data: profile, messages, contacts, calls and
    /// devices as JSON and the avatar, in one ZIP, built in the background.
    #[oai(path = "/v1/me/export", method = "post", operation_id = "exportMe")]
    async fn start(
        &self,
        state: Data<&AppState>,
        SessionCookie(current): SessionCookie,
    ) -> ApiResult<StartResponse> {
        let (export, started) = takeout::request(state.env(), current.account.id).await?;
        let view = Json(ExportView::of(&export, state.clock.now()));
        Ok(if started {
            StartResponse::Accepted(view)
        } else {
            StartResponse::Ok(view)
        })
    }

    /// This account's newest archive and where it stands; `404 not_found` when none was asked
    /// for (or the last one expired and was removed).
    #[oai(path = "/v1/me/export", method = "get", operation_id = "getMyExport")]
    async fn status(
        &self,
        state: Data<&AppState>,
        SessionCookie(current): SessionCookie,
    ) -> ApiResult<ExportResponse> {
        let export = takeout::newest(&state.db, current.account.id)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(ExportResponse::Ok(Json(ExportView::of(
            &export,
            state.clock.now(),
        ))))
    }
}
