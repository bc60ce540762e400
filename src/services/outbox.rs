//! The transactional outbox: a job is recorded in the same transaction as the state change
//! that calls for it, and the relay pushes it to the queue afterwards. Nothing is enqueued for
//! a transaction that did not commit, and nothing committed is lost if the process dies.

use chrono::{DateTime, Utc};
use erasure_jobs::{JobKind, JobQueue};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::{
    db::Database,
    error::{AppError, AppResult},
    models::outbox,
};

/// Records that `kind` must run for `request_id`. Recording it twice records it once.
pub async fn add<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    request_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    add_after(conn, kind, request_id, now, None).await
}

/// [`add`], but the relay holds the job back until `not_before` (a deletion's grace period).
pub async fn add_after<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    request_id: Uuid,
    now: DateTime<Utc>,
    not_before: Option<DateTime<Utc>>,
) -> AppResult<()> {
    let row = outbox::ActiveModel {
        job_kind: Set(kind.as_str().to_owned()),
        request_id: Set(request_id.to_string()),
        created_at: Set(now),
        dispatched_at: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        generation: Set(1),
        not_before: Set(not_before),
        attempt: Set(1),
        ..Default::default()
    };
    outbox::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([outbox::Column::JobKind, outbox::Column::RequestId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Pushes up to `limit` undelivered rows to the queue, oldest first, but never more than
/// `max_backlog` waiting jobs per queue: a relay catching up after an outage must not bury the
/// queue (apalis-redis 1.0 fails every fetch at 8,000 due jobs). Returns how many were
/// delivered.
pub async fn relay_batch(
    db: &Database,
    queue: &JobQueue,
    now: DateTime<Utc>,
    limit: u64,
    max_backlog: u64,
) -> AppResult<usize> {
    let backlog = queue.backlog().await.map_err(AppError::internal)?;
    let mut delivered = 0;
    for &kind in JobKind::ALL {
        let room = Ord::min(max_backlog.saturating_sub(backlog.of(kind)), limit);
        if room == 0 {
            continue;
        }
        let rows = outbox::Entity::find()
            .filter(outbox::Column::DispatchedAt.is_null())
            .filter(outbox::Column::JobKind.eq(kind.as_str()))
            .filter(
                outbox::Column::NotBefore
                    .is_null()
                    .or(outbox::Column::NotBefore.lte(now)),
            )
            .order_by_asc(outbox::Column::Id)
            .limit(room)
            .all(&db.conn)
            .await?;
        for row in rows {
            let Ok(request_id) = Uuid::parse_str(&row.request_id) else {
                tracing::error!(
                    outbox_id = row.id,
                    "outbox row names no valid request id; leaving it"
                );
                record_failure(db, row.id, "invalid request id").await?;
                continue;
            };
            let attempt = u32::try_from(row.attempt).unwrap_or(1);
            match queue.enqueue(kind, request_id, row.generation, attempt).await {
                Ok(()) => {
                    // Only the generation just pushed: the job may already have run and put
                    // itself back (a retry, a new generation) before this line, and marking
                    // that one dispatched would lose it.
                    outbox::Entity::update_many()
                        .col_expr(outbox::Column::DispatchedAt, Expr::value(now))
                        .col_expr(
                            outbox::Column::Attempts,
                            Expr::col(outbox::Column::Attempts).add(1),
                        )
                        .filter(outbox::Column::Id.eq(row.id))
                        .filter(outbox::Column::Generation.eq(row.generation))
                        .exec(&db.conn)
                        .await?;
                    delivered += 1;
                }
                Err(e) => {
                    tracing::warn!(outbox_id = row.id, error = %e, "could not enqueue; will retry");
                    record_failure(db, row.id, &e.to_string()).await?;
                    // The queue is down: retrying the rest now would fail the same way.
                    return Ok(delivered);
                }
            }
        }
    }
    Ok(delivered)
}

/// Takes back `kind` for `request_id` if the relay has not pushed it yet; returns whether it
/// had not (a cancelled deletion's purge, held back by its grace period).
pub async fn withdraw<C: ConnectionTrait>(conn: &C, kind: JobKind, request_id: Uuid) -> AppResult<bool> {
    Ok(outbox::Entity::delete_many()
        .filter(outbox::Column::JobKind.eq(kind.as_str()))
        .filter(outbox::Column::RequestId.eq(request_id.to_string()))
        .filter(outbox::Column::DispatchedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected
        > 0)
}

/// Rows waiting to be relayed, and how long the oldest due one has been due (the relay's
/// lag; a retry waiting out its backoff is not late).
pub async fn pending(db: &Database, now: DateTime<Utc>) -> AppResult<(u64, f64)> {
    let waiting = outbox::Entity::find()
        .filter(outbox::Column::DispatchedAt.is_null())
        .count(&db.conn)
        .await?;
    let oldest = outbox::Entity::find()
        .filter(outbox::Column::DispatchedAt.is_null())
        .filter(
            outbox::Column::NotBefore
                .is_null()
                .or(outbox::Column::NotBefore.lte(now)),
        )
        .order_by_asc(outbox::Column::Id)
        .one(&db.conn)
        .await?;
    let lag = oldest.map_or(0.0, |row| {
        let due = row.not_before.unwrap_or(row.created_at);
        (now - due).as_seconds_f64().max(0.0)
    });
    Ok((waiting, lag))
}

/// Removes rows relayed before `cutoff`: once the job is on the queue the row has done its work.
pub async fn vacuum(db: &Database, cutoff: DateTime<Utc>) -> AppResult<u64> {
    Ok(outbox::Entity::delete_many()
        .filter(outbox::Column::DispatchedAt.lt(cutoff))
        .exec(&db.conn)
        .await?
        .rows_affected)
}

/// Puts a job back on the outbox with a fresh idempotency key (the old one is spent), to run
/// as attempt `attempt` no earlier than `not_before`.
async fn put_back<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    id: Uuid,
    attempt: u32,
    not_before: Option<DateTime<Utc>>,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    add(conn, kind, id, now).await?;
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::DispatchedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            outbox::Column::Generation,
            Expr::col(outbox::Column::Generation).add(1),
        )
        .col_expr(
            outbox::Column::Attempt,
            Expr::value(i32::try_from(attempt).unwrap_or(i32::MAX)),
        )
        .col_expr(outbox::Column::NotBefore, Expr::value(not_before))
        .col_expr(outbox::Column::LastError, Expr::value(error.map(str::to_owned)))
        .filter(outbox::Column::JobKind.eq(kind.as_str()))
        .filter(outbox::Column::RequestId.eq(id.to_string()))
        .exec(conn)
        .await?;
    Ok(())
}

/// A dead job run again by hand: a fresh count of attempts, at once.
pub async fn requeue<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    put_back(conn, kind, id, 1, None, None, now).await
}

/// A step the queue lost (see `watchdog`): sent again as the same attempt, at once.
pub async fn redeliver<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    id: Uuid,
    attempt: u32,
    now: DateTime<Utc>,
) -> AppResult<()> {
    put_back(
        conn,
        kind,
        id,
        attempt,
        None,
        Some("sent again: the queue lost it"),
        now,
    )
    .await
}

/// A job that arrived before it was due: the same attempt, pushed again at `not_before`.
pub async fn hold_until(
    db: &Database,
    kind: JobKind,
    id: Uuid,
    attempt: u32,
    not_before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    put_back(&db.conn, kind, id, attempt, Some(not_before), None, now).await
}

/// A failed attempt's retry: a new job, pushed by the relay once `not_before` has passed.
/// The failed job is acknowledged, so no worker sleeps through a backoff holding a slot.
pub async fn reschedule<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    id: Uuid,
    next_attempt: u32,
    not_before: DateTime<Utc>,
    error: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    put_back(conn, kind, id, next_attempt, Some(not_before), Some(error), now).await
}

async fn record_failure(db: &Database, id: i64, error: &str) -> AppResult<()> {
    outbox::Entity::update_many()
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .col_expr(outbox::Column::LastError, Expr::value(error.to_owned()))
        .filter(outbox::Column::Id.eq(id))
        .exec(&db.conn)
        .await?;
    Ok(())
}
