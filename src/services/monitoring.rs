//! What GET /metrics reads from the shared stores at scrape time.

use erasure_jobs::JobQueue;
use sea_orm::{
    EntityTrait, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    domain::DeletionStatus,
    env::Env,
    error::{AppError, AppResult},
    metrics::Snapshot,
    models::deletion_request,
    services::{dead_jobs, outbox, tickets},
};

pub async fn snapshot(env: Env<'_>, queue: &JobQueue) -> AppResult<Snapshot> {
    let counts: Vec<(DeletionStatus, i64)> = deletion_request::Entity::find()
        .select_only()
        .column(deletion_request::Column::Status)
        .column_as(Expr::col(deletion_request::Column::Id).count(), "n")
        .group_by(deletion_request::Column::Status)
        .into_tuple()
        .all(&env.db.conn)
        .await?;
    let deletions_by_status = DeletionStatus::ALL
        .into_iter()
        .map(|status| {
            let n = counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
            (status.as_str(), n)
        })
        .collect();
    let (outbox_waiting, outbox_lag_secs) = outbox::pending(env.db, env.now()).await?;
    let (open, overdue, due_soon) = tickets::deadline_counts(env, chrono::Duration::days(7)).await?;
    Ok(Snapshot {
        deletions_by_status,
        queue_backend: queue.backend_name(),
        queue_waiting: queue
            .backlog()
            .await
            .map_err(|e| AppError::Unavailable(e.into()))?,
        dead_jobs: dead_jobs::count(env.db).await?,
        outbox_waiting,
        outbox_lag_secs,
        tickets: vec![("all", open), ("overdue", overdue), ("due_soon", due_soon)],
        clock: tickets::latest_day(env).await?.map(|day| {
            let n = |v: i32| u64::try_from(v).unwrap_or(0);
            (
                vec![
                    ("all", n(day.open)),
                    ("overdue", n(day.overdue)),
                    ("due_soon", n(day.due_soon)),
                ],
                day.computed_at.timestamp(),
            )
        }),
    })
}
