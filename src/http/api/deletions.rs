use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::ApiTags;
use crate::{
    http::error::ApiResult,
    services::{deletion, ledger::proofs},
    state::AppState,
    transparency::receipt::Receipt,
};

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

#[derive(ApiResponse)]
enum ProofResponse {
    /// The signed erasure receipt: verify it offline with `erasure receipt verify`.
    #[oai(status = 200)]
    Ok(Json<Receipt>),
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

    /// The deletion's erasure receipt: what was removed from each store, what was kept and
    /// why, its ledger entry, the entry's inclusion proof and the signed tree head — a proof
    /// the account holder keeps, checked with the log's public key alone. `409 conflict`
    /// until the deletion is completed.
    #[oai(
        path = "/v1/deletions/:receipt_id/proof",
        method = "get",
        operation_id = "getDeletionProof"
    )]
    async fn proof(&self, state: Data<&AppState>, receipt_id: Path<String>) -> ApiResult<ProofResponse> {
        let receipt = proofs::receipt(&state.db, &state.log_signer, state.clock.now(), &receipt_id).await?;
        Ok(ProofResponse::Ok(Json(receipt)))
    }
}
