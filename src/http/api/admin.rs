//! What only administrators do to accounts: let a deleted account's identifier sign up again
//! before its cool-off ends.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::{Admin, Staff},
    fields::{IdentifierText, ReasonText},
};
use crate::{http::error::ApiResult, services::reuse, state::AppState};

pub struct AdminApi;

/// One identifier to free, and why.
#[derive(Object)]
pub struct BlockLift {
    /// The email address or VSee ID that cannot sign up again yet.
    pub identifier: IdentifierText,
    /// Signed into the ledger's event: say why, without naming anyone.
    pub reason: ReasonText,
}

#[derive(Object)]
pub struct LiftedBlock {
    /// When the cool-off would have ended.
    pub until: DateTime<Utc>,
}

#[derive(ApiResponse)]
enum LiftResponse {
    /// Lifted: the identifier can sign up again; the ledger records it.
    #[oai(status = 200)]
    Ok(Json<LiftedBlock>),
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Lift one re-registration block (`accounts.reuse_cooloff_days`) before it ends. Admins.
    /// `404 not_found` when no cool-off holds the identifier now; `422 invalid_input` when it
    /// is neither an email address nor a VSee ID.
    #[oai(
        path = "/v1/admin/reuse-blocks/lift",
        method = "post",
        operation_id = "liftReuseBlock"
    )]
    async fn lift(
        &self,
        state: Data<&AppState>,
        admin: Staff<Admin>,
        body: Json<BlockLift>,
    ) -> ApiResult<LiftResponse> {
        let lifted = reuse::lift(
            state.env(),
            &state.keys,
            admin.0.staff.id,
            body.identifier.as_str(),
            body.reason.as_str(),
        )
        .await?;
        Ok(LiftResponse::Ok(Json(LiftedBlock { until: lifted.until })))
    }
}
