//! Merging duplicates: a requester who writes twice (or from the app and by mail) gets one
//! ticket. The duplicate is closed into the ticket it repeats; its message and replies join
//! that ticket, and later replies to it follow.
//!
//! Invariant: one transaction, conditional on the duplicate still being open; a ticket is
//! merged into one that is not itself merged, so replies follow one hop at most; nothing of
//! the duplicate is lost (its message becomes a reply of the kept ticket). Verification is not
//! carried over: the agent keeps the ticket that was verified.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};

use super::{
    already_decided, audit, changed_meanwhile, end_open_ticket, find, reason_text,
    sealed::{self, TicketText},
};
use crate::{
    domain::{Actor, TicketReference, TicketStatus},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::{ticket, ticket_reply},
    services::ledger::events::TicketAction,
    vault::KeyOwner,
};

/// Closes open ticket `duplicate_id` into the ticket referenced `into`, with the agent's reason.
/// Returns the kept ticket.
pub async fn merge(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    duplicate_id: i64,
    into: &TicketReference,
    reason: &str,
) -> AppResult<ticket::Model> {
    let reason = reason_text(reason)?;
    let duplicate = find(env, duplicate_id).await?;
    if duplicate.status != TicketStatus::Open {
        return Err(already_decided(&duplicate));
    }
    let kept = ticket::Entity::find()
        .filter(ticket::Column::Reference.eq(into.as_str()))
        .one(&env.db.conn)
        .await?
        .ok_or_else(|| AppError::InvalidInput(format!("no ticket has the reference {into}")))?;
    if kept.id == duplicate.id {
        return Err(AppError::InvalidInput(
            "a ticket cannot be merged into itself".into(),
        ));
    }
    if let Some(further) = kept.merged_into_id {
        return Err(AppError::Conflict(format!(
            "{} was itself merged (into ticket #{further}): merge into that one",
            kept.reference
        )));
    }
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let why = format!("merged into {}: {reason}", kept.reference);
    if !end_open_ticket(&tx, now, duplicate.id, TicketStatus::Closed, agent_id, why).await? {
        tx.rollback().await?;
        return Err(changed_meanwhile());
    }
    ticket::Entity::update_many()
        .col_expr(ticket::Column::MergedIntoId, Expr::value(kept.id))
        // Its confirmation link dies with it: the owner confirms on the kept ticket.
        .col_expr(
            ticket::Column::VerificationTokenHash,
            Expr::value(Option::<String>::None),
        )
        .filter(ticket::Column::Id.eq(duplicate.id))
        .exec(&tx)
        .await?;
    // The duplicate's replies move to the kept ticket, sealed again under its key; the
    // duplicate's own message joins them as a reply.
    let kept_key = env.vault.create_key(&tx, &KeyOwner::Ticket(kept.id), now).await?;
    let duplicate_key = sealed::key(env.vault, &tx, duplicate.id).await?;
    let moved = ticket_reply::Entity::find()
        .filter(ticket_reply::Column::TicketId.eq(duplicate.id))
        .all(&tx)
        .await?;
    for reply in moved {
        let reply = sealed::open_reply(duplicate_key.as_ref(), reply)?;
        let text = TicketText {
            sender: reply.sender.clone(),
            subject: reply.subject.clone(),
            body: reply.body.clone(),
        };
        let mut row: ticket_reply::ActiveModel = reply.into();
        row.ticket_id = Set(kept.id);
        sealed::seal_reply(&kept_key, row, &text).update(&tx).await?;
    }
    let merged = TicketText {
        sender: duplicate.sender.clone(),
        subject: format!("[{}] {}", duplicate.reference, duplicate.subject),
        body: duplicate.body.clone(),
    };
    let reply = ticket_reply::ActiveModel {
        ticket_id: Set(kept.id),
        message_id: Set(format!("merged-{}", duplicate.reference)),
        door: Set(duplicate.door),
        received_at: Set(duplicate.received_at),
        ..Default::default()
    };
    sealed::seal_reply(&kept_key, reply, &merged).insert(&tx).await?;
    audit::record(
        &tx,
        env,
        keys,
        duplicate.id,
        TicketAction::Merged,
        Actor::Agent(agent_id),
        None,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        ticket_id = duplicate.id,
        kept_id = kept.id,
        staff_id = agent_id,
        "ticket merged into another"
    );
    find(env, kept.id).await
}
