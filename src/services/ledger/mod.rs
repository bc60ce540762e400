//! The audit ledger: an append-only, hash-chained list of typed events (`events`). Each
//! entry's MAC (keyed by the server key) covers the previous entry's MAC and the entry's
//! canonical body, so altering, removing or reordering any entry breaks verification from
//! there on. Entries name subjects by pseudonym only (every identifier of the subject: the
//! VSee ID and the email), indexed in `ledger_subjects` so a lookup by either finds them.
//!
//! Appends are serialised (SQLite's write lock; a PostgreSQL advisory lock), and the unique
//! `prev_hash` is the guard that the chain can never fork.

mod completion;
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

pub use completion::{OnCompletion, RecordedDeletion, Recorder, on_completion, record_deletion};
pub use export::{export, export_line};
pub use verify::{Broken, Verified, verify};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, EntityTrait, QueryOrder, QuerySelect, Set, sea_query::OnConflict};

use crate::{
    db::Database,
    error::{AppError, AppResult},
    keys::Keys,
    models::{ledger_entry, ledger_subject},
};
use events::AuditEvent;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The advisory lock key under which ledger appends are serialised on PostgreSQL.
pub(crate) const LEDGER_LOCK: i64 = 0x6c65_6467_6572; // "ledger"
/// How often an append that lost the race for the head is tried again.
const APPEND_TRIES: usize = 20;

/// Entry rows one multi-row insert carries (PostgreSQL allows 65535 bind parameters).
const INSERT_CHUNK: usize = 500;

/// Appends `events`, in order, in `tx` (which must serialise appends: see
/// `Database::serialize_on`), indexes their subjects and takes them into the log's tree, which
/// it returns with the entries. Returns `None`, having written nothing that `tx` keeps, when
/// the head moved under us.
async fn append_all(
    tx: &DatabaseTransaction,
    keys: &Keys,
    events: &[AuditEvent],
    now: DateTime<Utc>,
) -> AppResult<Option<(Vec<Appended>, log::Tree)>> {
    let head = ledger_entry::Entity::find()
        .order_by_desc(ledger_entry::Column::Seq)
        .limit(1)
        .one(tx)
        .await?;
    let (mut seq, mut prev_hash) = head.map_or((0, GENESIS_HASH.to_owned()), |h| (h.seq, h.hash));
    let mut rows = Vec::with_capacity(events.len());
    let mut subjects = Vec::new();
    let mut appended = Vec::with_capacity(events.len());
    for event in events {
        seq += 1;
        let body = event.body(seq, &prev_hash, now);
        let body_json = serde_json::to_string(&body).map_err(AppError::internal)?;
        let hash = keys.ledger_mac(&prev_hash, &body_json);
        let facets = body.facets();
        rows.push(ledger_entry::ActiveModel {
            seq: Set(seq),
            request_id: Set(event.key().to_owned()),
            event: Set(event.kind().to_owned()),
            subject: Set(event.subjects().vsee_id.clone()),
            recorded_at: Set(now),
            body: Set(body_json),
            prev_hash: Set(std::mem::replace(&mut prev_hash, hash.clone())),
            hash: Set(hash.clone()),
            channel: Set(facets.channel),
            actor_kind: Set(facets.actor_kind),
            outcome: Set(facets.outcome),
            pruned_at: Set(None),
        });
        subjects.extend(
            event
                .subjects()
                .all()
                .into_iter()
                .map(|pseudonym| ledger_subject::ActiveModel {
                    pseudonym: Set(pseudonym.to_owned()),
                    seq: Set(seq),
                }),
        );
        appended.push(Appended { seq, hash });
    }
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(INSERT_CHUNK).collect();
        match ledger_entry::Entity::insert_many(chunk)
            .exec_without_returning(tx)
            .await
        {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut subjects = subjects.into_iter().peekable();
    while subjects.peek().is_some() {
        let chunk: Vec<_> = subjects.by_ref().take(INSERT_CHUNK).collect();
        ledger_subject::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([ledger_subject::Column::Pseudonym, ledger_subject::Column::Seq])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(tx)
            .await?;
    }
    let tree = log::catch_up(tx).await?;
    Ok(Some((appended, tree)))
}

/// Appends one event: [`append_all`] of one.
async fn append(
    tx: &DatabaseTransaction,
    keys: &Keys,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> AppResult<Option<Appended>> {
    Ok(append_all(tx, keys, std::slice::from_ref(event), now)
        .await?
        .and_then(|(mut appended, _)| appended.pop()))
}

/// The entry an append wrote: its number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: i64,
    pub hash: String,
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
