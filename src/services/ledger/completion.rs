//! A deletion's completion: its `account_deleted` entry appended, the request marked
//! `completed` and whatever else must commit with it ([`OnCompletion`]), in one transaction
//! under the ledger lock, with a signed tree head that covers the entry.
//!
//! Group commit: appends are serialised, so workers completing deletions one by one queue on
//! the lock once per deletion. The job that holds the lock therefore also completes up to
//! `BATCH - 1` other deletions that are ready for their entry: purged, with their confirmation
//! sent or found undeliverable, which is exactly when their own ledger job is queued. Those
//! jobs then find their deletion completed and add nothing. This preserves:
//! - one entry and one completion per deletion, the same as its own job writes: every
//!   deletion in a batch is read again under the lock and must still be `purged`;
//! - on SQLite, no deletion reads `completed` before a WAL checkpoint that started after its
//!   purge committed: the others are chosen before this job's checkpoint, from what had
//!   committed by then;
//! - no deletion holds up another: if completing the batch fails, the job completes its own
//!   deletion alone, as before batching.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{
    APPEND_TRIES, Appended, LEDGER_LOCK, append_all,
    events::{AccountDeleted, AuditEvent, Subjects},
    log,
};
use crate::{
    clock::Clock,
    db::Database,
    domain::{Actor, DeletionStatus, datamap::Retention},
    error::{AppError, AppResult},
    keys::Keys,
    models::deletion_request,
    transparency::{LogSigner, receipt::Retained},
};

/// Deletions completed in one transaction, at most.
const BATCH: u64 = 64;

/// A deletion's entry as recorded, with the subjects' pseudonyms it names: what the restore
/// guard journals, handed over so nothing is read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDeletion {
    pub entry: Appended,
    pub vsee_id: String,
    pub email: Option<String>,
}

/// What else must commit with a deletion's completion (the processors' notices), given the
/// transaction, the request's id and the time of completion. Called again if the append is
/// retried.
pub type OnCompletion<'a> = &'a (
        dyn for<'t> Fn(&'t DatabaseTransaction, &'t str, DateTime<Utc>) -> BoxFuture<'t, AppResult<()>>
            + Send
            + Sync
    );

/// Gives a closure the signature [`OnCompletion`] needs (a closure's own inference cannot
/// name the transaction's lifetime).
pub fn on_completion<F>(f: F) -> F
where
    F: for<'t> Fn(&'t DatabaseTransaction, &'t str, DateTime<Utc>) -> BoxFuture<'t, AppResult<()>>
        + Send
        + Sync,
{
    f
}

/// What [`record_deletion`] needs besides the database and the request.
#[derive(Clone, Copy)]
pub struct Recorder<'a> {
    pub keys: &'a Keys,
    pub signer: &'a LogSigner,
    pub clock: &'a dyn Clock,
    /// What a deletion keeps, as the data map declares it.
    pub declared: &'a [Retention],
    pub on_completion: OnCompletion<'a>,
}

/// Appends the deletion's entry and completes the request, with the other deletions ready for
/// theirs (see the module doc). Returns the deletions this call recorded, its own first;
/// empty when its own was recorded already (running it again adds nothing).
pub async fn record_deletion(
    db: &Database,
    recorder: Recorder<'_>,
    request_id: Uuid,
) -> AppResult<Vec<RecordedDeletion>> {
    let own = request_id.to_string();
    let Some(others) = ready(db, &own).await? else {
        // Completed is final: a job whose deletion another batch took needs no checkpoint
        // and no lock.
        return Ok(Vec::new());
    };
    // Before any request can read `completed`: each one's purge and email step committed
    // before this point, so this checkpoint takes whatever they overwrote out of the WAL.
    // Completions running at once share one.
    db.checkpoint().await?;
    match complete(db, recorder, &own, &others).await {
        Err(e) if !others.is_empty() && !matches!(e, AppError::Conflict(_) | AppError::NotFound) => {
            tracing::warn!(request_id = %own, error = %e.detail(), "completing deletions together failed; completing this one alone");
            complete(db, recorder, &own, &[]).await
        }
        outcome => outcome,
    }
}

/// The other deletions whose ledger entry is due, oldest first; `None` when the own one is
/// completed already, which is what most ledger jobs find once batches take theirs: they stop
/// at one read by key. The due ones are read in `requested_at` order from the
/// (status, requested_at) index, so the read stops after the batch however many rows have
/// passed through `purged` before.
async fn ready(db: &Database, own: &str) -> AppResult<Option<Vec<String>>> {
    let status: DeletionStatus = deletion_request::Entity::find_by_id(own)
        .select_only()
        .column(deletion_request::Column::Status)
        .into_tuple()
        .one(&db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    if status == DeletionStatus::Completed {
        return Ok(None);
    }
    let others = deletion_request::Entity::find()
        .select_only()
        .column(deletion_request::Column::Id)
        .filter(deletion_request::Column::Status.eq(DeletionStatus::Purged))
        .filter(
            Condition::any()
                .add(deletion_request::Column::EmailSentAt.is_not_null())
                .add(deletion_request::Column::EmailFailedAt.is_not_null()),
        )
        .filter(deletion_request::Column::Id.ne(own))
        .order_by_asc(deletion_request::Column::RequestedAt)
        .limit(BATCH - 1)
        .into_tuple()
        .all(&db.conn)
        .await?;
    Ok(Some(others))
}

async fn complete(
    db: &Database,
    recorder: Recorder<'_>,
    own: &str,
    others: &[String],
) -> AppResult<Vec<RecordedDeletion>> {
    for _ in 0..APPEND_TRIES {
        let tx = db.begin_write().await?;
        db.serialize_on(&tx, LEDGER_LOCK).await?;
        let request = deletion_request::Entity::find_by_id(own)
            .one(&tx)
            .await?
            .ok_or(AppError::NotFound)?;
        if request.status == DeletionStatus::Completed {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        if !request.status.can_become(DeletionStatus::Completed) {
            return Err(AppError::Conflict(format!(
                "request {own} is {}, not purged: no ledger entry yet",
                request.status.as_str()
            )));
        }
        let now = recorder.clock.now();
        let retained = retained(recorder.declared, now);
        let mut batch = vec![(account_deleted(&request, retained.clone())?, request)];
        for other in still_ready(&tx, others).await? {
            // One whose entry cannot be built is left to its own job, which reports why.
            if let Ok(event) = account_deleted(&other, retained.clone()) {
                batch.push((event, other));
            }
        }
        let events: Vec<AuditEvent> = batch.iter().map(|(event, _)| event.clone()).collect();
        let Some((entries, tree)) = append_all(&tx, recorder.keys, &events, now).await? else {
            tx.rollback().await?;
            continue;
        };
        let ids: Vec<&str> = batch.iter().map(|(_, r)| r.id.as_str()).collect();
        let completed = deletion_request::Entity::update_many()
            .col_expr(
                deletion_request::Column::Status,
                Expr::value(DeletionStatus::Completed),
            )
            .col_expr(deletion_request::Column::CompletedAt, Expr::value(now))
            .filter(deletion_request::Column::Id.is_in(ids.iter().copied()))
            .filter(deletion_request::Column::Status.eq(DeletionStatus::Purged))
            .exec(&tx)
            .await?
            .rows_affected;
        if completed != ids.len() as u64 {
            // One changed status since it was read (a dead job marked it failed): nothing is
            // kept, and the caller tries its own alone.
            tx.rollback().await?;
            return Err(AppError::internal(anyhow::anyhow!(
                "{} of {} deletions changed status while being completed",
                ids.len() as u64 - completed,
                ids.len()
            )));
        }
        for id in &ids {
            (recorder.on_completion)(&tx, id, now).await?;
        }
        log::sign_caught_up(&tx, recorder.signer, tree, now).await?;
        tx.commit().await?;
        if batch.len() > 1 {
            tracing::debug!(request_id = %own, completed = batch.len(), "deletions completed together");
        }
        return Ok(entries
            .into_iter()
            .zip(batch)
            .map(|(entry, (_, request))| RecordedDeletion {
                entry,
                vsee_id: request.subject,
                email: request.subject_email,
            })
            .collect());
    }
    Err(AppError::internal(anyhow::anyhow!(
        "ledger append kept losing the race"
    )))
}

/// Of `ids`, the requests still `purged`, read under the ledger lock.
async fn still_ready(tx: &DatabaseTransaction, ids: &[String]) -> AppResult<Vec<deletion_request::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(deletion_request::Entity::find()
        .filter(deletion_request::Column::Id.is_in(ids.iter().map(String::as_str)))
        .filter(deletion_request::Column::Status.eq(DeletionStatus::Purged))
        .order_by_asc(deletion_request::Column::RequestedAt)
        .all(tx)
        .await?)
}

/// What a deletion recorded at `now` keeps, as the data map declares it.
fn retained(declared: &[Retention], now: DateTime<Utc>) -> Vec<Retained> {
    declared
        .iter()
        .map(|r| Retained {
            store: r.store.clone(),
            why: r.why.clone(),
            until: r.days.map(|d| {
                (now + chrono::Duration::days(i64::from(d)))
                    .format("%Y-%m-%d")
                    .to_string()
            }),
        })
        .collect()
}

/// The deletion's event, from its request.
fn account_deleted(request: &deletion_request::Model, retained: Vec<Retained>) -> AppResult<AuditEvent> {
    let actor = Actor::from_parts(request.actor_kind, request.actor_id).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "request {} has an inconsistent actor",
            request.id
        ))
    })?;
    let rows_removed: BTreeMap<String, i64> = request
        .store_counts
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(AppError::internal)?
        .unwrap_or_default();
    Ok(AuditEvent::AccountDeleted(AccountDeleted {
        request_id: request.id.clone(),
        subjects: Subjects {
            vsee_id: request.subject.clone(),
            email: request.subject_email.clone(),
        },
        actor,
        channel: request.channel,
        requested_at: request.requested_at,
        purge_started_at: request.purge_started_at,
        purged_at: request.purged_at,
        confirmation_sent_at: request.email_sent_at,
        confirmation_not_sent: request
            .email_failed_at
            .map(|_| "undeliverable: the address or the mail server refused it".to_owned()),
        rows_removed,
        retained,
    }))
}
