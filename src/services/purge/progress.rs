//! A purge's counts: one row per step (a rule of the data map, or a file store) and request,
//! added to in the transaction that removed what it counts, so a resumed purge counts
//! nothing twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    sea_query::{Alias, Expr, ExprTrait, OnConflict},
};

use crate::{error::AppResult, models::purge_progress};

/// What one step removed in one chunk, and whether that was its last.
pub(super) struct Counted {
    pub(super) step: String,
    pub(super) removed: u64,
    pub(super) done: bool,
}

/// Adds each step's `removed` to its count, marking the step complete when `done`, inside
/// `conn`'s transaction: one statement for the whole chunk.
pub(super) async fn record<C: ConnectionTrait>(
    conn: &C,
    rid: &str,
    counted: &[Counted],
    now: DateTime<Utc>,
) -> AppResult<()> {
    if counted.is_empty() {
        return Ok(());
    }
    let rows = counted.iter().map(|c| purge_progress::ActiveModel {
        request_id: Set(rid.to_owned()),
        step: Set(c.step.clone()),
        rows_removed: Set(i64::try_from(c.removed).unwrap_or(i64::MAX)),
        completed_at: Set(c.done.then_some(now)),
    });
    let progress = || Expr::col((purge_progress::Entity, purge_progress::Column::RowsRemoved));
    let excluded = |column: &str| Expr::col((Alias::new("excluded"), Alias::new(column)));
    let completed = || Expr::col((purge_progress::Entity, purge_progress::Column::CompletedAt));
    purge_progress::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([purge_progress::Column::RequestId, purge_progress::Column::Step])
                .value(
                    purge_progress::Column::RowsRemoved,
                    progress().add(excluded("rows_removed")),
                )
                // A step once complete stays complete.
                .value(
                    purge_progress::Column::CompletedAt,
                    Expr::expr(excluded("completed_at")).if_null(completed()),
                )
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Rows removed per store (table, or file store), summed over the rules that touch it.
pub(super) async fn store_counts<C: ConnectionTrait>(
    conn: &C,
    rid: &str,
) -> AppResult<BTreeMap<String, i64>> {
    let rows = purge_progress::Entity::find()
        .filter(purge_progress::Column::RequestId.eq(rid))
        .all(conn)
        .await?;
    let mut counts = BTreeMap::new();
    for row in rows {
        let store = match row.step.split_once('.') {
            Some(("files", name)) => name.to_owned(),
            Some((table, _column)) => table.to_owned(),
            None => row.step.clone(),
        };
        *counts.entry(store).or_insert(0) += row.rows_removed;
    }
    Ok(counts)
}
