//! What agents decide on a ticket: a verification by other means, an approval (by two agents
//! under `support.two_person_approval`), a rejection.
//!
//! Invariant: a decision happens once, on an open ticket, and only a verified ticket matched
//! to an account can be approved. Each decision is one conditional update (two agents
//! deciding at once: one wins, the other is told), and an approval opens the deletion in the
//! same transaction, so a ticket is never approved without its deletion, nor the other way
//! round.

use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, sea_query::Expr};

use super::{already_decided, audit, changed_meanwhile, end_open_ticket, find, reason_text};
use crate::{
    domain::{Actor, Channel, TicketStatus},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::{account, ticket},
    services::{
        accounts, deletion,
        ledger::events::TicketAction,
        notifications::{self, NoticeKind},
    },
};

/// An agent records how the requester was verified (a call back, a signed letter). Verifying a
/// verified ticket again changes nothing.
pub async fn verify(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    reason: &str,
) -> AppResult<ticket::Model> {
    let reason = reason_text(reason)?;
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let updated = ticket::Entity::update_many()
        .col_expr(ticket::Column::VerifiedAt, Expr::value(now))
        .col_expr(ticket::Column::VerifiedBy, Expr::value(agent_id))
        .col_expr(ticket::Column::VerificationReason, Expr::value(reason))
        .filter(ticket::Column::Id.eq(ticket_id))
        .filter(ticket::Column::Status.eq(TicketStatus::Open))
        .filter(ticket::Column::VerifiedAt.is_null())
        .exec(&tx)
        .await?
        .rows_affected;
    if updated == 0 {
        tx.rollback().await?;
        let ticket = find(env, ticket_id).await?;
        if ticket.status != TicketStatus::Open {
            return Err(already_decided(&ticket));
        }
        return Ok(ticket);
    }
    let ticket = audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Verified,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(ticket_id, staff_id = agent_id, "ticket verified by an agent");
    Ok(ticket)
}

/// Refuses the request, with the reason the requester is told: the rejection and the email
/// that tells them commit together.
pub async fn reject(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    reason: &str,
) -> AppResult<ticket::Model> {
    let reason = reason_text(reason)?;
    let now = env.now();
    let tx = env.db.begin_write().await?;
    if !end_open_ticket(&tx, now, ticket_id, TicketStatus::Rejected, agent_id, reason).await? {
        tx.rollback().await?;
        return Err(already_decided(&find(env, ticket_id).await?));
    }
    let ticket = audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Rejected,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    notifications::add_about_ticket(
        &tx,
        env.vault,
        NoticeKind::TicketRejected,
        ticket_id,
        &ticket.sender,
        now,
    )
    .await?;
    tx.commit().await?;
    env.wake_relay();
    tracing::info!(ticket_id, staff_id = agent_id, "ticket rejected");
    Ok(ticket)
}

/// What an approval did.
#[derive(Debug)]
pub enum Approval {
    /// The account's deletion started.
    Started(deletion::Receipt),
    /// With the two-person rule: the first approval is recorded; another agent must confirm.
    AwaitingSecond(Box<ticket::Model>),
}

/// Approves a verified ticket: its account's deletion starts, by this agent, through support,
/// and its subscription is marked cancelled, all in one transaction.
/// With `two_person`, the first approval is only recorded, and a second agent (not the first)
/// starts the deletion. The deletion waits `grace` (cancellable) before its purge.
pub async fn approve(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    two_person: bool,
    grace: chrono::Duration,
) -> AppResult<Approval> {
    let ticket = find(env, ticket_id).await?;
    if ticket.status != TicketStatus::Open {
        return Err(already_decided(&ticket));
    }
    if ticket.verified_at.is_none() {
        return Err(AppError::TicketUnverified);
    }
    let account_id = ticket.account_id.ok_or_else(|| {
        AppError::Conflict("the ticket's sender matches no account; link it to one first".into())
    })?;
    let account = accounts::find(env, account_id)
        .await?
        .ok_or_else(|| AppError::Conflict("the ticket's account no longer exists".into()))?;
    if two_person {
        match ticket.first_approved_by {
            None => return record_first_approval(env, keys, agent_id, ticket_id).await,
            Some(first) if first == agent_id => {
                return Err(AppError::Conflict(
                    "you approved this ticket already: a second, different agent must confirm".into(),
                ));
            }
            Some(_) => {}
        }
    }
    let tx = env.db.begin_write().await?;
    let receipt = deletion::open_request_in(
        &tx,
        env,
        keys,
        &account,
        Actor::Agent(agent_id),
        Channel::Support,
        grace,
    )
    .await?;
    if !mark_approved(&tx, env, agent_id, ticket_id, &receipt).await? {
        // Decided meanwhile by someone else: the deletion is not opened (the transaction
        // rolls back when dropped).
        return Err(already_decided(&find(env, ticket_id).await?));
    }
    // Billing stops now, not when the purge has run.
    account::Entity::update_many()
        .col_expr(account::Column::SubscriptionCancelledAt, Expr::value(env.now()))
        .filter(account::Column::Id.eq(account.id))
        .filter(account::Column::SubscriptionCancelledAt.is_null())
        .exec(&tx)
        .await?;
    let request_id = Some(receipt.request_id.to_string());
    audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Approved,
        Actor::Agent(agent_id),
        request_id,
    )
    .await?;
    tx.commit().await?;
    env.wake_relay();
    tracing::info!(ticket_id, staff_id = agent_id, request_id = %receipt.request_id, "ticket approved");
    Ok(Approval::Started(receipt))
}

/// The first of two approvals; one conditional update, so two first approvals at once record
/// one.
async fn record_first_approval(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
) -> AppResult<Approval> {
    let tx = env.db.begin_write().await?;
    let updated = ticket::Entity::update_many()
        .col_expr(ticket::Column::FirstApprovedBy, Expr::value(agent_id))
        .col_expr(ticket::Column::FirstApprovedAt, Expr::value(env.now()))
        .filter(ticket::Column::Id.eq(ticket_id))
        .filter(ticket::Column::Status.eq(TicketStatus::Open))
        .filter(ticket::Column::FirstApprovedBy.is_null())
        .exec(&tx)
        .await?
        .rows_affected;
    if updated == 0 {
        tx.rollback().await?;
        return Err(changed_meanwhile());
    }
    let ticket = audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::ApprovalRecorded,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(ticket_id, staff_id = agent_id, "first approval recorded");
    Ok(Approval::AwaitingSecond(Box::new(ticket)))
}

async fn mark_approved(
    tx: &DatabaseTransaction,
    env: Env<'_>,
    agent_id: i64,
    ticket_id: i64,
    receipt: &deletion::Receipt,
) -> AppResult<bool> {
    let updated = ticket::Entity::update_many()
        .col_expr(ticket::Column::Status, Expr::value(TicketStatus::Approved))
        .col_expr(ticket::Column::DecidedAt, Expr::value(env.now()))
        .col_expr(ticket::Column::DecidedBy, Expr::value(agent_id))
        .col_expr(
            ticket::Column::DeletionRequestId,
            Expr::value(receipt.request_id.to_string()),
        )
        .filter(ticket::Column::Id.eq(ticket_id))
        .filter(ticket::Column::Status.eq(TicketStatus::Open))
        .filter(ticket::Column::VerifiedAt.is_not_null())
        .exec(tx)
        .await?
        .rows_affected;
    Ok(updated == 1)
}

/// Cancels the scheduled deletion an approval of ticket `ticket_id` started, within its grace
/// period, with the agent's reason (see `deletion::grace`).
pub async fn cancel_deletion(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    reason: &str,
) -> AppResult<deletion::grace::Scheduled> {
    let ticket = find(env, ticket_id).await?;
    let request_id = ticket
        .deletion_request_id
        .as_deref()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| AppError::Conflict("no deletion was started from this ticket".into()))?;
    deletion::grace::cancel_by_agent(env, keys, agent_id, request_id, reason).await
}
