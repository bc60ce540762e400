//! Mail that could not be read, for admins to inspect: listed without its bytes, fetched one
//! at a time as a download (never rendered).

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::{Attachment, AttachmentType, Json},
};

use super::{
    ApiTags,
    auth::{Admin, Staff},
};
use crate::{http::error::ApiResult, services::intake::quarantine, state::AppState};

pub struct QuarantineApi;

/// A quarantined message, without its bytes.
#[derive(Object)]
pub struct QuarantinedView {
    pub id: i64,
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// pipe | webhook | imap
    pub door: String,
    /// Why it could not be read.
    pub reason: String,
    pub bytes: i64,
}

#[derive(ApiResponse)]
enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<QuarantinedView>>),
}

#[derive(ApiResponse)]
enum RawResponse {
    /// The message exactly as it came, as a download.
    #[oai(status = 200)]
    Ok(Attachment<Vec<u8>>),
}

#[OpenApi(tag = "ApiTags::Inbound")]
impl QuarantineApi {
    /// Messages that could not be read as mail, newest first. Admins.
    #[oai(path = "/v1/quarantine", method = "get", operation_id = "listQuarantinedMail")]
    async fn list(
        &self,
        state: Data<&AppState>,
        _admin: Staff<Admin>,
        /// At most this many (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> ApiResult<ListResponse> {
        let found = quarantine::list(state.env(), limit.0.unwrap_or(50)).await?;
        Ok(ListResponse::Ok(Json(
            found
                .into_iter()
                .map(|q| QuarantinedView {
                    id: q.id,
                    received_at: q.received_at,
                    door: q.door.as_str().to_owned(),
                    reason: q.reason,
                    bytes: q.bytes,
                })
                .collect(),
        )))
    }

    /// One quarantined message's raw bytes, as an attachment. Admins; `404 not_found`.
    #[oai(
        path = "/v1/quarantine/:id",
        method = "get",
        operation_id = "getQuarantinedMail"
    )]
    async fn raw(
        &self,
        state: Data<&AppState>,
        _admin: Staff<Admin>,
        id: Path<i64>,
    ) -> ApiResult<RawResponse> {
        let found = quarantine::find(state.env(), id.0).await?;
        Ok(RawResponse::Ok(
            Attachment::new(found.raw)
                .attachment_type(AttachmentType::Attachment)
                .filename(format!("quarantined-{}.eml", found.id)),
        ))
    }
}
