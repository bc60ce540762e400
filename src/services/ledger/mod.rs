//! The audit ledger: an append-only, hash-chained list of typed events (`events`). Each
//! entry's MAC (keyed by the server key) covers the previous entry's MAC and the entry's
//! canonical body, so altering, removing or reordering any entry breaks verification from
//! there on. Entries name subjects by pseudonym only (every identifier of the subject: the
//! VSee ID and the email), indexed in `ledger_subjects` so a lookup by either finds them.
//!
//! Appends are serialised (SQLite's write lock; a PostgreSQL advisory lock), and the unique
//! `prev_hash` is the guard that the chain can never fork.

pub mod events;
pub mod export;
mod facets;
mod lifecycle;
pub mod log;
pub mod proofs;
pub mod prune;
mod reads;
pub mod search;
pub mod timeline;
pub mod tree;
mod verify;

pub use export::{export, export_line};
pub use verify::{Broken, Verified, verify};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use crate::{
    clock::Clock,
    db::Database,
    domain::{Actor, DeletionStatus},
    error::{AppError, AppResult},
    keys::Keys,
    models::{deletion_request, ledger_entry, ledger_subject},
};
use events::{AccountDeleted, AuditEvent, Subjects};
use futures::future::BoxFuture;

use crate::{domain::datamap::Retention, transparency::receipt::Retained};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The advisory lock key under which ledger appends are serialised on PostgreSQL.
pub(crate) const LEDGER_LOCK: i64 = 0x6c65_6467_6572; // "ledger"
/// How often an append that lost the race for the head is tried again.
const APPEND_TRIES: usize = 20;

/// Appends `event` in `tx` (which must serialise appends: see `Database::serialize_on`), and
/// indexes its subjects. Returns false, writing nothing, when the head moved under us.
async fn append(
    tx: &DatabaseTransaction,
    keys: &Keys,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> AppResult<Option<Appended>> {
    let head = ledger_entry::Entity::find()
        .order_by_desc(ledger_entry::Column::Seq)
        .limit(1)
        .one(tx)
        .await?;
    let (prev_seq, prev_hash) = head.map_or((0, GENESIS_HASH.to_owned()), |h| (h.seq, h.hash));
    let body = event.body(prev_seq + 1, &prev_hash, now);
    let body_json = serde_json::to_string(&body).map_err(AppError::internal)?;
    let hash = keys.ledger_mac(&prev_hash, &body_json);
    let facets = body.facets();
    let inserted = ledger_entry::ActiveModel {
        seq: Set(body.seq),
        request_id: Set(event.key().to_owned()),
        event: Set(event.kind().to_owned()),
        subject: Set(event.subjects().vsee_id.clone()),
        recorded_at: Set(now),
        body: Set(body_json),
        prev_hash: Set(prev_hash),
        hash: Set(hash.clone()),
        channel: Set(facets.channel),
        actor_kind: Set(facets.actor_kind),
        outcome: Set(facets.outcome),
        pruned_at: Set(None),
    }
    .insert(tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    }
    for pseudonym in event.subjects().all() {
        ledger_subject::Entity::insert(ledger_subject::ActiveModel {
            pseudonym: Set(pseudonym.to_owned()),
            seq: Set(body.seq),
        })
        .on_conflict(
            OnConflict::columns([ledger_subject::Column::Pseudonym, ledger_subject::Column::Seq])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(tx)
        .await?;
    }
    log::catch_up(tx).await?;
    Ok(Some(Appended { seq: body.seq, hash }))
}

/// The entry an append wrote: its number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: i64,
    pub hash: String,
}

/// A deletion's entry as recorded, with the subjects' pseudonyms it names: what the restore
/// guard journals, handed over so nothing is read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDeletion {
    pub entry: Appended,
    pub vsee_id: String,
    pub email: Option<String>,
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

/// Appends `event` inside the caller's write transaction, so a decision and its entry commit
/// together (or neither does). The ledger lock serialises it with every other append.
pub async fn record_in(
    tx: &DatabaseTransaction,
    db: &Database,
    keys: &Keys,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> AppResult<()> {
    db.serialize_on(tx, LEDGER_LOCK).await?;
    if append(tx, keys, event, now).await?.is_some() {
        Ok(())
    } else {
        Err(AppError::Conflict(format!(
            "{} of {} is recorded already",
            event.kind(),
            event.key()
        )))
    }
}

/// Appends `event` in a transaction of its own: for what happens outside any other write (a
/// staff member's read of the ledger).
pub async fn record(db: &Database, keys: &Keys, event: &AuditEvent, now: DateTime<Utc>) -> AppResult<()> {
    for _ in 0..APPEND_TRIES {
        let tx = db.begin_write().await?;
        db.serialize_on(&tx, LEDGER_LOCK).await?;
        if append(&tx, keys, event, now).await?.is_some() {
            tx.commit().await?;
            return Ok(());
        }
        tx.rollback().await?;
    }
    Err(AppError::internal(anyhow::anyhow!(
        "ledger append kept losing the race"
    )))
}

/// What else must commit with a deletion's completion (the processors' notices), given the
/// transaction and the time of completion. Called again if the append is retried.
pub type OnCompletion<'a> = &'a (
        dyn for<'t> Fn(&'t DatabaseTransaction, DateTime<Utc>) -> BoxFuture<'t, AppResult<()>> + Send + Sync
    );

/// Gives a closure the signature [`OnCompletion`] needs (a closure's own inference cannot
/// name the transaction's lifetime).
pub fn on_completion<F>(f: F) -> F
where
    F: for<'t> Fn(&'t DatabaseTransaction, DateTime<Utc>) -> BoxFuture<'t, AppResult<()>> + Send + Sync,
{
    f
}

/// Appends the deletion's entry and completes the request, in one transaction with whatever
/// `on_completion` writes. Running it again for the same request adds nothing.
pub async fn record_deletion(
    db: &Database,
    keys: &Keys,
    clock: &dyn Clock,
    declared: &[Retention],
    request_id: Uuid,
    on_completion: OnCompletion<'_>,
) -> AppResult<Option<RecordedDeletion>> {
    let rid = request_id.to_string();
    // Before the request can read `completed`: the purge and the email step committed before
    // this job was queued, so this checkpoint takes whatever they overwrote out of the WAL.
    // Completions running at once share one.
    db.checkpoint().await?;
    for _ in 0..APPEND_TRIES {
        let tx = db.begin_write().await?;
        db.serialize_on(&tx, LEDGER_LOCK).await?;
        let request = deletion_request::Entity::find_by_id(&rid)
            .one(&tx)
            .await?
            .ok_or(AppError::NotFound)?;
        if request.status == DeletionStatus::Completed {
            tx.rollback().await?;
            return Ok(None);
        }
        if !request.status.can_become(DeletionStatus::Completed) {
            return Err(AppError::Conflict(format!(
                "request {rid} is {}, not purged: no ledger entry yet",
                request.status.as_str()
            )));
        }
        let now = clock.now();
        let Some(entry) = append(
            &tx,
            keys,
            &account_deleted(&request, retained(declared, now))?,
            now,
        )
        .await?
        else {
            tx.rollback().await?;
            continue;
        };
        deletion_request::Entity::update_many()
            .col_expr(
                deletion_request::Column::Status,
                Expr::value(DeletionStatus::Completed),
            )
            .col_expr(deletion_request::Column::CompletedAt, Expr::value(now))
            .filter(deletion_request::Column::Id.eq(&rid))
            .exec(&tx)
            .await?;
        on_completion(&tx, now).await?;
        tx.commit().await?;
        return Ok(Some(RecordedDeletion {
            entry,
            vsee_id: request.subject,
            email: request.subject_email,
        }));
    }
    Err(AppError::internal(anyhow::anyhow!(
        "ledger append kept losing the race"
    )))
}
