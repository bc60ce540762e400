//! The purge engine: walks the data map for one deletion request, removing the account's rows
//! in bounded chunks. Each chunk and its count commit together, so a purge that crashes or
//! fails part-way resumes where it stopped and counts nothing twice. The account's data key
//! goes with its row, in one transaction: whatever copy of its data survives anywhere is
//! unreadable from then on.

use sea_orm::sea_query::ExprTrait;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use erasure_jobs::JobKind;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set, Value,
    sea_query::{Alias, Expr, OnConflict, Query},
};
use uuid::Uuid;

use crate::{
    datamap::{ACCOUNTS_TABLE, Action, PurgePlan, StoreRule},
    domain::DeletionStatus,
    env::Env,
    error::{AppError, AppResult},
    models::{deletion_request, purge_progress},
    services::{outbox, reuse, tickets},
    vault::KeyOwner,
};

/// What a purge run ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeOutcome {
    /// This run finished the purge.
    Purged(BTreeMap<String, i64>),
    /// An earlier run had already finished it; nothing was done.
    AlreadyPurged,
    /// Cancelled within its grace period; nothing was done.
    Cancelled,
    /// Its grace period runs until then (a job pushed early, by a clock running ahead);
    /// nothing was done.
    NotDue(DateTime<Utc>),
}

const ACCOUNT_STEP: &str = "accounts";

pub async fn run(env: Env<'_>, plan: &PurgePlan, request_id: Uuid) -> AppResult<PurgeOutcome> {
    let (claimed, request) = claim(env, request_id).await?;
    if !claimed {
        return Ok(match (request.status, request.purge_after) {
            (DeletionStatus::Cancelled, _) => PurgeOutcome::Cancelled,
            (DeletionStatus::Scheduled, Some(at)) => PurgeOutcome::NotDue(at),
            _ => PurgeOutcome::AlreadyPurged,
        });
    }
    let account_id = request.account_id;
    let rid = request_id.to_string();
    let chunk = plan.chunk_size;

    // The steps an earlier run finished, read once. A step a racing run finishes after this
    // read is run again here and finds nothing left: its count grows by 0.
    let finished = finished_steps(env, &rid).await?;
    for rule in plan.map.stores.iter().filter(|r| !finished.contains(&r.step())) {
        purge_store(env, &rid, account_id, rule, chunk).await?;
    }
    for store in &plan.map.files {
        if !finished.contains(&files_step(&store.name)) {
            purge_files(env, &plan.data_dir, &rid, account_id, &store.name, &store.dir).await?;
        }
    }
    purge_tickets(env, &rid, account_id).await?;
    purge_account_row(env, &request, plan.reuse_cooloff).await?;

    let counts = store_counts(env, &rid).await?;
    finish(env, request_id, &counts).await?;
    Ok(PurgeOutcome::Purged(counts))
}

/// Compare-and-set into `purging`, once any grace period is over. Returns whether this run
/// claimed it, and the request as it is now.
async fn claim(env: Env<'_>, request_id: Uuid) -> AppResult<(bool, deletion_request::Model)> {
    let now = env.now();
    let rid = request_id.to_string();
    let claimed = deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::Status,
            Expr::value(DeletionStatus::Purging),
        )
        .col_expr(
            deletion_request::Column::PurgeStartedAt,
            Expr::col(deletion_request::Column::PurgeStartedAt).if_null(now),
        )
        .col_expr(
            deletion_request::Column::Attempts,
            Expr::col(deletion_request::Column::Attempts).add(1),
        )
        .filter(deletion_request::Column::Id.eq(&rid))
        .filter(
            deletion_request::Column::Status.is_in(DeletionStatus::that_can_become(DeletionStatus::Purging)),
        )
        .filter(
            deletion_request::Column::PurgeAfter
                .is_null()
                .or(deletion_request::Column::PurgeAfter.lte(now)),
        )
        .exec(&env.db.conn)
        .await?
        .rows_affected;
    let request = deletion_request::Entity::find_by_id(&rid)
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((claimed == 1, request))
}

async fn finished_steps(env: Env<'_>, rid: &str) -> AppResult<BTreeSet<String>> {
    let steps: Vec<String> = purge_progress::Entity::find()
        .select_only()
        .column(purge_progress::Column::Step)
        .filter(purge_progress::Column::RequestId.eq(rid))
        .filter(purge_progress::Column::CompletedAt.is_not_null())
        .into_tuple()
        .all(&env.db.conn)
        .await?;
    Ok(steps.into_iter().collect())
}

fn files_step(name: &str) -> String {
    format!("files.{name}")
}

async fn progress(env: Env<'_>, rid: &str, step: &str) -> AppResult<Option<purge_progress::Model>> {
    Ok(
        purge_progress::Entity::find_by_id((rid.to_owned(), step.to_owned()))
            .one(&env.db.conn)
            .await?,
    )
}

/// Adds `removed` to a step's count, marking it complete when `done`, inside `conn`'s
/// transaction.
async fn record<C: ConnectionTrait>(
    conn: &C,
    rid: &str,
    step: &str,
    removed: i64,
    done_at: Option<DateTime<Utc>>,
) -> AppResult<()> {
    let row = purge_progress::ActiveModel {
        request_id: Set(rid.to_owned()),
        step: Set(step.to_owned()),
        rows_removed: Set(removed),
        completed_at: Set(done_at),
    };
    purge_progress::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([purge_progress::Column::RequestId, purge_progress::Column::Step])
                .value(
                    purge_progress::Column::RowsRemoved,
                    Expr::col((purge_progress::Entity, purge_progress::Column::RowsRemoved)).add(removed),
                )
                .update_column(purge_progress::Column::CompletedAt)
                .to_owned(),
        )
        .exec(conn)
        .await?;
    Ok(())
}

async fn purge_store(
    env: Env<'_>,
    rid: &str,
    account_id: i64,
    rule: &StoreRule,
    chunk: u64,
) -> AppResult<()> {
    let step = rule.step();
    let table = Alias::new(rule.table.as_str());
    let column = Alias::new(rule.column.as_str());
    // `id IN (SELECT id ... LIMIT n)`: one bounded statement that SQLite and PostgreSQL both run.
    // The outer statement repeats `column = account`: a PostgreSQL transaction that waited
    // for a racing purge re-checks only the outer condition on the rows it then finds, and
    // must skip the ones the other purge already nulled, or it would count them twice.
    let batch = Query::select()
        .column(Alias::new("id"))
        .from(table.clone())
        .and_where(Expr::col(column.clone()).eq(account_id))
        .limit(chunk)
        .to_owned();
    loop {
        let tx = env.db.begin_write().await?;
        let affected = match rule.action {
            Action::Delete => {
                let stmt = Query::delete()
                    .from_table(table.clone())
                    .and_where(Expr::col(column.clone()).eq(account_id))
                    .and_where(Expr::col(Alias::new("id")).in_subquery(batch.clone()))
                    .to_owned();
                tx.execute(&stmt).await?.rows_affected()
            }
            Action::Nullify => {
                let stmt = Query::update()
                    .table(table.clone())
                    .value(column.clone(), Value::BigInt(None))
                    .and_where(Expr::col(column.clone()).eq(account_id))
                    .and_where(Expr::col(Alias::new("id")).in_subquery(batch.clone()))
                    .to_owned();
                tx.execute(&stmt).await?.rows_affected()
            }
        };
        // A short chunk is not proof of the end: a racing purge may have taken rows from under
        // this one's batch. Done only when no row of the account is left to see.
        let done = affected < chunk && {
            let left = Query::select()
                .column(Alias::new("id"))
                .from(table.clone())
                .and_where(Expr::col(column.clone()).eq(account_id))
                .limit(1)
                .to_owned();
            tx.query_one(&left).await?.is_none()
        };
        let now = env.now();
        record(
            &tx,
            rid,
            &step,
            i64::try_from(affected).unwrap_or(i64::MAX),
            done.then_some(now),
        )
        .await?;
        tx.commit().await?;
        if done {
            return Ok(());
        }
    }
}

/// The account's support tickets keep their record and lose their personal content
/// (`tickets::scrub_for_account`); counted as the `tickets` step when there were any.
async fn purge_tickets(env: Env<'_>, rid: &str, account_id: i64) -> AppResult<()> {
    let tx = env.db.begin_write().await?;
    let scrubbed = tickets::scrub_for_account(&tx, env.vault, account_id).await?;
    if scrubbed > 0 {
        let n = i64::try_from(scrubbed).unwrap_or(i64::MAX);
        record(&tx, rid, "tickets", n, Some(env.now())).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn purge_files(
    env: Env<'_>,
    data_dir: &std::path::Path,
    rid: &str,
    account_id: i64,
    name: &str,
    dir: &str,
) -> AppResult<()> {
    let step = files_step(name);
    let dir = data_dir.join(dir);
    let prefix = format!("{account_id}.");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return record(&env.db.conn, rid, &step, 0, Some(env.now())).await;
        }
        Err(e) => return Err(AppError::internal(e)),
    };
    for entry in entries {
        let entry = entry.map_err(AppError::internal)?;
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        // Remove and count under the write lock, as the table chunks do: a purge racing this
        // one either waits and then finds the file gone (counting nothing), or removed it first.
        let tx = env.db.begin_write().await?;
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                record(&tx, rid, &step, 1, None).await?;
                tx.commit().await?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => tx.rollback().await?,
            Err(e) => return Err(AppError::internal(e)),
        }
    }
    record(&env.db.conn, rid, &step, 0, Some(env.now())).await
}

/// Removes the account row, and starts its identifiers' cool-off in the same transaction.
async fn purge_account_row(
    env: Env<'_>,
    request: &deletion_request::Model,
    reuse_cooloff: chrono::Duration,
) -> AppResult<()> {
    let (rid, account_id) = (request.id.as_str(), request.account_id);
    if progress(env, rid, ACCOUNT_STEP)
        .await?
        .is_some_and(|p| p.completed_at.is_some())
    {
        return Ok(());
    }
    let tx = env.db.begin_write().await?;
    let stmt = Query::delete()
        .from_table(Alias::new(ACCOUNTS_TABLE))
        .and_where(Expr::col(Alias::new("id")).eq(account_id))
        .to_owned();
    // A foreign key still pointing here (a store the map missed) makes this fail loudly.
    let removed = tx.execute(&stmt).await?.rows_affected();
    // The last step: with the key goes every sealed copy of the account's data, in this
    // database's free pages and WAL, in its backups, and in files a step above missed.
    env.vault.destroy(&tx, &KeyOwner::Account(account_id)).await?;
    if reuse_cooloff > chrono::Duration::zero() {
        let now = env.now();
        let pseudonyms = [Some(request.subject.as_str()), request.subject_email.as_deref()];
        let pseudonyms: Vec<&str> = pseudonyms.into_iter().flatten().collect();
        reuse::hold(&tx, &pseudonyms, now + reuse_cooloff, now).await?;
    }
    record(
        &tx,
        rid,
        ACCOUNT_STEP,
        i64::try_from(removed).unwrap_or(0),
        Some(env.now()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Rows removed per store (table, or file store), summed over the rules that touch it.
pub async fn store_counts(env: Env<'_>, rid: &str) -> AppResult<BTreeMap<String, i64>> {
    let rows = purge_progress::Entity::find()
        .filter(purge_progress::Column::RequestId.eq(rid))
        .all(&env.db.conn)
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

async fn finish(env: Env<'_>, request_id: Uuid, counts: &BTreeMap<String, i64>) -> AppResult<()> {
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let json = serde_json::to_string(counts).map_err(AppError::internal)?;
    deletion_request::Entity::update_many()
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
        .filter(deletion_request::Column::Id.eq(request_id.to_string()))
        .filter(
            deletion_request::Column::Status.is_in(DeletionStatus::that_can_become(DeletionStatus::Purged)),
        )
        .exec(&tx)
        .await?;
    outbox::add(&tx, JobKind::ConfirmationEmail, request_id, now).await?;
    tx.commit().await?;
    env.wake_relay();
    env.db.checkpoint().await?;
    Ok(())
}
