//! A ticket as stored: its sender, subject and message, its replies, its notes and the
//! notices to its requester sealed under the ticket's own data key (`vault`), with the
//! sender's blind index beside them for the queue's search. Everything outside this module
//! sees tickets opened. Erasing a ticket destroys its key.

use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, sea_query::Expr};

use crate::{
    domain::Email,
    error::AppResult,
    keys::Keys,
    models::{ticket, ticket_note, ticket_reply},
    vault::{DataKey, KeyOwner, Vault, is_sealed},
};

pub const SENDER: &str = "tickets.sender";
pub const SUBJECT: &str = "tickets.subject";
pub const BODY: &str = "tickets.body";
pub const REPLY_SENDER: &str = "ticket_replies.sender";
pub const REPLY_SUBJECT: &str = "ticket_replies.subject";
pub const REPLY_BODY: &str = "ticket_replies.body";
pub const NOTE_BODY: &str = "ticket_notes.body";
/// A notice to the ticket's requester keeps the address under the ticket's key.
pub const NOTICE_RECIPIENT: &str = "notifications.recipient";

/// What a new ticket says, before it is sealed.
#[derive(Debug, Clone)]
pub struct TicketText {
    pub sender: String,
    pub subject: String,
    pub body: String,
}

/// Seals the text of `row`, just inserted with empty text in `tx`: the ticket's key is
/// made, the text sealed under it and the sender's blind index set, in the same
/// transaction. Returns the ticket opened.
pub async fn seal_new(
    tx: &DatabaseTransaction,
    vault: &Vault,
    row: ticket::Model,
    text: TicketText,
) -> AppResult<ticket::Model> {
    let key = vault
        .create_key(tx, &KeyOwner::Ticket(row.id), row.received_at)
        .await?;
    let index = Email::parse(&text.sender).ok().map(|e| vault.blind_email(&e));
    ticket::Entity::update_many()
        .col_expr(
            ticket::Column::Sender,
            Expr::value(key.seal(SENDER, &text.sender)),
        )
        .col_expr(
            ticket::Column::Subject,
            Expr::value(key.seal(SUBJECT, &text.subject)),
        )
        .col_expr(ticket::Column::Body, Expr::value(key.seal(BODY, &text.body)))
        .col_expr(ticket::Column::SenderIndex, Expr::value(index.clone()))
        .filter(ticket::Column::Id.eq(row.id))
        .exec(tx)
        .await?;
    Ok(ticket::Model {
        sender: text.sender,
        subject: text.subject,
        body: text.body,
        sender_index: index,
        ..row
    })
}

/// The ticket's key, when it has one (a ticket from before encryption has none; an erased
/// one has lost it).
pub async fn key<C: ConnectionTrait>(vault: &Vault, conn: &C, ticket_id: i64) -> AppResult<Option<DataKey>> {
    vault.key(conn, &KeyOwner::Ticket(ticket_id)).await
}

/// Opens a value; without the key, a value from before encryption reads as it is, and a
/// sealed one (its ticket erased meanwhile) reads as nothing.
fn open_with(key: Option<&DataKey>, column: &str, stored: String) -> AppResult<String> {
    match key {
        Some(key) => key.open(column, &stored),
        None if is_sealed(&stored) => Ok(String::new()),
        None => Ok(stored),
    }
}

pub async fn open<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    row: ticket::Model,
) -> AppResult<ticket::Model> {
    let key = key(vault, conn, row.id).await?;
    open_row(key.as_ref(), row)
}

fn open_row(key: Option<&DataKey>, row: ticket::Model) -> AppResult<ticket::Model> {
    Ok(ticket::Model {
        sender: open_with(key, SENDER, row.sender)?,
        subject: open_with(key, SUBJECT, row.subject)?,
        body: open_with(key, BODY, row.body)?,
        ..row
    })
}

pub async fn open_some<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    row: Option<ticket::Model>,
) -> AppResult<Option<ticket::Model>> {
    match row {
        Some(row) => open(vault, conn, row).await.map(Some),
        None => Ok(None),
    }
}

pub async fn open_all<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    rows: Vec<ticket::Model>,
) -> AppResult<Vec<ticket::Model>> {
    // The queue's page: every ticket's key in one statement, not one each.
    let owners: Vec<KeyOwner> = rows.iter().map(|t| KeyOwner::Ticket(t.id)).collect();
    let keys = vault.keys(conn, &owners).await?;
    rows.into_iter()
        .map(|row| {
            let key = keys.get(&KeyOwner::Ticket(row.id).name());
            open_row(key, row)
        })
        .collect()
}

/// A reply's text sealed under its ticket's key, ready to insert.
pub fn seal_reply(
    key: &DataKey,
    reply: ticket_reply::ActiveModel,
    text: &TicketText,
) -> ticket_reply::ActiveModel {
    use sea_orm::Set;
    ticket_reply::ActiveModel {
        sender: Set(key.seal(REPLY_SENDER, &text.sender)),
        subject: Set(key.seal(REPLY_SUBJECT, &text.subject)),
        body: Set(key.seal(REPLY_BODY, &text.body)),
        ..reply
    }
}

pub fn open_reply(key: Option<&DataKey>, row: ticket_reply::Model) -> AppResult<ticket_reply::Model> {
    Ok(ticket_reply::Model {
        sender: open_with(key, REPLY_SENDER, row.sender)?,
        subject: open_with(key, REPLY_SUBJECT, row.subject)?,
        body: open_with(key, REPLY_BODY, row.body)?,
        ..row
    })
}

pub fn open_note(key: Option<&DataKey>, row: ticket_note::Model) -> AppResult<ticket_note::Model> {
    Ok(ticket_note::Model {
        body: open_with(key, NOTE_BODY, row.body)?,
        ..row
    })
}

/// The ledger's pseudonym of a stored ticket's sender, without opening it: its blind index
/// (a ticket from before encryption still has its sender in clear).
pub fn sender_pseudonym(keys: &Keys, row: &ticket::Model) -> String {
    row.sender_index
        .clone()
        .unwrap_or_else(|| keys.pseudonym("email", &row.sender))
}
