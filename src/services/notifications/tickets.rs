//! The letters about tickets. A new ticket that names an active account and is not verified
//! yet gets the confirmation link, at the account's registered address (never at an address
//! the request chose); any other gets the acknowledgement, at the account's address or, when
//! no account matched, at the sender's. A rejection, a question or an extension goes where the
//! acknowledgement went.

use lettre::Message;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

use super::{NoticeKind, Sender};
use crate::{
    domain::{AccountStatus, IntakeDoor, TicketStatus},
    env::Env,
    error::AppResult,
    mailer::{MailError, TicketLetter, stored_address},
    models::{notification, ticket, ticket_note},
    services::{accounts, tickets::sealed},
};

/// The message to send for `notice`, or none when its ticket is gone.
pub(super) async fn letter(
    env: Env<'_>,
    sender: Sender<'_>,
    kind: NoticeKind,
    notice: &notification::Model,
) -> AppResult<Option<Result<Message, MailError>>> {
    let Some(ticket_id) = notice.ticket_id else {
        return Ok(None);
    };
    let Some(ticket) = ticket::Entity::find_by_id(ticket_id).one(&env.db.conn).await? else {
        return Ok(None);
    };
    // The requester's address is sealed under the ticket's key: an erased ticket has none.
    let key = sealed::key(env.vault, &env.db.conn, ticket_id).await?;
    let recipient = match (key.as_ref(), notice.recipient.as_deref()) {
        (Some(key), Some(stored)) => Some(key.open(sealed::NOTICE_RECIPIENT, stored)?),
        (None, Some(stored)) if !crate::vault::is_sealed(stored) => Some(stored.to_owned()),
        _ => None,
    };
    let account = match ticket.account_id {
        Some(id) => accounts::find(env, id)
            .await?
            .filter(|a| a.status == AccountStatus::Active),
        None => None,
    };
    // Mail from the app has no Message-ID of the requester's to answer.
    let in_reply_to = (ticket.door != IntakeDoor::App && !ticket.message_id.starts_with("sha256:"))
        .then_some(ticket.message_id.as_str());
    let letter = TicketLetter {
        notice_id: &notice.id,
        reference: &ticket.reference,
        due_at: ticket.due_at,
        in_reply_to,
    };
    let mailer = sender.mailer;
    if kind != NoticeKind::TicketReceived {
        // Where the acknowledgement went: the account's address, else the sender's.
        let to = match (&account, recipient.as_deref()) {
            (Some(account), _) => account.email.as_str(),
            (None, Some(recipient)) => recipient,
            (None, None) => return Ok(None),
        };
        let to = match stored_address(to) {
            Ok(to) => to,
            Err(e) => return Ok(Some(Err(e))),
        };
        let message = match kind {
            NoticeKind::TicketRejected => {
                let reason = ticket.decision_reason.as_deref().unwrap_or_default();
                mailer.ticket_rejected(&to, letter, reason)
            }
            NoticeKind::TicketExtended => {
                let reason = ticket.extension_reason.as_deref().unwrap_or_default();
                mailer.ticket_extended(&to, letter, reason)
            }
            _ => {
                let question = ticket_note::Entity::find()
                    .filter(ticket_note::Column::NoticeId.eq(&notice.id))
                    .one(&env.db.conn)
                    .await?;
                let Some(question) = question else {
                    return Ok(None);
                };
                let question = sealed::open_note(key.as_ref(), question)?;
                mailer.ticket_question(&to, letter, &question.body)
            }
        };
        return Ok(Some(message));
    }
    let message = match account {
        Some(account) if ticket.status == TicketStatus::Open && ticket.verified_at.is_none() => {
            let link = issue_link(env, sender, notice, &ticket).await?;
            let hours = sender.verification_ttl.num_hours();
            stored_address(&account.email)
                .and_then(|to| mailer.ticket_verification(&to, letter, &link, hours))
        }
        Some(account) => {
            stored_address(&account.email).and_then(|to| mailer.ticket_received(&to, letter, true))
        }
        None => {
            let Some(recipient) = recipient.as_deref() else {
                return Ok(None);
            };
            stored_address(recipient).and_then(|to| mailer.ticket_received(&to, letter, false))
        }
    };
    Ok(Some(message))
}

/// Makes the notice's link the ticket's live one and returns it. Running it twice stores and
/// returns the same link (its token derives from the notice).
async fn issue_link(
    env: Env<'_>,
    sender: Sender<'_>,
    notice: &notification::Model,
    ticket: &ticket::Model,
) -> AppResult<String> {
    let token = sender.keys.ticket_verification_token(&notice.id);
    ticket::Entity::update_many()
        .col_expr(ticket::Column::VerificationTokenHash, Expr::value(token.hash().0))
        .col_expr(
            ticket::Column::VerificationExpiresAt,
            Expr::value(notice.created_at + sender.verification_ttl),
        )
        .filter(ticket::Column::Id.eq(ticket.id))
        .filter(ticket::Column::VerifiedAt.is_null())
        .exec(&env.db.conn)
        .await?;
    Ok(sender.mailer.link(&format!("/tickets/verify/{}", token.expose())))
}
