//! The transactional outbox: a job is recorded in the same transaction as the state change
//! that calls for it, and the relay pushes it to the queue afterwards. Nothing is enqueued for
//! a transaction that did not commit, and nothing committed is lost if the process dies.

use chrono::{DateTime, Utc};
use erasure_jobs::{JobKind, JobQueue};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::{db::Database, error::AppResult, models::outbox};

/// Records that `kind` must run for `request_id`. Recording it twice records it once.
pub async fn add<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    request_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = outbox::ActiveModel {
        job_kind: Set(kind.as_str().to_owned()),
        request_id: Set(request_id.to_string()),
        created_at: Set(now),
        dispatched_at: Set(None),
        attempts: Set(0),
        last_error: Set(None),
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

/// Pushes up to `limit` undelivered rows to the queue; returns how many were delivered.
pub async fn relay_batch(
    db: &Database,
    queue: &JobQueue,
    now: DateTime<Utc>,
    limit: u64,
) -> AppResult<usize> {
    let rows = outbox::Entity::find()
        .filter(outbox::Column::DispatchedAt.is_null())
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
        .all(&db.conn)
        .await?;
    let mut delivered = 0;
    for row in rows {
        let (Some(kind), Ok(request_id)) = (JobKind::parse(&row.job_kind), Uuid::parse_str(&row.request_id))
        else {
            tracing::error!(outbox_id = row.id, "outbox row names an unknown job; leaving it");
            record_failure(db, row.id, "unknown job kind or request id").await?;
            continue;
        };
        match queue.enqueue(kind, request_id).await {
            Ok(()) => {
                outbox::Entity::update_many()
                    .col_expr(outbox::Column::DispatchedAt, Expr::value(now))
                    .col_expr(
                        outbox::Column::Attempts,
                        Expr::col(outbox::Column::Attempts).add(1),
                    )
                    .filter(outbox::Column::Id.eq(row.id))
                    .exec(&db.conn)
                    .await?;
                delivered += 1;
            }
            Err(e) => {
                tracing::warn!(outbox_id = row.id, error = %e, "could not enqueue; will retry");
                record_failure(db, row.id, &e.to_string()).await?;
                // The queue is down: retrying the rest now would fail the same way.
                break;
            }
        }
    }
    Ok(delivered)
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
