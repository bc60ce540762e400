//! How agents work a ticket besides deciding it: who it is assigned to, internal notes, a
//! question mailed to the requester (the answer comes back as a reply), and the one extension
//! of the deadline the law allows.
//!
//! Invariant: every change here commits with its ledger event; a question and its email, an
//! extension and its email, commit together; a
//! deadline is extended once, before it passes, by at most `MAX_EXTENSION_DAYS`.

use chrono::Duration;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::Expr};

use super::{
    already_decided, audit, changed_meanwhile, end_open_ticket, find, reason_text, sealed, typed_text,
};
use crate::{
    domain::{AccountStatus, Actor, StaffRole, TicketStatus, VseeId},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::{ticket, ticket_note},
    services::{
        accounts,
        ledger::events::TicketAction,
        notifications::{self, NoticeKind},
        staff,
    },
    vault::KeyOwner,
};

/// GDPR Art. 12(3): "extended by two further months".
pub const MAX_EXTENSION_DAYS: u32 = 60;

const MAX_NOTE_CHARS: usize = 5000;

/// Assigns the ticket to an agent (or an admin), or to nobody; a ledger event says who did.
pub async fn assign(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    assignee: Option<i64>,
) -> AppResult<ticket::Model> {
    if let Some(id) = assignee {
        let member = staff::find(env.db, id).await?;
        let can_work = member.is_some_and(|m| m.disabled_at.is_none() && m.role.grants(StaffRole::Agent));
        if !can_work {
            return Err(AppError::InvalidInput(format!(
                "staff member {id} is not an enabled agent or admin"
            )));
        }
    }
    let tx = env.db.begin_write().await?;
    let updated = ticket::Entity::update_many()
        .col_expr(ticket::Column::AssigneeId, Expr::value(assignee))
        .filter(ticket::Column::Id.eq(ticket_id))
        .exec(&tx)
        .await?
        .rows_affected;
    if updated == 0 {
        tx.rollback().await?;
        return Err(AppError::NotFound);
    }
    let assigned = audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Assigned,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(assigned)
}

/// An internal note: for agents, never mailed. The ledger records that one was written, not
/// what it says.
pub async fn add_note(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    body: &str,
) -> AppResult<ticket_note::Model> {
    let body = typed_text(body, "a note", MAX_NOTE_CHARS)?;
    find(env, ticket_id).await?;
    let tx = env.db.begin_write().await?;
    let key = env
        .vault
        .create_key(&tx, &KeyOwner::Ticket(ticket_id), env.now())
        .await?;
    let note = ticket_note::ActiveModel {
        ticket_id: Set(ticket_id),
        staff_id: Set(agent_id),
        kind: Set("note".to_owned()),
        body: Set(key.seal(sealed::NOTE_BODY, &body)),
        notice_id: Set(None),
        created_at: Set(env.now()),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let note = ticket_note::Model { body, ..note };
    audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Noted,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(note)
}

/// Asks the requester for more information, by email; their reply joins the ticket.
pub async fn ask(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    question: &str,
) -> AppResult<ticket_note::Model> {
    let question = typed_text(question, "a question", MAX_NOTE_CHARS)?;
    let ticket = find(env, ticket_id).await?;
    if ticket.status != TicketStatus::Open {
        return Err(already_decided(&ticket));
    }
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let notice = notifications::add_about_ticket(
        &tx,
        env.vault,
        NoticeKind::TicketQuestion,
        ticket_id,
        &ticket.sender,
        now,
    )
    .await?;
    let key = env
        .vault
        .create_key(&tx, &KeyOwner::Ticket(ticket_id), now)
        .await?;
    let note = ticket_note::ActiveModel {
        ticket_id: Set(ticket_id),
        staff_id: Set(agent_id),
        kind: Set("question".to_owned()),
        body: Set(key.seal(sealed::NOTE_BODY, &question)),
        notice_id: Set(Some(notice.to_string())),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    let note = ticket_note::Model {
        body: question,
        ..note
    };
    audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Asked,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    env.wake_relay();
    tracing::info!(
        ticket_id,
        staff_id = agent_id,
        "requester asked for more information"
    );
    Ok(note)
}

/// Extends the deadline once, by 1 to `MAX_EXTENSION_DAYS` days, with the reason the
/// requester is told; only while the ticket is open and not yet due.
pub async fn extend(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    days: u32,
    reason: &str,
) -> AppResult<ticket::Model> {
    if !(1..=MAX_EXTENSION_DAYS).contains(&days) {
        return Err(AppError::InvalidInput(format!(
            "an extension is 1 to {MAX_EXTENSION_DAYS} days"
        )));
    }
    let reason = reason_text(reason)?;
    let ticket = find(env, ticket_id).await?;
    let now = env.now();
    if ticket.status != TicketStatus::Open {
        return Err(already_decided(&ticket));
    }
    if ticket.extended_at.is_some() {
        return Err(AppError::Conflict(
            "the deadline was extended once already".into(),
        ));
    }
    if ticket.due_at <= now {
        return Err(AppError::Conflict(
            "the deadline has passed: it can only be extended before it".into(),
        ));
    }
    let tx = env.db.begin_write().await?;
    // Conditional on what was read: two extensions at once, one wins.
    let updated = ticket::Entity::update_many()
        .col_expr(
            ticket::Column::DueAt,
            Expr::value(ticket.due_at + Duration::days(i64::from(days))),
        )
        .col_expr(ticket::Column::ExtendedAt, Expr::value(now))
        .col_expr(ticket::Column::ExtendedBy, Expr::value(agent_id))
        .col_expr(ticket::Column::ExtensionReason, Expr::value(reason))
        .filter(ticket::Column::Id.eq(ticket_id))
        .filter(ticket::Column::Status.eq(TicketStatus::Open))
        .filter(ticket::Column::ExtendedAt.is_null())
        .filter(ticket::Column::DueAt.eq(ticket.due_at))
        .exec(&tx)
        .await?
        .rows_affected;
    if updated == 0 {
        tx.rollback().await?;
        return Err(changed_meanwhile());
    }
    notifications::add_about_ticket(
        &tx,
        env.vault,
        NoticeKind::TicketExtended,
        ticket_id,
        &ticket.sender,
        now,
    )
    .await?;
    let extended = audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Extended,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    env.wake_relay();
    tracing::info!(ticket_id, staff_id = agent_id, days, "deadline extended");
    Ok(extended)
}

/// Matches an unmatched ticket to the account with `vsee_id`, with why: the account's owner is
/// then mailed the link that confirms the request (From was not proof, and neither is this).
pub async fn link(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    vsee_id: &str,
    reason: &str,
) -> AppResult<ticket::Model> {
    let reason = reason_text(reason)?;
    let vsee_id = VseeId::parse(vsee_id)?;
    let account = accounts::find_by_vsee_id(env, &vsee_id)
        .await?
        .filter(|a| a.status == AccountStatus::Active)
        .ok_or_else(|| AppError::InvalidInput("no active account has that VSee ID".into()))?;
    let ticket = find(env, ticket_id).await?;
    if ticket.status != TicketStatus::Open {
        return Err(already_decided(&ticket));
    }
    if ticket.account_id.is_some() {
        return Err(AppError::Conflict(
            "the ticket is matched to an account already".into(),
        ));
    }
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let updated = ticket::Entity::update_many()
        .col_expr(ticket::Column::AccountId, Expr::value(account.id))
        .filter(ticket::Column::Id.eq(ticket_id))
        .filter(ticket::Column::Status.eq(TicketStatus::Open))
        .filter(ticket::Column::AccountId.is_null())
        .exec(&tx)
        .await?
        .rows_affected;
    if updated == 0 {
        tx.rollback().await?;
        return Err(changed_meanwhile());
    }
    let key = env
        .vault
        .create_key(&tx, &KeyOwner::Ticket(ticket_id), now)
        .await?;
    ticket_note::ActiveModel {
        ticket_id: Set(ticket_id),
        staff_id: Set(agent_id),
        kind: Set("note".to_owned()),
        body: Set(key.seal(
            sealed::NOTE_BODY,
            &format!("matched to account #{}: {reason}", account.id),
        )),
        notice_id: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    // The acknowledgement's letter, now that an unverified ticket names an account, is the
    // confirmation link, to the account's registered address.
    notifications::add_about_ticket(
        &tx,
        env.vault,
        NoticeKind::TicketReceived,
        ticket_id,
        &ticket.sender,
        now,
    )
    .await?;
    let linked = audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Linked,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    env.wake_relay();
    tracing::info!(
        ticket_id,
        staff_id = agent_id,
        account_id = account.id,
        "ticket matched to an account"
    );
    Ok(linked)
}

/// Closes an open ticket without deciding it (spam, a duplicate of another, no answer), with
/// why. Nothing is mailed.
pub async fn close(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    ticket_id: i64,
    reason: &str,
) -> AppResult<ticket::Model> {
    let reason = reason_text(reason)?;
    let tx = env.db.begin_write().await?;
    if !end_open_ticket(&tx, env.now(), ticket_id, TicketStatus::Closed, agent_id, reason).await? {
        tx.rollback().await?;
        return Err(already_decided(&find(env, ticket_id).await?));
    }
    let closed = audit::record(
        &tx,
        env,
        keys,
        ticket_id,
        TicketAction::Closed,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(ticket_id, staff_id = agent_id, "ticket closed");
    Ok(closed)
}

/// The ticket's notes and questions, oldest first.
pub async fn notes(env: Env<'_>, ticket_id: i64) -> AppResult<Vec<ticket_note::Model>> {
    let rows = ticket_note::Entity::find()
        .filter(ticket_note::Column::TicketId.eq(ticket_id))
        .order_by_asc(ticket_note::Column::CreatedAt)
        .order_by_asc(ticket_note::Column::Id)
        .all(&env.db.conn)
        .await?;
    let key = sealed::key(env.vault, &env.db.conn, ticket_id).await?;
    rows.into_iter()
        .map(|n| sealed::open_note(key.as_ref(), n))
        .collect()
}
