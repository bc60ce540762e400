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

mod finish;
mod progress;
mod stores;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use crate::{
    datamap::{PurgePlan, StoreRule},
    domain::DeletionStatus,
    env::Env,
    error::{AppError, AppResult},
    models::{deletion_request, purge_progress},
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
    stores::purge_stores(env, &rid, account_id, &rules, plan.chunk_size).await?;
    let mut files_done = Vec::new();
    for store in &plan.map.files {
        let step = files_step(&store.name);
        if !finished.contains(&step) {
            stores::purge_files(env, &plan.data_dir.join(&store.dir), &rid, account_id, &step).await?;
            files_done.push(step);
        }
    }
    let Some(counts) = finish::finish(env, request_id, &request, plan.reuse_cooloff, &files_done).await?
    else {
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
