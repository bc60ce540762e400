//! Replies: a message that answers one of our emails (its Message-ID names the notice, hence
//! the ticket), the requester's first message, or quotes a ticket's reference in its subject
//! joins that ticket, once per Message-ID, and opens none. It verifies nothing and changes
//! nothing about the ticket: an agent reads it.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use super::{Received, Request};
use crate::{
    domain::{IntakeDoor, TicketReference},
    env::Env,
    error::{AppError, AppResult},
    models::{notification, ticket, ticket_reply},
    services::tickets::sealed::{self, TicketText},
    vault::KeyOwner,
};

/// The ticket `request` answers, if any: by the Message-IDs it replies to (newest first), then
/// by a reference in its subject. A reply to a merged duplicate joins the ticket it was merged
/// into.
pub(super) async fn answered_ticket(env: Env<'_>, request: &Request) -> AppResult<Option<ticket::Model>> {
    let found = answered_directly(env, request).await?;
    match found.as_ref().and_then(|t| t.merged_into_id) {
        Some(kept) => Ok(ticket::Entity::find_by_id(kept)
            .one(&env.db.conn)
            .await?
            .or(found)),
        None => Ok(found),
    }
}

async fn answered_directly(env: Env<'_>, request: &Request) -> AppResult<Option<ticket::Model>> {
    let conn = &env.db.conn;
    if let Some(known) = ticket_reply::Entity::find()
        .filter(ticket_reply::Column::MessageId.eq(&request.key))
        .one(conn)
        .await?
    {
        return Ok(ticket::Entity::find_by_id(known.ticket_id).one(conn).await?);
    }
    for id in &request.replies_to {
        let notice = id
            .strip_prefix("notification-")
            .and_then(|rest| rest.strip_suffix("@erasure"));
        if let Some(notice) = notice
            && let Some(found) = notification::Entity::find_by_id(notice).one(conn).await?
            && let Some(ticket_id) = found.ticket_id
        {
            return Ok(ticket::Entity::find_by_id(ticket_id).one(conn).await?);
        }
        if let Some(found) = ticket::Entity::find()
            .filter(ticket::Column::MessageId.eq(id))
            .one(conn)
            .await?
        {
            return Ok(Some(found));
        }
    }
    for word in request
        .subject
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
    {
        if let Ok(reference) = TicketReference::parse(word)
            && let Some(found) = ticket::Entity::find()
                .filter(ticket::Column::Reference.eq(reference.as_str()))
                .one(conn)
                .await?
        {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Keeps `request` with `answered`. The same reply again is kept once.
pub(super) async fn attach(
    env: Env<'_>,
    door: IntakeDoor,
    request: &Request,
    answered: &ticket::Model,
) -> AppResult<Received> {
    let reference = TicketReference::parse(&answered.reference).map_err(AppError::internal)?;
    let exists = ticket_reply::Entity::find()
        .filter(ticket_reply::Column::MessageId.eq(&request.key))
        .one(&env.db.conn)
        .await?
        .is_some();
    if !exists {
        let key = env
            .vault
            .create_key(&env.db.conn, &KeyOwner::Ticket(answered.id), env.now())
            .await?;
        let text = TicketText {
            sender: request.sender.as_str().to_owned(),
            subject: request.subject.clone(),
            body: request.body.clone(),
        };
        let reply = ticket_reply::ActiveModel {
            ticket_id: Set(answered.id),
            message_id: Set(request.key.clone()),
            door: Set(door),
            received_at: Set(env.now()),
            ..Default::default()
        };
        let inserted = sealed::seal_reply(&key, reply, &text).insert(&env.db.conn).await;
        match inserted {
            Ok(reply) => {
                tracing::info!(
                    door = door.as_str(),
                    ticket_id = answered.id,
                    reply_id = reply.id,
                    "reply kept with its ticket"
                );
            }
            Err(e) => match AppError::from(e) {
                // The same reply through two doors at once: the other one kept it.
                AppError::Conflict(_) => {}
                other => return Err(other),
            },
        }
    }
    Ok(Received::Attached(reference))
}

/// The replies to a ticket, oldest first.
pub async fn of_ticket(env: Env<'_>, ticket_id: i64) -> AppResult<Vec<ticket_reply::Model>> {
    use sea_orm::QueryOrder;
    let rows = ticket_reply::Entity::find()
        .filter(ticket_reply::Column::TicketId.eq(ticket_id))
        .order_by_asc(ticket_reply::Column::ReceivedAt)
        .order_by_asc(ticket_reply::Column::Id)
        .all(&env.db.conn)
        .await?;
    let key = sealed::key(env.vault, &env.db.conn, ticket_id).await?;
    rows.into_iter()
        .map(|r| sealed::open_reply(key.as_ref(), r))
        .collect()
}
