//! The in-app door for paid accounts: they cannot delete themselves, so they ask support to
//! terminate the account, from a session that passed the re-authentication rules. The ticket
//! is verified from the start.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{ApiTags, SessionCookie, me::DeletionConfirmation, tickets::TicketStatusName};
use crate::{
    error::AppError,
    http::error::{ApiError, ApiResult},
    models::ticket,
    services::tickets::{self, AppDoor},
    state::AppState,
};

pub struct TerminationApi;

/// A termination request, as its account holder follows it.
#[derive(Object)]
pub struct TerminationRequest {
    /// What to quote to support, e.g. T-7K2M9QXA.
    pub reference: String,
    pub status: TicketStatusName,
    /// Whether the request is verified (asked in the app: always).
    pub verified: bool,
    pub received_at: DateTime<Utc>,
    /// Support answers by then (GDPR Art. 12(3)).
    pub due_at: DateTime<Utc>,
}

impl TerminationRequest {
    fn of(t: &ticket::Model) -> Self {
        Self {
            reference: t.reference.clone(),
            status: TicketStatusName::of(t.status),
            verified: t.verified_at.is_some(),
            received_at: t.received_at,
            due_at: t.due_at,
        }
    }
}

#[derive(ApiResponse)]
enum RequestResponse {
    /// Asked: support has the verified request; an acknowledgement is mailed.
    #[oai(status = 202)]
    Accepted(Json<TerminationRequest>),
    /// A request of this account is already open: that one.
    #[oai(status = 200)]
    Ok(Json<TerminationRequest>),
}

#[derive(ApiResponse)]
enum StatusResponse {
    #[oai(status = 200)]
    Ok(Json<TerminationRequest>),
}

#[OpenApi(tag = "ApiTags::Me")]
impl TerminationApi {
    /// Ask support to terminate this paid account, typing its email as for a deletion. Free
    /// accounts get `409 conflict` (they delete themselves); a log-in older than the
    /// re-authentication window gets `reauthentication_required`.
    #[oai(
        path = "/v1/me/termination-request",
        method = "post",
        operation_id = "requestTermination"
    )]
    async fn request(
        &self,
        state: Data<&AppState>,
        SessionCookie(current): SessionCookie,
        body: Json<DeletionConfirmation>,
    ) -> ApiResult<RequestResponse> {
        let rules = AppDoor {
            response_days: state.settings.support.response_days,
            reauth_window: state.reauth_window(),
        };
        let (ticket, new) =
            tickets::request_in_app(state.env(), rules, &current, body.confirm_email.as_str()).await?;
        let view = Json(TerminationRequest::of(&ticket));
        Ok(if new {
            RequestResponse::Accepted(view)
        } else {
            RequestResponse::Ok(view)
        })
    }

    /// This account's newest termination request, from the app or by mail; `404` when there
    /// is none.
    #[oai(
        path = "/v1/me/termination-request",
        method = "get",
        operation_id = "getTerminationRequest"
    )]
    async fn status(
        &self,
        state: Data<&AppState>,
        SessionCookie(current): SessionCookie,
    ) -> ApiResult<StatusResponse> {
        let latest = tickets::latest_for_account(state.env(), current.account.id).await?;
        let found = latest.ok_or_else(|| ApiError::from(AppError::NotFound))?;
        Ok(StatusResponse::Ok(Json(TerminationRequest::of(&found))))
    }
}
