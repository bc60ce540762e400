//! The purge engine: walks the data map for one deletion request, removing the account's rows
//! in bounded chunks. Each chunk and its counts commit together, so a purge that crashes or
//! fails part-way resumes where it stopped and counts nothing twice. A chunk is at most
//! `chunk_size` rows across the map's rules, so a typical account's rows go in one
//! transaction. The account's data key goes with its row, and the request becomes `purged`,
//! in one last transaction: whatever copy of its data survives anywhere is unreadable from
//! then on.
//!
//! No WAL checkpoint here: the ledger step checkpoints before it completes the request
//! (`ledger::record_deletion`), which always follows this purge's commit.

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

    // The steps an earlier run finished, read once (the first claim has none to read). A step
    // a racing run finishes after this read is run again here and finds nothing left: its
    // count grows by 0.
    let finished = if request.attempts > 1 {
        finished_steps(env, &rid).await?
    } else {
        BTreeSet::new()
    };
    let rules: Vec<&StoreRule> = plan
        .map
        .stores
        .iter()
        .filter(|r| !finished.contains(&r.step()))
        .collect();
    purge_stores(env, &rid, account_id, &rules, plan.chunk_size).await?;
    let mut files_done = Vec::new();
    for store in &plan.map.files {
        let step = files_step(&store.name);
        if !finished.contains(&step) {
            purge_files(env, &plan.data_dir.join(&store.dir), &rid, account_id, &step).await?;
            files_done.push(step);
        }
    }
    let Some(counts) = finish(env, request_id, &request, plan.reuse_cooloff, &files_done).await? else {
        return Ok(PurgeOutcome::AlreadyPurged);
    };
    env.wake_relay();
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
        .exec_with_returning(&env.db.conn)
        .await?;
    if let Some(request) = claimed.into_iter().next() {
        return Ok((true, request));
    }
    let request = deletion_request::Entity::find_by_id(&rid)
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((false, request))
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

/// What one step removed in one chunk, and whether that was its last.
struct Counted {
    step: String,
    removed: u64,
    done: bool,
}

/// Adds each step's `removed` to its count, marking the step complete when `done`, inside
/// `conn`'s transaction: one statement for the whole chunk.
async fn record<C: ConnectionTrait>(
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

/// The map's rules in order, in transactions of at most `chunk` rows across rules: a rule
/// whose rows are all gone leaves the rest of the chunk to the next one.
async fn purge_stores(
    env: Env<'_>,
    rid: &str,
    account_id: i64,
    rules: &[&StoreRule],
    chunk: u64,
) -> AppResult<()> {
    let mut next = 0;
    while next < rules.len() {
        let tx = env.db.begin_write().await?;
        let mut budget = chunk;
        let mut counted = Vec::new();
        while let Some(rule) = rules.get(next) {
            let limit = budget;
            let removed = std::cmp::Ord::min(remove_chunk(&tx, rule, account_id, limit).await?, limit);
            budget = limit - removed;
            let done = removed < limit && nothing_left(env, &tx, rule, account_id).await?;
            counted.push(Counted {
                step: rule.step(),
                removed,
                done,
            });
            if !done {
                break;
            }
            next += 1;
        }
        record(&tx, rid, &counted, env.now()).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Removes (or unlinks) at most `limit` of the account's rows under one rule.
async fn remove_chunk<C: ConnectionTrait>(
    conn: &C,
    rule: &StoreRule,
    account_id: i64,
    limit: u64,
) -> AppResult<u64> {
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
        .limit(limit)
        .to_owned();
    let affected = match rule.action {
        Action::Delete => {
            let stmt = Query::delete()
                .from_table(table)
                .and_where(Expr::col(column.clone()).eq(account_id))
                .and_where(Expr::col(Alias::new("id")).in_subquery(batch))
                .to_owned();
            conn.execute(&stmt).await?.rows_affected()
        }
        Action::Nullify => {
            let stmt = Query::update()
                .table(table)
                .value(column.clone(), Value::BigInt(None))
                .and_where(Expr::col(column).eq(account_id))
                .and_where(Expr::col(Alias::new("id")).in_subquery(batch))
                .to_owned();
            conn.execute(&stmt).await?.rows_affected()
        }
    };
    Ok(affected)
}

/// After a short chunk: is the rule finished? On SQLite the transaction has held the write
/// lock since BEGIN, so the chunk saw every row there was and a short one is the end. On
/// PostgreSQL a racing purge may have taken rows from under this one's batch, so a short
/// chunk is not proof: done only when no row of the account is left to see.
async fn nothing_left<C: ConnectionTrait>(
    env: Env<'_>,
    conn: &C,
    rule: &StoreRule,
    account_id: i64,
) -> AppResult<bool> {
    if env.db.backend() == sea_orm::DbBackend::Sqlite {
        return Ok(true);
    }
    let left = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new(rule.table.as_str()))
        .and_where(Expr::col(Alias::new(rule.column.as_str())).eq(account_id))
        .limit(1)
        .to_owned();
    Ok(conn.query_one(&left).await?.is_none())
}

/// Removes the account's files from `dir`, each counted in the transaction that removes it.
/// The step is marked complete by [`finish`].
async fn purge_files(
    env: Env<'_>,
    dir: &std::path::Path,
    rid: &str,
    account_id: i64,
    step: &str,
) -> AppResult<()> {
    let prefix = format!("{account_id}.");
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
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
                let one = Counted {
                    step: step.to_owned(),
                    removed: 1,
                    done: false,
                };
                record(&tx, rid, &[one], env.now()).await?;
                tx.commit().await?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => tx.rollback().await?,
            Err(e) => return Err(AppError::internal(e)),
        }
    }
    Ok(())
}

/// The last transaction: the account's tickets lose their personal content, the account row
/// and its data key go, its identifiers' cool-off starts, the file steps are marked complete,
/// and the request becomes `purged` with its counts (only one run gets that far) and its
/// confirmation email queued. `None` when another run finished first.
async fn finish(
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

/// Rows removed per store (table, or file store), summed over the rules that touch it.
async fn store_counts<C: ConnectionTrait>(conn: &C, rid: &str) -> AppResult<BTreeMap<String, i64>> {
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
