//! Retention of the ledger itself: entries older than `audit.retention_days` lose what could
//! identify anyone (the body, with its pseudonyms, and the subject index) but keep their MAC,
//! their link and their leaf hash. The chain still links, the tree keeps its roots, and every
//! head and proof given before still verifies; only the pruned bodies cannot be shown again.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};

use super::{LEDGER_LOCK, log};
use crate::{
    db::Database,
    error::AppResult,
    models::{ledger_entry, ledger_subject},
};

/// Entries pruned per transaction: bounds the lock time.
const BATCH: u64 = 1000;

/// Prunes every entry recorded before `cutoff`, a batch a transaction. Returns how many.
pub async fn prune(db: &Database, cutoff: DateTime<Utc>, now: DateTime<Utc>) -> AppResult<u64> {
    // Without the lock first: on most passes nothing is due, and appends need not wait for
    // that to be found. An entry appended meanwhile is recorded now, after the cutoff.
    if past(cutoff, 1).one(&db.conn).await?.is_none() {
        return Ok(0);
    }
    let mut pruned = 0;
    loop {
        let tx = db.begin_write().await?;
        db.serialize_on(&tx, LEDGER_LOCK).await?;
        // The leaves must be in the tree before their bodies go.
        log::catch_up(&tx).await?;
        let seqs: Vec<i64> = past(cutoff, BATCH).all(&tx).await?;
        if seqs.is_empty() {
            tx.rollback().await?;
            return Ok(pruned);
        }
        ledger_subject::Entity::delete_many()
            .filter(ledger_subject::Column::Seq.is_in(seqs.iter().copied()))
            .exec(&tx)
            .await?;
        ledger_entry::Entity::update_many()
            .col_expr(ledger_entry::Column::Body, Expr::value(""))
            .col_expr(ledger_entry::Column::Subject, Expr::value(""))
            .col_expr(ledger_entry::Column::PrunedAt, Expr::value(now))
            .filter(ledger_entry::Column::Seq.is_in(seqs.iter().copied()))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        pruned += seqs.len() as u64;
    }
}

/// The first `limit` unpruned entries recorded before `cutoff`, by `seq` (read through the
/// index of unpruned entries by time: migration 15).
fn past(cutoff: DateTime<Utc>, limit: u64) -> sea_orm::Selector<sea_orm::SelectGetableTuple<i64>> {
    ledger_entry::Entity::find()
        .select_only()
        .column(ledger_entry::Column::Seq)
        .filter(ledger_entry::Column::RecordedAt.lt(cutoff))
        .filter(ledger_entry::Column::PrunedAt.is_null())
        .order_by_asc(ledger_entry::Column::Seq)
        .limit(limit)
        .into_tuple()
}
