//! No deletion stalls because a queue lost its job. A queue can lose a job the outbox already
//! handed over: a Redis restarted without persistence, a job the backend gave up on while the
//! database was down. The outbox row still says which step was sent and when; if that step has
//! not completed long after (`queue.stall_after_secs`), the step is sent again, under a new
//! idempotency key and with the same attempt count. Every job is idempotent, so a step that
//! was only slow runs twice to the same end.

use chrono::{DateTime, Duration, Utc};
use erasure_jobs::JobKind;
use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::{
    db::Database,
    domain::DeletionStatus,
    error::{AppError, AppResult},
    services::outbox,
};

/// Steps sent before `now - stall_after` (and after `now - horizon`, the rows the vacuum
/// keeps) whose work is not done.
const STALLED: &str = "
SELECT o.job_kind, o.request_id, o.attempt FROM outbox o
JOIN deletion_requests r ON r.id = o.request_id
WHERE o.dispatched_at IS NOT NULL AND o.dispatched_at < $1 AND o.dispatched_at > $2 AND (
     (o.job_kind = 'purge' AND r.status IN ($3, $4, $6))
  OR (o.job_kind = 'confirmation_email' AND r.status = $5
      AND r.email_sent_at IS NULL AND r.email_failed_at IS NULL)
  OR (o.job_kind = 'ledger_entry' AND r.status = $5
      AND (r.email_sent_at IS NOT NULL OR r.email_failed_at IS NOT NULL)))
UNION ALL
SELECT o.job_kind, o.request_id, o.attempt FROM outbox o
JOIN notifications n ON n.id = o.request_id
WHERE o.job_kind = 'notification' AND o.dispatched_at IS NOT NULL
  AND o.dispatched_at < $1 AND o.dispatched_at > $2 AND n.sent_at IS NULL
UNION ALL
SELECT o.job_kind, o.request_id, o.attempt FROM outbox o
JOIN processor_deliveries d ON d.id = o.request_id
WHERE o.job_kind = 'processor_notice' AND o.dispatched_at IS NOT NULL
  AND o.dispatched_at < $1 AND o.dispatched_at > $2
  AND d.acknowledged_at IS NULL AND d.dead_at IS NULL
UNION ALL
SELECT o.job_kind, o.request_id, o.attempt FROM outbox o
JOIN data_exports x ON x.id = o.request_id
WHERE o.job_kind = 'export' AND o.dispatched_at IS NOT NULL
  AND o.dispatched_at < $1 AND o.dispatched_at > $2 AND x.status IN ('queued', 'running')
UNION ALL
SELECT o.job_kind, o.request_id, o.attempt FROM outbox o
JOIN bulk_runs b ON b.id = o.request_id
WHERE o.job_kind = 'bulk_deletion' AND o.dispatched_at IS NOT NULL
  AND o.dispatched_at < $1 AND o.dispatched_at > $2 AND b.finished_at IS NULL
LIMIT 500";

/// SQLite numbers its parameters `?1`; PostgreSQL `$1`.
fn for_backend(sql: &str, backend: DbBackend) -> String {
    match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    }
}

/// Sends stalled steps again; returns how many.
pub async fn redeliver_stalled(
    db: &Database,
    now: DateTime<Utc>,
    stall_after: Duration,
    horizon: Duration,
) -> AppResult<u64> {
    let backend = db.backend();
    let values: Vec<Value> = vec![
        (now - stall_after).into(),
        (now - horizon).into(),
        DeletionStatus::Pending.into(),
        DeletionStatus::Purging.into(),
        DeletionStatus::Purged.into(),
        // Pushed once its grace period was over, and lost before it claimed the request.
        DeletionStatus::Scheduled.into(),
    ];
    let rows = db
        .conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            for_backend(STALLED, backend),
            values,
        ))
        .await?;
    let mut sent = 0;
    for row in rows {
        let kind: String = row.try_get_by_index(0)?;
        let id: String = row.try_get_by_index(1)?;
        let attempt: i32 = row.try_get_by_index(2)?;
        let (Some(kind), Ok(id)) = (JobKind::parse(&kind), Uuid::parse_str(&id)) else {
            return Err(AppError::internal(anyhow::anyhow!(
                "outbox row names job {kind} of {id}"
            )));
        };
        let attempt = u32::try_from(attempt).unwrap_or(1);
        outbox::redeliver(&db.conn, kind, id, attempt, now).await?;
        tracing::warn!(%id, job = kind.as_str(), "step sent long ago and not done: sending it again");
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_gets_numbered_question_marks() {
        assert_eq!(
            for_backend("a = $1 AND b = $12", DbBackend::Sqlite),
            "a = ?1 AND b = ?12"
        );
        assert_eq!(for_backend("a = $1", DbBackend::Postgres), "a = $1");
    }
}
