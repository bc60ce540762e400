//! Tickets for support agents: the queue, one ticket, and the decisions on it. Every
//! operation demands an agent (or an admin) through `Staff<Agent>`.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::{
    ApiTags,
    auth::{Agent, Staff},
    fields::ReasonText,
    me::DeletionReceipt,
};
use crate::{
    domain::{IntakeDoor, TicketStatus},
    error::AppError,
    http::error::ApiResult,
    models::ticket,
    services::{
        intake,
        tickets::{self, Approval, Assignee, TicketFilter},
    },
    state::AppState,
};

pub struct TicketsApi;

/// Where a ticket stands.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "lowercase")]
pub enum TicketStatusName {
    Open,
    Approved,
    Rejected,
    Closed,
}

impl TicketStatusName {
    pub(super) fn of(status: TicketStatus) -> Self {
        match status {
            TicketStatus::Open => Self::Open,
            TicketStatus::Approved => Self::Approved,
            TicketStatus::Rejected => Self::Rejected,
            TicketStatus::Closed => Self::Closed,
        }
    }

    fn status(self) -> TicketStatus {
        match self {
            Self::Open => TicketStatus::Open,
            Self::Approved => TicketStatus::Approved,
            Self::Rejected => TicketStatus::Rejected,
            Self::Closed => TicketStatus::Closed,
        }
    }
}

/// A ticket as the queue lists it.
#[derive(Object)]
pub struct TicketSummary {
    pub id: i64,
    /// What the requester quotes, e.g. T-7K2M9QXA.
    pub reference: String,
    pub status: TicketStatusName,
    /// Whether the account's owner (or an agent, with a reason) has verified the request.
    pub verified: bool,
    /// The From address, normalised. Not proof of anything.
    pub sender: String,
    pub subject: String,
    /// The account whose email is the sender's; `null` when nobody's is.
    #[oai(nullable)]
    pub account_id: Option<i64>,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Open and past its due date.
    pub overdue: bool,
    /// The staff id of the agent working it; `null` when nobody is.
    #[oai(nullable)]
    pub assignee_id: Option<i64>,
    /// Whether the deadline was extended (once, at most).
    pub extended: bool,
    /// With the two-person rule: the staff id of the first approval, awaiting a second.
    #[oai(nullable)]
    pub first_approved_by: Option<i64>,
    /// A duplicate closed into this ticket (its id).
    #[oai(nullable)]
    pub merged_into_id: Option<i64>,
}

/// One ticket, with its message.
#[derive(Object)]
pub struct TicketDetail {
    #[oai(flatten)]
    pub summary: TicketSummary,
    /// pipe | webhook | imap | app
    pub door: String,
    /// The message as plain text (HTML is converted, never rendered).
    pub body: String,
    /// Messages that answered the ticket since, oldest first.
    pub replies: Vec<TicketReply>,
    /// Agents' notes and the questions mailed to the requester, oldest first.
    pub notes: Vec<TicketNote>,
    /// Why the deadline was extended, when it was.
    #[oai(nullable)]
    pub extension_reason: Option<String>,
    /// DKIM, SPF and DMARC as checked when the message came; `null` for requests made in the
    /// app (the log-in was the proof). For information: a pass is not a verification.
    #[oai(nullable)]
    pub sender_authentication: Option<SenderAuthenticationView>,
}

/// Each check's RFC 8601 result: pass, fail, softfail (SPF), neutral, none, temperror or
/// permerror.
#[derive(Object)]
pub struct SenderAuthenticationView {
    pub dkim: String,
    /// The domain whose DKIM signature passed.
    #[oai(nullable)]
    pub dkim_domain: Option<String>,
    pub spf: String,
    pub dmarc: String,
}

impl SenderAuthenticationView {
    pub fn of(t: &ticket::Model) -> Option<Self> {
        let name = |v: Option<crate::domain::AuthVerdict>| v.map(|v| v.as_str().to_owned());
        Some(Self {
            dkim: name(t.dkim)?,
            dkim_domain: t.dkim_domain.clone(),
            spf: name(t.spf)?,
            dmarc: name(t.dmarc)?,
        })
    }
}

/// What an agent wrote on a ticket.
#[derive(Object)]
pub struct TicketNote {
    pub id: i64,
    /// The agent's staff id.
    pub staff_id: i64,
    /// note (internal) | question (mailed to the requester)
    pub kind: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

impl TicketNote {
    pub fn of(n: &crate::models::ticket_note::Model) -> Self {
        Self {
            id: n.id,
            staff_id: n.staff_id,
            kind: n.kind.clone(),
            body: n.body.clone(),
            created_at: n.created_at,
        }
    }
}

/// A reply kept with its ticket.
#[derive(Object)]
pub struct TicketReply {
    /// The From address, normalised.
    pub sender: String,
    pub subject: String,
    /// Plain text.
    pub body: String,
    pub received_at: DateTime<Utc>,
}

impl TicketSummary {
    pub(super) fn of(t: &ticket::Model, now: DateTime<Utc>) -> Self {
        Self {
            id: t.id,
            reference: t.reference.clone(),
            status: TicketStatusName::of(t.status),
            verified: t.verified_at.is_some(),
            sender: t.sender.clone(),
            subject: t.subject.clone(),
            account_id: t.account_id,
            received_at: t.received_at,
            due_at: t.due_at,
            overdue: t.status == TicketStatus::Open && t.due_at < now,
            assignee_id: t.assignee_id,
            extended: t.extended_at.is_some(),
            first_approved_by: t.first_approved_by,
            merged_into_id: t.merged_into_id,
        }
    }
}

fn door_name(door: IntakeDoor) -> String {
    door.as_str().to_owned()
}

/// Why: what a person reads later in the ticket's history (and, for a rejection, the
/// requester in their email).
#[derive(Object)]
pub struct Reason {
    pub reason: ReasonText,
}

#[derive(ApiResponse)]
enum DecisionResponse {
    #[oai(status = 200)]
    Ok(Json<TicketSummary>),
}

#[derive(ApiResponse)]
enum ApprovalResponse {
    /// Approved: the account's deletion is under way; follow it with the receipt.
    #[oai(status = 202)]
    Accepted(Json<DeletionReceipt>),
    /// With `support.two_person_approval`: the first approval is recorded; a second, different
    /// agent must approve too.
    #[oai(status = 200)]
    AwaitingSecond(Json<TicketSummary>),
}

#[derive(ApiResponse)]
enum ListResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<TicketSummary>>),
}

#[derive(ApiResponse)]
enum DetailResponse {
    #[oai(status = 200)]
    Ok(Json<TicketDetail>),
}

#[OpenApi(tag = "ApiTags::Tickets")]
impl TicketsApi {
    /// The ticket queue, soonest due first. Agents and admins.
    #[oai(path = "/v1/tickets", method = "get", operation_id = "listTickets")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        /// Only tickets in this status.
        status: Query<Option<TicketStatusName>>,
        /// Only verified (true) or unverified (false) tickets.
        verified: Query<Option<bool>>,
        /// Only open tickets past their due date (true), or all others (false).
        overdue: Query<Option<bool>>,
        /// Part of the reference, or the sender's whole address (senders and subjects are
        /// encrypted: they cannot be searched in part).
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
        /// Whose tickets: `me`, `none` (nobody's), or a staff id.
        #[oai(validator(pattern = r"^(me|none|[1-9][0-9]{0,17})$"))]
        assignee: Query<Option<String>>,
        /// At most this many tickets (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u64>>,
        /// Skip this many first.
        #[oai(validator(minimum(value = "0"), maximum(value = "1000000")))]
        offset: Query<Option<u64>>,
    ) -> ApiResult<ListResponse> {
        let assignee = match assignee.0.as_deref() {
            None => None,
            Some("me") => Some(Assignee::Staff(agent.0.staff.id)),
            Some("none") => Some(Assignee::Nobody),
            Some(id) => Some(Assignee::Staff(id.parse().map_err(|_| {
                AppError::InvalidInput("assignee is me, none or a staff id".into())
            })?)),
        };
        let filter = TicketFilter {
            assignee,
            status: status.0.map(TicketStatusName::status),
            verified: verified.0,
            overdue: overdue.0,
            q: q.0,
            limit: limit.0.unwrap_or(50),
            offset: offset.0.unwrap_or(0),
        };
        let now = state.clock.now();
        let found = tickets::list(state.env(), &filter).await?;
        Ok(ListResponse::Ok(Json(
            found.iter().map(|t| TicketSummary::of(t, now)).collect(),
        )))
    }

    /// One ticket with its message. Agents and admins.
    #[oai(path = "/v1/tickets/:id", method = "get", operation_id = "getTicket")]
    async fn get(
        &self,
        state: Data<&AppState>,
        _agent: Staff<Agent>,
        id: Path<i64>,
    ) -> ApiResult<DetailResponse> {
        let found = tickets::find(state.env(), id.0).await?;
        let replies = intake::replies_of(state.env(), found.id).await?;
        let notes = tickets::notes(state.env(), found.id).await?;
        Ok(DetailResponse::Ok(Json(TicketDetail {
            summary: TicketSummary::of(&found, state.clock.now()),
            door: door_name(found.door),
            body: found.body.clone(),
            replies: replies
                .into_iter()
                .map(|r| TicketReply {
                    sender: r.sender,
                    subject: r.subject,
                    body: r.body,
                    received_at: r.received_at,
                })
                .collect(),
            notes: notes.iter().map(TicketNote::of).collect(),
            extension_reason: found.extension_reason.clone(),
            sender_authentication: SenderAuthenticationView::of(&found),
        })))
    }

    /// Record that the requester was verified by other means (a call back, a letter), with
    /// how. Verifying a verified ticket again changes nothing; `409 conflict` once decided.
    #[oai(
        path = "/v1/tickets/:id/verification",
        method = "post",
        operation_id = "verifyTicket"
    )]
    async fn verify(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<Reason>,
    ) -> ApiResult<DecisionResponse> {
        let ticket = tickets::verify(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            body.reason.as_str(),
        )
        .await?;
        Ok(DecisionResponse::Ok(Json(TicketSummary::of(
            &ticket,
            state.clock.now(),
        ))))
    }

    /// Approve a verified ticket: its account's deletion runs the same pipeline as
    /// self-service, with this agent as the actor and `support` as the channel.
    /// `409 ticket_unverified`; `409 conflict` when already decided or matched to no account.
    #[oai(
        path = "/v1/tickets/:id/approval",
        method = "post",
        operation_id = "approveTicket"
    )]
    async fn approve(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
    ) -> ApiResult<ApprovalResponse> {
        let two_person = state.settings.support.two_person_approval;
        match tickets::approve(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            two_person,
            state.grace(),
        )
        .await?
        {
            Approval::Started(receipt) => Ok(ApprovalResponse::Accepted(Json(DeletionReceipt {
                receipt_id: receipt.receipt.expose().to_owned(),
                status: receipt.status.as_str().to_owned(),
                purge_after: receipt.purge_after,
            }))),
            Approval::AwaitingSecond(ticket) => Ok(ApprovalResponse::AwaitingSecond(Json(
                TicketSummary::of(&ticket, state.clock.now()),
            ))),
        }
    }

    /// Reject the request, with the reason. `409 conflict` when already decided.
    #[oai(
        path = "/v1/tickets/:id/rejection",
        method = "post",
        operation_id = "rejectTicket"
    )]
    async fn reject(
        &self,
        state: Data<&AppState>,
        agent: Staff<Agent>,
        id: Path<i64>,
        body: Json<Reason>,
    ) -> ApiResult<DecisionResponse> {
        let ticket = tickets::reject(
            state.env(),
            &state.keys,
            agent.0.staff.id,
            id.0,
            body.reason.as_str(),
        )
        .await?;
        Ok(DecisionResponse::Ok(Json(TicketSummary::of(
            &ticket,
            state.clock.now(),
        ))))
    }
}
