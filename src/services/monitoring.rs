//! What GET /metrics reads from the shared stores at scrape time.

use sea_orm::{
    EntityTrait, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    domain::DeletionStatus,
    error::{AppError, AppResult},
    metrics::Snapshot,
    models::deletion_request,
    services::{dead_jobs, outbox},
    state::AppState,
};

pub async fn snapshot(state: &AppState) -> AppResult<Snapshot> {
    let counts: Vec<(DeletionStatus, i64)> = deletion_request::Entity::find()
        .select_only()
        .column(deletion_request::Column::Status)
        .column_as(Expr::col(deletion_request::Column::Id).count(), "n")
        .group_by(deletion_request::Column::Status)
        .into_tuple()
        .all(&state.db.conn)
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
    let (outbox_waiting, outbox_lag_secs) = outbox::pending(&state.db, state.clock.now()).await?;
    Ok(Snapshot {
        deletions_by_status,
        queue_backend: state.queue.backend_name(),
        queue_waiting: state
            .queue
            .backlog()
            .await
            .map_err(|e| AppError::Unavailable(e.into()))?,
        dead_jobs: dead_jobs::count(&state.db).await?,
        outbox_waiting,
        outbox_lag_secs,
    })
}
