//! The audit ledger: an append-only, hash-chained list of what was deleted. Each entry's MAC
//! (keyed by the server key) covers the previous entry's MAC and the entry's canonical body,
//! so altering, removing or reordering any entry breaks verification from there on.
//! Entries name subjects by pseudonym only: no email, name or VSee ID in clear.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::DeletionStatus,
    error::{AppError, AppResult},
    models::{deletion_request, ledger_entry},
    state::AppState,
};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub const EVENT_ACCOUNT_DELETED: &str = "account_deleted";
/// The advisory lock key under which ledger appends are serialised on PostgreSQL.
const LEDGER_LOCK: i64 = 0x6c65_6467_6572; // "ledger"

/// The canonical body: field order is fixed by the struct, counts are sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    pub seq: i64,
    pub event: String,
    pub request_id: String,
    pub subject: String,
    pub actor: String,
    pub channel: String,
    pub requested_at: String,
    pub purged_at: Option<String>,
    pub confirmation_sent_at: Option<String>,
    pub recorded_at: String,
    pub rows_removed: BTreeMap<String, i64>,
    pub prev_hash: String,
    /// Why the confirmation could not be sent, when it could not (the address or the mail
    /// server refused it for good). Absent when it was sent, so entries written before this
    /// field existed read and verify unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_not_sent: Option<String>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Appends the deletion's entry and completes the request, in one transaction. Running it
/// again for the same request adds nothing.
pub async fn record_deletion(state: &AppState, request_id: Uuid) -> AppResult<()> {
    let rid = request_id.to_string();
    // Appenders are serialised below; the unique prev_hash stays the guard that the chain can
    // never fork, and a clash is simply retried on the new head.
    for _ in 0..20 {
        let tx = state.db.begin_write().await?;
        // One appender at a time: SQLite's IMMEDIATE transaction already holds the write
        // lock; PostgreSQL takes a transaction-scoped advisory lock.
        state.db.serialize_on(&tx, LEDGER_LOCK).await?;
        let request = deletion_request::Entity::find_by_id(&rid)
            .one(&tx)
            .await?
            .ok_or(AppError::NotFound)?;
        if request.status == DeletionStatus::Completed.as_str() {
            tx.rollback().await?;
            return Ok(());
        }
        if !DeletionStatus::parse(&request.status)?.can_become(DeletionStatus::Completed) {
            return Err(AppError::Conflict(format!(
                "request {rid} is {}, not purged: no ledger entry yet",
                request.status
            )));
        }
        let head = ledger_entry::Entity::find()
            .order_by_desc(ledger_entry::Column::Seq)
            .limit(1)
            .one(&tx)
            .await?;
        let (prev_seq, prev_hash) = head.map_or((0, GENESIS_HASH.to_owned()), |h| (h.seq, h.hash));
        let now = state.clock.now();
        let body = EntryBody {
            seq: prev_seq + 1,
            event: EVENT_ACCOUNT_DELETED.to_owned(),
            request_id: rid.clone(),
            subject: request.subject.clone(),
            actor: request.actor.clone(),
            channel: request.channel.clone(),
            requested_at: ts(request.requested_at),
            purged_at: request.purged_at.map(ts),
            confirmation_sent_at: request.email_sent_at.map(ts),
            recorded_at: ts(now),
            rows_removed: request
                .store_counts
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(AppError::internal)?
                .unwrap_or_default(),
            prev_hash: prev_hash.clone(),
            confirmation_not_sent: request
                .email_failed_at
                .map(|_| "undeliverable: the address or the mail server refused it".to_owned()),
        };
        let body_json = serde_json::to_string(&body).map_err(AppError::internal)?;
        let hash = state.keys.ledger_mac(&prev_hash, &body_json);

        let inserted = ledger_entry::ActiveModel {
            seq: Set(body.seq),
            request_id: Set(rid.clone()),
            event: Set(body.event.clone()),
            subject: Set(body.subject.clone()),
            recorded_at: Set(now),
            body: Set(body_json),
            prev_hash: Set(prev_hash),
            hash: Set(hash),
        }
        .insert(&tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
                tx.rollback().await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        deletion_request::Entity::update_many()
            .col_expr(
                deletion_request::Column::Status,
                Expr::value(DeletionStatus::Completed.as_str()),
            )
            .col_expr(deletion_request::Column::CompletedAt, Expr::value(now))
            .filter(deletion_request::Column::Id.eq(&rid))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        state.db.checkpoint().await?;
        return Ok(());
    }
    Err(AppError::internal(anyhow::anyhow!(
        "ledger append kept losing the race"
    )))
}

/// The first entry that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger entry {seq} does not verify: {reason}")]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

const PAGE: u64 = 1000;

/// Walks the whole chain in order. `Ok(n)`: all n entries verify.
pub async fn verify(state: &AppState) -> AppResult<Result<u64, Broken>> {
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut count = 0u64;
    loop {
        let page = ledger_entry::Entity::find()
            .filter(ledger_entry::Column::Seq.gte(expected_seq))
            .order_by_asc(ledger_entry::Column::Seq)
            .limit(PAGE)
            .all(&state.db.conn)
            .await?;
        let full_page = page.len() as u64 == PAGE;
        for entry in &page {
            if let Err(reason) = check_entry(state, entry, expected_seq, &prev_hash) {
                return Ok(Err(Broken {
                    seq: entry.seq,
                    reason,
                }));
            }
            prev_hash = entry.hash.clone();
            expected_seq += 1;
            count += 1;
        }
        if !full_page {
            break;
        }
    }
    // The chain cannot show that its newest entries were cut off; the requests can: every
    // completed deletion must have its entry.
    let completed = deletion_request::Entity::find()
        .filter(deletion_request::Column::Status.eq(DeletionStatus::Completed.as_str()))
        .count(&state.db.conn)
        .await?;
    if completed > count {
        return Ok(Err(Broken {
            seq: i64::try_from(count).unwrap_or(i64::MAX) + 1,
            reason: format!(
                "{completed} deletions are completed but the ledger holds {count} entries: entries were removed"
            ),
        }));
    }
    Ok(Ok(count))
}

fn check_entry(
    state: &AppState,
    e: &ledger_entry::Model,
    expected_seq: i64,
    prev_hash: &str,
) -> Result<(), String> {
    if e.seq != expected_seq {
        return Err(format!("expected entry {expected_seq} next: an entry is missing"));
    }
    if e.prev_hash != prev_hash {
        return Err("it does not link to the entry before it".into());
    }
    if state.keys.ledger_mac(&e.prev_hash, &e.body) != e.hash {
        return Err("its content was altered (MAC mismatch)".into());
    }
    let body: EntryBody =
        serde_json::from_str(&e.body).map_err(|err| format!("its body is unreadable: {err}"))?;
    if body.seq != e.seq
        || body.request_id != e.request_id
        || body.subject != e.subject
        || body.event != e.event
        || body.prev_hash != e.prev_hash
    {
        return Err("its indexed columns disagree with its signed body".into());
    }
    Ok(())
}

/// One exported line: the signed body plus the chain links, as NDJSON.
pub fn export_line(e: &ledger_entry::Model) -> String {
    format!(
        "{{\"seq\":{},\"prev_hash\":\"{}\",\"hash\":\"{}\",\"entry\":{}}}",
        e.seq, e.prev_hash, e.hash, e.body
    )
}

/// Streams every entry in order to `out`, one page in memory at a time.
pub async fn export(state: &AppState, out: &mut dyn std::io::Write) -> AppResult<u64> {
    let mut after = 0i64;
    let mut count = 0;
    loop {
        let page = ledger_entry::Entity::find()
            .filter(ledger_entry::Column::Seq.gt(after))
            .order_by_asc(ledger_entry::Column::Seq)
            .limit(PAGE)
            .all(&state.db.conn)
            .await?;
        let Some(last) = page.last() else {
            return Ok(count);
        };
        after = last.seq;
        for e in &page {
            writeln!(out, "{}", export_line(e)).map_err(AppError::internal)?;
            count += 1;
        }
    }
}
