//! Mail to help@ becomes tickets. Every door (the MTA pipe `erasure ingest-email`, the signed
//! webhook, IMAP polling) hands the raw message to [`receive`], which reads it with one parser.
//!
//! Invariant: one ticket per Message-ID, whichever door and however often a message comes;
//! auto-replies and bounces make none; a message that cannot be read as mail makes none and
//! is kept raw in quarantine for an admin; a reply joins the ticket it answers (`replies`). A
//! new ticket and the notice acknowledging it commit together. A ticket is never verified
//! here: From is not proof.

mod authenticity;
pub mod imap;
pub mod quarantine;
mod read;
mod replies;
mod signature;

use chrono::Duration;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

pub use authenticity::{SenderAuthentication, SenderChecks};
pub use read::{Reading, Request, Unreadable, read};
pub use replies::of_ticket as replies_of;
pub use signature::{SIGNATURE_HEADER, check_signature, sign};

use crate::{
    domain::{IntakeDoor, TicketReference, TicketStatus},
    env::Env,
    error::{AppError, AppResult},
    models::ticket,
    services::{
        accounts,
        notifications::{self, NoticeKind},
        tickets::{self, new_reference, sealed::TicketText},
    },
};

/// Larger messages are refused before they are read.
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A new ticket.
    Opened(TicketReference),
    /// The message had come before; its ticket.
    Duplicate(TicketReference),
    /// A reply to a ticket (our email's Message-ID, the requester's first message, or the
    /// reference in the subject): kept with that ticket, which stays as it was.
    Attached(TicketReference),
    /// Sent by a machine; no ticket.
    Ignored(&'static str),
}

/// What every door hands over with a message.
#[derive(Debug, Clone, Copy)]
pub struct Intake<'a> {
    pub door: IntakeDoor,
    /// A new ticket is due this many days after it came.
    pub response_days: u32,
    pub checks: &'a SenderChecks,
}

/// Reads `raw` and opens its ticket, due `response_days` after now, with what DNS says of its
/// sender.
pub async fn receive(env: Env<'_>, intake: Intake<'_>, raw: &[u8]) -> AppResult<Received> {
    let Intake {
        door,
        response_days,
        checks,
    } = intake;
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(AppError::PayloadTooLarge {
            limit: MAX_MESSAGE_BYTES,
        });
    }
    // Parsed once: the reading and the sender checks share the structure.
    let reading = read::parse(raw).and_then(|message| Ok((read::read_parsed(&message, raw)?, message)));
    let (request, message) = match reading {
        Ok((Reading::Request(request), message)) => (request, message),
        Ok((Reading::Automatic(why), _)) => {
            tracing::info!(door = door.as_str(), why, "automatic message ignored");
            return Ok(Received::Ignored(why));
        }
        Err(unreadable) => {
            quarantine(env, door, &unreadable, raw).await?;
            return Err(AppError::InvalidInput(unreadable.to_string()));
        }
    };
    if let Some(existing) = find_by_key(env, &request.key).await? {
        return Ok(Received::Duplicate(existing));
    }
    if let Some(answered) = replies::answered_ticket(env, &request).await? {
        return replies::attach(env, door, &request, &answered).await;
    }
    let authentication = checks.check(&message, raw).await;
    let account = accounts::row_by_email(env, &request.sender).await?;
    let now = env.now();
    let reference = new_reference();
    let tx = env.db.begin_write().await?;
    // The row goes in without its text, sealed right after under the ticket's own key in
    // the same transaction: nothing of it in clear is ever written.
    let inserted = ticket::ActiveModel {
        reference: Set(reference.as_str().to_owned()),
        message_id: Set(request.key.clone()),
        door: Set(door),
        sender: Set(String::new()),
        subject: Set(String::new()),
        body: Set(String::new()),
        account_id: Set(account.map(|a| a.id)),
        status: Set(TicketStatus::Open),
        received_at: Set(now),
        due_at: Set(now + Duration::days(i64::from(response_days))),
        dkim: Set(Some(authentication.dkim)),
        dkim_domain: Set(authentication.dkim_domain),
        spf: Set(Some(authentication.spf)),
        dmarc: Set(Some(authentication.dmarc)),
        ..Default::default()
    }
    .insert(&tx)
    .await;
    match inserted {
        Ok(created) => {
            let text = TicketText {
                sender: request.sender.as_str().to_owned(),
                subject: request.subject,
                body: request.body,
            };
            let created = tickets::sealed::seal_new(&tx, env.vault, created, text).await?;
            notifications::add_about_ticket(
                &tx,
                env.vault,
                NoticeKind::TicketReceived,
                created.id,
                &created.sender,
                now,
            )
            .await?;
            tx.commit().await?;
            env.wake_relay();
            tracing::info!(
                door = door.as_str(),
                ticket_id = created.id,
                matched = created.account_id.is_some(),
                "ticket opened"
            );
            Ok(Received::Opened(reference))
        }
        // The same message through two doors at once: the other one stored it.
        Err(e) => {
            tx.rollback().await?;
            match find_by_key(env, &request.key).await? {
                Some(existing) => Ok(Received::Duplicate(existing)),
                None => Err(e.into()),
            }
        }
    }
}

async fn find_by_key(env: Env<'_>, key: &str) -> AppResult<Option<TicketReference>> {
    let found = ticket::Entity::find()
        .filter(ticket::Column::MessageId.eq(key))
        .one(&env.db.conn)
        .await?;
    found
        .map(|t| TicketReference::parse(&t.reference).map_err(AppError::internal))
        .transpose()
}

async fn quarantine(env: Env<'_>, door: IntakeDoor, why: &Unreadable, raw: &[u8]) -> AppResult<()> {
    let kept = quarantine::keep(env, door, &why.0, raw).await?;
    tracing::warn!(door = door.as_str(), quarantine_id = kept, reason = %why.0, "message quarantined");
    Ok(())
}
