use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::{ApiTags, fields::TokenText};
use crate::{
    http::error::ApiResult,
    services::{
        deletion::{self, grace},
        ledger::proofs,
    },
    state::AppState,
    transparency::receipt::Receipt,
};

pub struct DeletionsApi;

/// Where a deletion stands. Holds no personal data.
#[derive(Object)]
pub struct DeletionStatusView {
    /// scheduled | pending | purging | purged | completed | failed | cancelled
    pub status: String,
    pub requested_at: DateTime<Utc>,
    /// With a grace period: when the purge starts (or started); `null` without one.
    #[oai(nullable)]
    pub purge_after: Option<DateTime<Utc>>,
    /// When it was cancelled within its grace period; `null` otherwise.
    #[oai(nullable)]
    pub cancelled_at: Option<DateTime<Utc>>,
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
            purge_after: v.purge_after,
            cancelled_at: v.cancelled_at,
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

/// The token of the emailed cancel link (`/deletion/cancel/{token}`).
#[derive(Object)]
pub struct CancelLink {
    pub token: TokenText,
}

/// A scheduled deletion, as its cancel link sees it.
#[derive(Object)]
pub struct ScheduledDeletionView {
    /// scheduled | cancelled | anything else: begun, no longer cancellable
    pub status: String,
    /// When the purge starts (or started).
    pub purge_after: DateTime<Utc>,
    /// Whether it can still be cancelled.
    pub cancellable: bool,
}

impl ScheduledDeletionView {
    pub(super) fn of(s: &grace::Scheduled) -> Self {
        Self {
            status: s.status.as_str().to_owned(),
            purge_after: s.purge_after,
            cancellable: s.cancellable,
        }
    }
}

#[derive(ApiResponse)]
pub(super) enum CancelResponse {
    /// Cancelled: the account can log in again, nothing was removed.
    #[oai(status = 200)]
    Ok(Json<ScheduledDeletionView>),
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

    /// Cancel a scheduled deletion with the token of the link emailed when it was confirmed
    /// (with `deletion.grace_hours` above 0). No log-in: the account cannot log in while its
    /// deletion is scheduled, and the token is unguessable. Works until the purge's date;
    /// then `409 grace_period_over`. Cancelled already: `409 conflict`. An unknown token:
    /// `404 not_found`.
    #[oai(
        path = "/v1/deletions/cancel",
        method = "post",
        operation_id = "cancelDeletion"
    )]
    async fn cancel(&self, state: Data<&AppState>, body: Json<CancelLink>) -> ApiResult<CancelResponse> {
        let cancelled = grace::cancel_by_link(state.env(), &state.keys, body.token.as_str()).await?;
        Ok(CancelResponse::Ok(Json(ScheduledDeletionView::of(&cancelled))))
    }
}
