use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::ApiTags;
use crate::{http::error::ApiResult, services::deletion, state::AppState};

pub struct DeletionsApi;

/// Where a deletion stands. Holds no personal data.
#[derive(Object)]
pub struct DeletionStatusView {
    /// pending | purging | purged | completed | failed
    pub status: String,
    pub requested_at: DateTime<Utc>,
    /// `null` until the deletion completes.
    #[oai(nullable)]
    pub completed_at: Option<DateTime<Utc>>,
    pub steps: Vec<StepView>,
}

#[derive(Object)]
pub struct StepView {
    /// purge | confirmation_email | ledger_entry
    pub name: String,
    /// waiting | running | done | failed
    pub status: String,
    /// When the step finished (or failed); `null` while it has not.
    #[oai(nullable)]
    pub at: Option<DateTime<Utc>>,
}

impl DeletionStatusView {
    pub fn of(v: &deletion::DeletionView) -> Self {
        Self {
            status: v.status.as_str().to_owned(),
            requested_at: v.requested_at,
            completed_at: v.completed_at,
            steps: v
                .steps
                .iter()
                .map(|s| StepView {
                    name: s.name.to_owned(),
                    status: s.status.to_owned(),
                    at: s.at,
                })
                .collect(),
        }
    }
}

#[derive(ApiResponse)]
enum StatusResponse {
    #[oai(status = 200)]
    Ok(Json<DeletionStatusView>),
}

#[OpenApi(tag = "ApiTags::Deletions")]
impl DeletionsApi {
    /// Follow a deletion by the receipt id it returned. No log-in needed: the receipt is an
    /// unguessable token.
    #[oai(
        path = "/v1/deletions/:receipt_id",
        method = "get",
        operation_id = "getDeletion"
    )]
    async fn status(&self, state: Data<&AppState>, receipt_id: Path<String>) -> ApiResult<StatusResponse> {
        let view = deletion::by_receipt(&state.db, &receipt_id).await?;
        Ok(StatusResponse::Ok(Json(DeletionStatusView::of(&view))))
    }
}
