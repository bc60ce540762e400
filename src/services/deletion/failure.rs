//! A deletion whose step died: marked `failed` where everyone looks (the receipt, the metrics,
//! `erasure jobs dead`), and moved on again when the operator runs the step again.

use erasure_jobs::JobKind;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use crate::{domain::DeletionStatus, error::AppResult, models::deletion_request};

/// Keeps the error of a failed attempt on the request, for the operator.
pub async fn note_error<C: ConnectionTrait>(conn: &C, request_id: Uuid, error: &str) -> AppResult<()> {
    deletion_request::Entity::update_many()
        .col_expr(deletion_request::Column::LastError, Expr::value(error.to_owned()))
        .filter(deletion_request::Column::Id.eq(request_id.to_string()))
        .exec(conn)
        .await?;
    Ok(())
}

/// The `kind` step of a request died: the request is `failed`, if it still stands at that
/// step (a purge job dying after another run finished the purge changes nothing).
pub async fn step_died<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    request_id: Uuid,
    error: &str,
) -> AppResult<()> {
    let mut update = deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::Status,
            Expr::value(DeletionStatus::Failed),
        )
        .col_expr(deletion_request::Column::LastError, Expr::value(error.to_owned()))
        .filter(deletion_request::Column::Id.eq(request_id.to_string()));
    update = match kind {
        JobKind::Purge => update.filter(
            deletion_request::Column::Status.is_in([DeletionStatus::Pending, DeletionStatus::Purging]),
        ),
        JobKind::ConfirmationEmail => update
            .filter(deletion_request::Column::Status.eq(DeletionStatus::Purged))
            .filter(deletion_request::Column::EmailSentAt.is_null())
            .filter(deletion_request::Column::EmailFailedAt.is_null()),
        JobKind::LedgerEntry => update.filter(deletion_request::Column::Status.eq(DeletionStatus::Purged)),
        JobKind::Notification | JobKind::ProcessorNotice | JobKind::Export | JobKind::BulkDeletion => {
            return Ok(());
        }
    };
    update.exec(conn).await?;
    Ok(())
}

/// A dead confirmation or ledger job is run again: its request goes back to `purged` (only
/// if the purge had finished), so the step can complete it.
pub async fn resume_after_purge<C: ConnectionTrait>(conn: &C, request_id: Uuid) -> AppResult<()> {
    deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::Status,
            Expr::value(DeletionStatus::Purged),
        )
        .filter(deletion_request::Column::Id.eq(request_id.to_string()))
        .filter(deletion_request::Column::Status.eq(DeletionStatus::Failed))
        .filter(deletion_request::Column::PurgedAt.is_not_null())
        .exec(conn)
        .await?;
    Ok(())
}
