//! Every decision on a ticket is a typed ledger event, appended in the decision's own
//! transaction: who (an agent's staff id, or the account holder), what, which ticket, about
//! whom (pseudonyms only).

use sea_orm::{DatabaseTransaction, EntityTrait};

use crate::{
    domain::Actor,
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::{account, ticket},
    services::ledger::{
        self,
        events::{AuditEvent, Subjects, TicketAction, TicketEvent},
    },
};

/// Records `action` on ticket `ticket_id` (read again inside `tx`, as the decision left it).
pub(super) async fn record(
    tx: &DatabaseTransaction,
    env: Env<'_>,
    keys: &Keys,
    ticket_id: i64,
    action: TicketAction,
    actor: Actor,
    request_id: Option<String>,
) -> AppResult<ticket::Model> {
    let ticket = ticket::Entity::find_by_id(ticket_id)
        .one(tx)
        .await?
        .ok_or(AppError::NotFound)?;
    let account = match ticket.account_id {
        Some(id) => account::Entity::find_by_id(id).one(tx).await?,
        None => None,
    };
    let subjects = match &account {
        Some(a) => {
            let (vsee_id, email) = crate::services::accounts::sealed::subjects(keys, a);
            Subjects {
                vsee_id,
                email: Some(email),
            }
        }
        None => Subjects {
            vsee_id: String::new(),
            email: Some(super::sealed::sender_pseudonym(keys, &ticket)),
        },
    };
    // A decision happens once per ticket, keyed by its reference; what can happen again
    // (assigning, a note, a question) gets a key of its own per occurrence.
    let reference = if action.repeatable() {
        let occurrence = uuid::Uuid::new_v4().simple().to_string();
        format!("{}#{}", ticket.reference, &occurrence[..12])
    } else {
        ticket.reference.clone()
    };
    let event = AuditEvent::Ticket(TicketEvent {
        action,
        reference,
        subjects,
        actor,
        request_id,
        due_at: ticket.due_at,
    });
    ledger::record_in(tx, env.db, keys, &event, env.now()).await?;
    super::sealed::open(env.vault, tx, ticket).await
}
