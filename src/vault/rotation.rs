//! Key rotation: once per epoch (`keys.epoch_days`), every live data key is wrapped again
//! under the new epoch's key, and then the old epoch keys are destroyed. A backup taken
//! before then holds data keys wrapped only under destroyed epoch keys: it cannot reveal an
//! account deleted since.
//!
//! Invariant: an epoch key is destroyed only when no row is wrapped under it, and only once
//! the newer key has existed for `settle` (real time: [`SETTLE`] in the service), so a data
//! key stored by a process that read the key store just before the newer key appeared has
//! been moved by a later sweep. A crash anywhere leaves every live key readable: the next run
//! starts the sweep again.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};

use super::{Vault, wrap_place};
use crate::{
    db::Database,
    error::{AppError, AppResult},
    models::data_key,
};

/// How long a new epoch key exists before the old ones may go: far longer than any
/// transaction that stores a data key.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(60);
/// Keys moved per transaction.
const CHUNK: u64 = 500;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub epoch: u64,
    pub rewrapped: u64,
    pub destroyed: Vec<u64>,
    /// Old epoch keys kept because the newer one is younger than [`SETTLE`]; the next run
    /// destroys them.
    pub settling: Vec<u64>,
}

/// Moves every data key under `now`'s epoch and destroys the older epoch keys. Idempotent:
/// a second run in the same epoch finds nothing to do.
pub async fn rotate(
    db: &Database,
    vault: &Vault,
    now: DateTime<Utc>,
    settle: std::time::Duration,
) -> AppResult<RotationReport> {
    let epoch = vault.epoch_at(now);
    let newest = vault.store().epochs().map_err(AppError::internal)?;
    // A store already ahead (a clock that ran fast) keeps its newest epoch.
    let target = newest.last().copied().unwrap_or(epoch).max(epoch);
    let new_key = vault.store().create(target).map_err(AppError::internal)?;
    let target_db = i64::try_from(target).map_err(AppError::internal)?;
    let mut report = RotationReport {
        epoch: target,
        ..RotationReport::default()
    };
    loop {
        let tx = db.begin_write().await?;
        let rows = data_key::Entity::find()
            .filter(data_key::Column::Epoch.ne(target_db))
            .order_by_asc(data_key::Column::Owner)
            .limit(CHUNK)
            .all(&tx)
            .await?;
        if rows.is_empty() {
            tx.commit().await?;
            break;
        }
        for row in &rows {
            let data = vault.unwrap_row(row)?;
            // Only if it is still as read: a purge that destroyed it meanwhile wins.
            data_key::Entity::update_many()
                .col_expr(
                    data_key::Column::Wrapped,
                    Expr::value(new_key.seal(&wrap_place(&row.owner), data.key.expose())),
                )
                .col_expr(data_key::Column::Epoch, Expr::value(target_db))
                .filter(data_key::Column::Owner.eq(&row.owner))
                .filter(data_key::Column::Epoch.eq(row.epoch))
                .exec(&tx)
                .await?;
        }
        tx.commit().await?;
        report.rewrapped += rows.len() as u64;
    }
    let old: Vec<u64> = newest.into_iter().filter(|e| *e < target).collect();
    if old.is_empty() {
        return Ok(report);
    }
    let age = vault.store().age(target).map_err(AppError::internal)?;
    if age.is_none_or(|age| age < settle) {
        report.settling = old;
        return Ok(report);
    }
    // The sweep again, now that no process can still be wrapping under an old key.
    let left = data_key::Entity::find()
        .filter(data_key::Column::Epoch.ne(target_db))
        .count(&db.conn)
        .await?;
    if left > 0 {
        report.settling = old;
        return Ok(report);
    }
    compact(db).await?;
    for epoch in old {
        vault.store().destroy(epoch).map_err(AppError::internal)?;
        report.destroyed.push(epoch);
    }
    vault.forget_epoch_keys();
    Ok(report)
}

/// Rewrites the wrapped-keys table so the bytes of the old wrappings do not linger in its
/// free space: PostgreSQL's VACUUM FULL writes a new heap and drops the old file; SQLite
/// zeroes freed space already (secure_delete), and the checkpoint clears the WAL.
async fn compact(db: &Database) -> AppResult<()> {
    match db.backend() {
        DbBackend::Postgres => {
            db.conn.execute_unprepared("VACUUM FULL data_keys").await?;
            db.conn.execute_unprepared("CHECKPOINT").await.ok();
        }
        _ => db.checkpoint().await?,
    }
    Ok(())
}
