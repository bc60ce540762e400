//! How agents work a ticket besides deciding it: assignment, notes, a question mailed to the
//! requester, and the one extension of the deadline. Agents and admins, as for the queue.

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json, types::MaybeUndefined};

use super::{
    ApiTags,
    auth::{Agent, Staff},
    deletions::{CancelResponse, ScheduledDeletionView},
    fields::{NoteText, ReasonText, VseeIdText},
    tickets::{TicketNote, TicketSummary},
};
use crate::{
    domain::TicketReference, error::AppError, http::error::ApiResult, services::tickets, state::AppState,
};

pub struct TicketWorkApi;

/// Who works the ticket.
#[derive(Object)]
pub struct Assignment {
    /// An enabled agent's or admin's staff id; `null` for nobody.
    #[oai(nullable)]
    pub assignee_id: MaybeUndefined<i64>,
}

/// A note for agents, or a question for the requester.
#[derive(Object)]
pub struct NoteBody {
    pub body: NoteText,
}

/// A duplicate and the ticket it repeats.
#[derive(Object)]
pub struct Merge {
    /// The reference of the ticket to keep, e.g. T-7K2M9QXA.
    #[oai(validator(pattern = r"^[Tt]-[0-9A-Za-z]{8}$"))]
    pub into: String,
    /// Why it is the same request.
    pub reason: ReasonText,
}

/// The one extension of a ticket's deadline.
#[derive(Object)]
pub struct Extension {
    /// Days added to the due date, 1 to 60.
    #[oai(validator(minimum(value = "1"), maximum(value = "60")))]
    pub days: u32,
    /// Why, as the requester reads it.
    pub reason: ReasonText,
}

/// The account an unmatched ticket is about.
#[derive(Object)]
pub struct AccountLink {
    /// The account's VSee ID.
    pub vsee_id: VseeIdText,
    /// How the agent knows.
    pub reason: ReasonText,
}

/// Why a ticket is closed undecided.
#[derive(Object)]
pub struct Closure {
    /// Spam, a duplicate of T-…, no answer.
    pub reason: ReasonText,
}

/// Why a scheduled deletion is cancelled.
#[derive(Object)]
pub struct DeletionCancellation {
    /// Kept with the request; the ledger records who cancelled and when.
    pub reason: ReasonText,
}

#[derive(ApiResponse)]
enum TicketResponse {
    #[oai(status = 200)]
    Ok(Json<TicketSummary>),
}

#[derive(ApiResponse)]
enum NoteResponse {
    #[oai(status = 201)]
    Created(Json<TicketNote>),
}

#[OpenApi(tag = "ApiTags::Tickets")]
impl TicketWorkApi {
    /// Assign the ticket to an agent (or an admin), or to nobody with `null`.
    /// `422 invalid_input` when the staff id is not an enabled agent's or admin's.
    #[oai(
        path = "/v1/tickets/:id/assignment",
        method = "post",
        operation_id = "assignTicket"
    )]
    async fn assign(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<Assignment>,
    ) -> ApiResult<TicketResponse> {
        let assignee = match body.0.assignee_id {
            MaybeUndefined::Value(id) => Some(id),
            MaybeUndefined::Null => None,
            MaybeUndefined::Undefined => {
                return Err(
                    AppError::InvalidInput("assignee_id is required (null for nobody)".into()).into(),
                );
            }
        };
        let ticket = tickets::assign(state.env(), &state.keys, agent.0.staff.id, id.0, assignee).await?;
        Ok(TicketResponse::Ok(Json(TicketSummary::of(
            &ticket,
            state.clock.now(),
        ))))
    }

    /// Add an internal note (never mailed).
    #[oai(
        path = "/v1/tickets/:id/notes",
        method = "post",
        operation_id = "addTicketNote"
    )]
    async fn note(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<NoteBody>,
    ) -> ApiResult<NoteResponse> {
        let note = tickets::add_note(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            body.body.as_str(),
        )
        .await?;
        Ok(NoteResponse::Created(Json(TicketNote::of(&note))))
    }

    /// Ask the requester for more information, by email; their reply joins the ticket.
    /// `409 conflict` once the ticket is decided.
    #[oai(
        path = "/v1/tickets/:id/questions",
        method = "post",
        operation_id = "askRequester"
    )]
    async fn ask(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<NoteBody>,
    ) -> ApiResult<NoteResponse> {
        let note = tickets::ask(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            body.body.as_str(),
        )
        .await?;
        Ok(NoteResponse::Created(Json(TicketNote::of(&note))))
    }

    /// Match an unmatched ticket to an account by its VSee ID, with how the agent knows; the
    /// account's owner is mailed the link that confirms the request. `422 invalid_input` when
    /// no active account has the VSee ID; `409 conflict` when decided or matched already.
    #[oai(
        path = "/v1/tickets/:id/account",
        method = "post",
        operation_id = "linkTicket"
    )]
    async fn link(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<AccountLink>,
    ) -> ApiResult<TicketResponse> {
        let ticket = tickets::link(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            body.vsee_id.as_str(),
            body.reason.as_str(),
        )
        .await?;
        Ok(TicketResponse::Ok(Json(TicketSummary::of(
            &ticket,
            state.clock.now(),
        ))))
    }

    /// Close an open ticket without deciding it (spam, a duplicate, no answer), with why.
    /// Nothing is mailed. `409 conflict` once decided.
    #[oai(
        path = "/v1/tickets/:id/closure",
        method = "post",
        operation_id = "closeTicket"
    )]
    async fn close(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<Closure>,
    ) -> ApiResult<TicketResponse> {
        let ticket = tickets::close(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            body.reason.as_str(),
        )
        .await?;
        Ok(TicketResponse::Ok(Json(TicketSummary::of(
            &ticket,
            state.clock.now(),
        ))))
    }

    /// Merge an open duplicate into the ticket it repeats: the duplicate is closed, its message
    /// and replies join the kept ticket (returned), and later replies to it follow. `422` for
    /// an unknown reference or the ticket itself; `409 conflict` once decided, or when the
    /// kept ticket was itself merged.
    #[oai(path = "/v1/tickets/:id/merge", method = "post", operation_id = "mergeTicket")]
    async fn merge(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<Merge>,
    ) -> ApiResult<TicketResponse> {
        let into = TicketReference::parse(&body.into).map_err(|e| AppError::InvalidInput(e.to_string()))?;
        let kept = tickets::merge(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            &into,
            body.reason.as_str(),
        )
        .await?;
        Ok(TicketResponse::Ok(Json(TicketSummary::of(
            &kept,
            state.clock.now(),
        ))))
    }

    /// Extend the deadline once, by up to 60 days, before it passes (GDPR Art. 12(3)); the
    /// requester is told the new date and the reason. `409 conflict` when decided, extended
    /// already, or past due.
    #[oai(
        path = "/v1/tickets/:id/extension",
        method = "post",
        operation_id = "extendTicket"
    )]
    async fn extend(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<Extension>,
    ) -> ApiResult<TicketResponse> {
        let ticket = tickets::extend(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            body.days,
            body.reason.as_str(),
        )
        .await?;
        Ok(TicketResponse::Ok(Json(TicketSummary::of(
            &ticket,
            state.clock.now(),
        ))))
    }

    /// Cancel the deletion this ticket's approval started, while it waits out its grace
    /// period (`deletion.grace_hours`): the account can log in again, its subscription stays
    /// cancelled, and the ledger records the cancellation by this agent. `409
    /// grace_period_over` once the purge's date has passed; `409 conflict` when no deletion
    /// was started from the ticket, it had no grace period, or it was cancelled already.
    #[oai(
        path = "/v1/tickets/:id/deletion/cancellation",
        method = "post",
        operation_id = "cancelTicketDeletion"
    )]
    async fn cancel_deletion(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<DeletionCancellation>,
    ) -> ApiResult<CancelResponse> {
        let cancelled = tickets::cancel_deletion(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            body.reason.as_str(),
        )
        .await?;
        Ok(CancelResponse::Ok(Json(ScheduledDeletionView::of(&cancelled))))
    }
}
