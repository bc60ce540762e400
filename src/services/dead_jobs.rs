//! Dead jobs: the ones that failed on their last allowed attempt. Listed by `erasure jobs
//! dead`, run again by `erasure jobs retry ID`.

use chrono::{DateTime, Utc};
use erasure_jobs::JobKind;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::{
    db::Database,
    env::Env,
    error::{AppError, AppResult},
    models::dead_job,
    services::{deletion, outbox},
};

/// Records that `kind` for `id` died after `attempts` attempts and, for a step of a deletion,
/// marks its request `failed`, in one transaction. Recording the same death twice (a worker
/// that crashed right after) keeps one row.
pub async fn died(
    db: &Database,
    kind: JobKind,
    id: Uuid,
    attempts: usize,
    error: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let tx = db.begin_write().await?;
    record(&tx, kind, id, attempts, error, now).await?;
    deletion::failure::step_died(&tx, kind, id, error).await?;
    tx.commit().await?;
    Ok(())
}

async fn record<C: ConnectionTrait>(
    conn: &C,
    kind: JobKind,
    request_id: Uuid,
    attempts: usize,
    error: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let row = dead_job::ActiveModel {
        job_kind: Set(kind.as_str().to_owned()),
        request_id: Set(request_id.to_string()),
        attempts: Set(i32::try_from(attempts).unwrap_or(i32::MAX)),
        last_error: Set(error.to_owned()),
        died_at: Set(now),
        retried_at: Set(None),
        ..Default::default()
    };
    dead_job::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([dead_job::Column::JobKind, dead_job::Column::RequestId])
                .update_columns([
                    dead_job::Column::Attempts,
                    dead_job::Column::LastError,
                    dead_job::Column::DiedAt,
                    dead_job::Column::RetriedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Jobs dead and not yet retried, oldest first.
pub async fn list(db: &Database) -> AppResult<Vec<dead_job::Model>> {
    Ok(dead_job::Entity::find()
        .filter(dead_job::Column::RetriedAt.is_null())
        .order_by_asc(dead_job::Column::Id)
        .all(&db.conn)
        .await?)
}

pub async fn count(db: &Database) -> AppResult<u64> {
    Ok(dead_job::Entity::find()
        .filter(dead_job::Column::RetriedAt.is_null())
        .count(&db.conn)
        .await?)
}

/// Runs a dead job again: marks it retried and puts it back on the outbox with a fresh
/// idempotency key, in one transaction. A job that is not dead (unknown id, already retried)
/// is refused and nothing changes.
pub async fn retry(env: Env<'_>, id: i64) -> AppResult<dead_job::Model> {
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let job = dead_job::Entity::find_by_id(id)
        .one(&tx)
        .await?
        .ok_or(AppError::NotFound)?;
    if job.retried_at.is_some() {
        return Err(AppError::Conflict(format!(
            "dead job {id} was already retried; it is listed again if it fails again"
        )));
    }
    let kind = JobKind::parse(&job.job_kind)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("dead job {id} names an unknown job kind")))?;
    let request_id = Uuid::parse_str(&job.request_id).map_err(AppError::internal)?;
    // Compare-and-set: of two retries racing (PostgreSQL reads no lock above), one requeues.
    let marked = dead_job::Entity::update_many()
        .col_expr(dead_job::Column::RetriedAt, Expr::value(now))
        .filter(dead_job::Column::Id.eq(id))
        .filter(dead_job::Column::RetriedAt.is_null())
        .exec(&tx)
        .await?
        .rows_affected;
    if marked != 1 {
        return Err(AppError::Conflict(format!(
            "dead job {id} is being retried already"
        )));
    }
    outbox::requeue(&tx, kind, request_id, now).await?;
    match kind {
        JobKind::ProcessorNotice => crate::services::processors::revived(&tx, request_id).await?,
        JobKind::Export => crate::services::takeout::revived(&tx, request_id).await?,
        _ => {}
    }
    if matches!(kind, JobKind::ConfirmationEmail | JobKind::LedgerEntry) {
        deletion::failure::resume_after_purge(&tx, request_id).await?;
    }
    tx.commit().await?;
    env.wake_relay();
    Ok(job)
}
