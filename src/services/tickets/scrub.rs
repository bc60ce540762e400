//! A ticket is personal data too: its sender, subject and message, its replies and its notes.
//! They are erased with the account the ticket is about (a step of the purge), and for tickets
//! rejected or closed more than `support.retention_days` ago. What stays is the record: the
//! reference, the dates, the decisions and who made them, as the ledger holds them.
//!
//! Their text is sealed under the ticket's key, which scrubbing destroys: the text is then
//! unreadable in every copy (free pages, WAL, backups), not only overwritten here.
//!
//! Invariant: scrubbing is idempotent (a scrubbed ticket matches no filter again), so a purge
//! that resumes, or a sweep that runs on every worker, erases each ticket once.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use crate::{
    domain::TicketStatus,
    env::Env,
    error::AppResult,
    models::{quarantined_mail, ticket, ticket_note, ticket_reply},
    vault::{KeyOwner, Vault},
};

/// What a scrubbed ticket's sender reads as.
pub const ERASED: &str = "(erased)";

/// Erases the tickets about `account_id`, inside the caller's transaction; how many.
pub async fn scrub_for_account<C: ConnectionTrait>(
    conn: &C,
    vault: &Vault,
    account_id: i64,
) -> AppResult<u64> {
    scrub(
        conn,
        vault,
        Condition::all().add(ticket::Column::AccountId.eq(account_id)),
    )
    .await
}

/// Erases tickets rejected or closed before `cutoff`, and quarantined mail received before
/// it; how many tickets.
pub async fn sweep(env: Env<'_>, cutoff: DateTime<Utc>) -> AppResult<u64> {
    let tx = env.db.begin_write().await?;
    let decided_long_ago = Condition::all()
        .add(ticket::Column::Status.is_in([TicketStatus::Rejected, TicketStatus::Closed]))
        .add(ticket::Column::DecidedAt.lt(cutoff));
    let n = scrub(&tx, env.vault, decided_long_ago).await?;
    // Each aged-out message's key goes with it: its sealed bytes are unreadable in every copy.
    let aged_out: Vec<i64> = quarantined_mail::Entity::find()
        .select_only()
        .column(quarantined_mail::Column::Id)
        .filter(quarantined_mail::Column::ReceivedAt.lt(cutoff))
        .into_tuple()
        .all(&tx)
        .await?;
    for id in &aged_out {
        env.vault.destroy(&tx, &KeyOwner::Quarantine(*id)).await?;
    }
    quarantined_mail::Entity::delete_many()
        .filter(quarantined_mail::Column::Id.is_in(aged_out))
        .exec(&tx)
        .await?;
    tx.commit().await?;
    if n > 0 {
        tracing::info!(tickets = n, "decided tickets past their retention erased");
    }
    Ok(n)
}

async fn scrub<C: ConnectionTrait>(conn: &C, vault: &Vault, which: Condition) -> AppResult<u64> {
    let which = which.add(ticket::Column::Sender.ne(ERASED));
    let ids: Vec<i64> = ticket::Entity::find()
        .select_only()
        .column(ticket::Column::Id)
        .filter(which)
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    ticket_reply::Entity::delete_many()
        .filter(ticket_reply::Column::TicketId.is_in(ids.clone()))
        .exec(conn)
        .await?;
    ticket_note::Entity::delete_many()
        .filter(ticket_note::Column::TicketId.is_in(ids.clone()))
        .exec(conn)
        .await?;
    // With each ticket's key goes every sealed copy of its text, wherever it lies.
    for id in &ids {
        vault.destroy(conn, &KeyOwner::Ticket(*id)).await?;
    }
    let n = ticket::Entity::update_many()
        .col_expr(ticket::Column::SenderIndex, Expr::value(Option::<String>::None))
        .col_expr(ticket::Column::Sender, Expr::value(ERASED))
        .col_expr(ticket::Column::Subject, Expr::value(""))
        .col_expr(ticket::Column::Body, Expr::value(""))
        .col_expr(
            ticket::Column::VerificationTokenHash,
            Expr::value(Option::<String>::None),
        )
        .filter(ticket::Column::Id.is_in(ids))
        .exec(conn)
        .await?
        .rows_affected;
    Ok(n)
}
