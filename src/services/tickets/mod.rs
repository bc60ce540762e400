//! Tickets for agents: the queue, filtered and searched, and one ticket (here), and the
//! decisions on them (`decide`); what requesters do themselves (`requester`).
//!
//! The queue is sorted by due date, soonest first: the order in which the law wants answers.

mod audit;
mod clock;
mod decide;
mod merge;
mod requester;
mod scrub;
pub mod sealed;
mod work;

pub use clock::{DUE_SOON_DAYS, latest_day, record_day};
pub use decide::{Approval, approve, cancel_deletion, reject, verify};
pub use merge::merge;
pub use requester::{
    ASKED_IN_APP, AppDoor, CONFIRMED_BY_OWNER, by_link, confirm_by_owner, latest_for_account, link_is_live,
    request_in_app,
};
pub use scrub::{ERASED, scrub_for_account, sweep};
pub use work::{MAX_EXTENSION_DAYS, add_note, ask, assign, close, extend, link, notes};

use rand::RngCore;

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

use crate::{
    domain::{TicketReference, TicketStatus},
    env::Env,
    error::{AppError, AppResult},
    models::ticket,
};

/// Whose tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignee {
    Staff(i64),
    Nobody,
}

/// What the queue shows; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    pub verified: Option<bool>,
    /// Open and past the due date (or not).
    pub overdue: Option<bool>,
    /// Found in the reference, the sender or the subject, case-insensitively.
    pub q: Option<String>,
    pub assignee: Option<Assignee>,
    pub limit: u64,
    pub offset: u64,
}

pub async fn list(env: Env<'_>, filter: &TicketFilter) -> AppResult<Vec<ticket::Model>> {
    let now = env.now();
    let mut cond = Condition::all();
    if let Some(status) = filter.status {
        cond = cond.add(ticket::Column::Status.eq(status));
    }
    if let Some(verified) = filter.verified {
        cond = cond.add(if verified {
            ticket::Column::VerifiedAt.is_not_null()
        } else {
            ticket::Column::VerifiedAt.is_null()
        });
    }
    if let Some(overdue) = filter.overdue {
        let is_overdue = Condition::all()
            .add(ticket::Column::Status.eq(TicketStatus::Open))
            .add(ticket::Column::DueAt.lt(now));
        cond = cond.add(if overdue { is_overdue } else { is_overdue.not() });
    }
    match filter.assignee {
        Some(Assignee::Staff(id)) => cond = cond.add(ticket::Column::AssigneeId.eq(id)),
        Some(Assignee::Nobody) => cond = cond.add(ticket::Column::AssigneeId.is_null()),
        None => {}
    }
    // The sender and subject are sealed: a search matches part of the reference, or the
    // sender's whole address (by its blind index).
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = format!("%{}%", escape_like(&q.to_lowercase()));
        let mut any = Condition::any().add(
            Expr::expr(Func::lower(Expr::col(ticket::Column::Reference)))
                .like(LikeExpr::new(pattern).escape('\\')),
        );
        if let Ok(email) = crate::domain::Email::parse(q) {
            any = any.add(ticket::Column::SenderIndex.eq(env.vault.blind_email(&email)));
        }
        cond = cond.add(any);
    }
    let rows = ticket::Entity::find()
        .filter(cond)
        .order_by_asc(ticket::Column::DueAt)
        .order_by_asc(ticket::Column::Id)
        .limit(filter.limit)
        .offset(filter.offset)
        .all(&env.db.conn)
        .await?;
    sealed::open_all(env.vault, &env.db.conn, rows).await
}

/// Open tickets: all of them, those past due, and those due within `soon` (not yet past):
/// what the queue shows above the list, and /metrics.
pub async fn deadline_counts(env: Env<'_>, soon: chrono::Duration) -> AppResult<(u64, u64, u64)> {
    let now = env.now();
    let open = || ticket::Entity::find().filter(ticket::Column::Status.eq(TicketStatus::Open));
    let all = open().count(&env.db.conn).await?;
    let overdue = open()
        .filter(ticket::Column::DueAt.lt(now))
        .count(&env.db.conn)
        .await?;
    let due_soon = open()
        .filter(ticket::Column::DueAt.gte(now))
        .filter(ticket::Column::DueAt.lt(now + soon))
        .count(&env.db.conn)
        .await?;
    Ok((all, overdue, due_soon))
}

pub async fn find(env: Env<'_>, id: i64) -> AppResult<ticket::Model> {
    let row = ticket::Entity::find_by_id(id)
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    sealed::open(env.vault, &env.db.conn, row).await
}

/// 40 random bits: a collision among open tickets is unlikely, and the unique index refuses
/// one (the insert then fails rather than mixing two tickets).
pub(crate) fn new_reference() -> TicketReference {
    let mut bits = [0u8; 5];
    rand::rng().fill_bytes(&mut bits);
    TicketReference::from_random(bits)
}

pub(crate) use super::text::{reason_text, typed_text};

/// Moves an open ticket to `status` (rejected or closed) by `agent_id` with `reason`, inside
/// `tx`: one conditional update, so of two agents deciding at once one wins and the other is
/// told. `false` when it was not open any more.
pub(crate) async fn end_open_ticket(
    tx: &sea_orm::DatabaseTransaction,
    now: chrono::DateTime<chrono::Utc>,
    ticket_id: i64,
    status: TicketStatus,
    agent_id: i64,
    reason: String,
) -> AppResult<bool> {
    let updated = ticket::Entity::update_many()
        .col_expr(ticket::Column::Status, Expr::value(status))
        .col_expr(ticket::Column::DecidedAt, Expr::value(now))
        .col_expr(ticket::Column::DecidedBy, Expr::value(agent_id))
        .col_expr(ticket::Column::DecisionReason, Expr::value(reason))
        .filter(ticket::Column::Id.eq(ticket_id))
        .filter(ticket::Column::Status.eq(TicketStatus::Open))
        .exec(tx)
        .await?
        .rows_affected;
    Ok(updated == 1)
}

/// The conflict a change meets when another agent changed the ticket between its read and its
/// conditional update.
pub(crate) fn changed_meanwhile() -> AppError {
    AppError::Conflict("the ticket changed meanwhile; look at it again".into())
}

/// The conflict a decision on a decided ticket meets.
pub(crate) fn already_decided(ticket: &ticket::Model) -> AppError {
    AppError::Conflict(format!("the ticket is already {}", ticket.status.as_str()))
}

/// `%`, `_` and the escape itself match themselves in a search.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn wildcards_are_searched_for_as_themselves() {
        assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
        assert_eq!(escape_like("plain"), "plain");
    }
}
