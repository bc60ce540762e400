//! The purge's last transaction.

use std::collections::BTreeMap;

use erasure_jobs::JobKind;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::progress::{Counted, record, store_counts};
use crate::{
    datamap::ACCOUNTS_TABLE,
    domain::DeletionStatus,
    env::Env,
    error::{AppError, AppResult},
    models::deletion_request,
    services::{outbox, reuse, tickets},
    vault::KeyOwner,
};

/// The step that counts the account's own row.
const ACCOUNT_STEP: &str = "accounts";

/// The last transaction: the account's tickets lose their personal content, the account row
/// and its data key go, its identifiers' cool-off starts, the file steps are marked complete,
/// and the request becomes `purged` with its counts (only one run gets that far) and its
/// confirmation email queued. `None` when another run finished first.
pub(super) async fn finish(
    env: Env<'_>,
    request_id: Uuid,
    request: &deletion_request::Model,
    reuse_cooloff: chrono::Duration,
    files_done: &[String],
) -> AppResult<Option<BTreeMap<String, i64>>> {
    let (rid, account_id) = (request.id.as_str(), request.account_id);
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let mut counted: Vec<Counted> = files_done
        .iter()
        .map(|step| Counted {
            step: step.clone(),
            removed: 0,
            done: true,
        })
        .collect();
    let scrubbed = tickets::scrub_for_account(&tx, env.vault, account_id).await?;
    if scrubbed > 0 {
        counted.push(Counted {
            step: "tickets".to_owned(),
            removed: scrubbed,
            done: true,
        });
    }
    let stmt = Query::delete()
        .from_table(Alias::new(ACCOUNTS_TABLE))
        .and_where(Expr::col(Alias::new("id")).eq(account_id))
        .to_owned();
    // A foreign key still pointing here (a store the map missed) makes this fail loudly.
    let removed = tx.execute(&stmt).await?.rows_affected();
    // With the key goes every sealed copy of the account's data, in this database's free
    // pages and WAL, in its backups, and in files a step above missed.
    env.vault.destroy(&tx, &KeyOwner::Account(account_id)).await?;
    if reuse_cooloff > chrono::Duration::zero() {
        let pseudonyms = [Some(request.subject.as_str()), request.subject_email.as_deref()];
        let pseudonyms: Vec<&str> = pseudonyms.into_iter().flatten().collect();
        reuse::hold(&tx, &pseudonyms, now + reuse_cooloff, now).await?;
    }
    counted.push(Counted {
        step: ACCOUNT_STEP.to_owned(),
        removed,
        done: true,
    });
    record(&tx, rid, &counted, now).await?;
    let counts = store_counts(&tx, rid).await?;
    let json = serde_json::to_string(&counts).map_err(AppError::internal)?;
    // Last: a racing run's last transaction has waited on the rows above (PostgreSQL) or on
    // the write lock (SQLite), and it finds the request purged here and rolls back.
    let purged = deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::Status,
            Expr::value(DeletionStatus::Purged),
        )
        .col_expr(deletion_request::Column::PurgedAt, Expr::value(now))
        .col_expr(deletion_request::Column::StoreCounts, Expr::value(json))
        .col_expr(
            deletion_request::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(deletion_request::Column::Id.eq(rid))
        .filter(
            deletion_request::Column::Status.is_in(DeletionStatus::that_can_become(DeletionStatus::Purged)),
        )
        .exec(&tx)
        .await?
        .rows_affected;
    if purged != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    outbox::add(&tx, JobKind::ConfirmationEmail, request_id, now).await?;
    tx.commit().await?;
    Ok(Some(counts))
}
