//! Bulk deletion of dormant accounts (storage limitation, GDPR Art. 5(1)(e)): an administrator
//! previews the free accounts with no log-in since a date, then deletes them.
//!
//! Invariant: every account gets its own request, receipt and ledger entry, through the same
//! pipeline as a self-service deletion (actor: the admin; channel: `bulk`), and is deleted only
//! if it is still dormant in the transaction that opens its request: one that logs in while
//! the run goes on is skipped. A run is a row with a cursor over account ids, advanced one
//! batch per transaction group, so an interrupted run resumes where it stopped and opens no
//! request twice. Its requests wait in the outbox; the relay's backlog limit keeps the queue
//! healthy however many there are.

use chrono::{DateTime, Utc};
use erasure_jobs::JobKind;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Select, Set,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use crate::{
    domain::{AccountStatus, Actor, Channel, Plan},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::{account, bulk_run, session},
    services::{accounts, deletion, outbox},
};

/// Free, active accounts created before `since` with no log-in since, and no session seen since.
fn dormant(since: DateTime<Utc>) -> Select<account::Entity> {
    let seen_since = Query::select()
        .column(session::Column::AccountId)
        .from(session::Entity)
        .and_where(Expr::col(session::Column::LastSeenAt).gte(since))
        .to_owned();
    account::Entity::find()
        .filter(account::Column::Status.eq(AccountStatus::Active))
        .filter(account::Column::Plan.eq(Plan::Free))
        .filter(account::Column::CreatedAt.lt(since))
        .filter(
            Condition::any()
                .add(account::Column::LastLoginAt.is_null())
                .add(account::Column::LastLoginAt.lt(since)),
        )
        .filter(account::Column::Id.not_in_subquery(seen_since))
}

/// What a bulk deletion would take, before it is run.
#[derive(Debug, Clone)]
pub struct Preview {
    pub count: u64,
    /// The first of them, by id.
    pub sample: Vec<account::Model>,
}

pub async fn preview(env: Env<'_>, since: DateTime<Utc>, sample: u64) -> AppResult<Preview> {
    let rows = dormant(since)
        .order_by_asc(account::Column::Id)
        .limit(sample)
        .all(&env.db.conn)
        .await?;
    let mut opened = Vec::with_capacity(rows.len());
    for row in rows {
        // One deleted meanwhile is left out.
        opened.extend(accounts::sealed::open_some(env.vault, &env.db.conn, Some(row)).await?);
    }
    Ok(Preview {
        count: dormant(since).count(&env.db.conn).await?,
        sample: opened,
    })
}

/// Starts a run by administrator `staff_id`; `queued` also hands it to the workers (the
/// console), otherwise the caller advances it (the command line).
pub async fn start(
    env: Env<'_>,
    staff_id: i64,
    since: DateTime<Utc>,
    queued: bool,
) -> AppResult<bulk_run::Model> {
    let now = env.now();
    if since > now {
        return Err(AppError::InvalidInput(
            "the date must not be in the future".into(),
        ));
    }
    let id = Uuid::new_v4();
    let tx = env.db.begin_write().await?;
    let run = bulk_run::ActiveModel {
        id: Set(id.to_string()),
        staff_id: Set(staff_id),
        inactive_since: Set(since),
        created_at: Set(now),
        last_account_id: Set(0),
        requested: Set(0),
        skipped: Set(0),
        finished_at: Set(None),
    }
    .insert(&tx)
    .await?;
    if queued {
        outbox::add(&tx, JobKind::BulkDeletion, id, now).await?;
    }
    tx.commit().await?;
    if queued {
        env.wake_relay();
    }
    tracing::info!(staff_id, run_id = %id, %since, "bulk deletion started");
    Ok(run)
}

/// Opens the next `batch` deletions of run `id`. Returns the run as it stands after.
pub async fn advance(
    env: Env<'_>,
    keys: &Keys,
    id: Uuid,
    grace: chrono::Duration,
    batch: u64,
) -> AppResult<bulk_run::Model> {
    let run = bulk_run::Entity::find_by_id(id.to_string())
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    if run.finished_at.is_some() {
        return Ok(run);
    }
    let candidates = dormant(run.inactive_since)
        .filter(account::Column::Id.gt(run.last_account_id))
        .order_by_asc(account::Column::Id)
        .limit(batch)
        .all(&env.db.conn)
        .await?;
    let (mut requested, mut skipped, mut cursor) = (0i64, 0i64, run.last_account_id);
    for candidate in &candidates {
        if open_if_dormant(env, keys, &run, candidate, grace).await? {
            requested += 1;
        } else {
            skipped += 1;
        }
        cursor = candidate.id;
    }
    let finished = (candidates.len() as u64) < batch;
    let mut update = bulk_run::Entity::update_many()
        .col_expr(bulk_run::Column::LastAccountId, Expr::value(cursor))
        .col_expr(
            bulk_run::Column::Requested,
            Expr::col(bulk_run::Column::Requested).add(requested),
        )
        .col_expr(
            bulk_run::Column::Skipped,
            Expr::col(bulk_run::Column::Skipped).add(skipped),
        );
    if finished {
        update = update.col_expr(bulk_run::Column::FinishedAt, Expr::value(env.now()));
    }
    // Only from the cursor this batch started at: a second worker running the same batch
    // (a redelivered job) opened nothing twice and counts nothing twice.
    update
        .filter(bulk_run::Column::Id.eq(&run.id))
        .filter(bulk_run::Column::LastAccountId.eq(run.last_account_id))
        .exec(&env.db.conn)
        .await?;
    env.wake_relay();
    bulk_run::Entity::find_by_id(run.id)
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)
}

/// Opens `candidate`'s deletion if it is still dormant now, in one transaction.
async fn open_if_dormant(
    env: Env<'_>,
    keys: &Keys,
    run: &bulk_run::Model,
    candidate: &account::Model,
    grace: chrono::Duration,
) -> AppResult<bool> {
    let tx = env.db.begin_write().await?;
    let still = dormant(run.inactive_since)
        .filter(account::Column::Id.eq(candidate.id))
        .one(&tx)
        .await?;
    let still = accounts::sealed::open_some(env.vault, &tx, still).await?;
    let Some(account) = still else {
        tx.rollback().await?;
        return Ok(false);
    };
    match deletion::open_request_in(
        &tx,
        env,
        keys,
        &account,
        Actor::Admin(run.staff_id),
        Channel::Bulk,
        grace,
    )
    .await
    {
        Ok(_) => {
            tx.commit().await?;
            Ok(true)
        }
        // Being deleted already (its holder, an agent, another run).
        Err(AppError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The newest runs, for the console.
pub async fn runs<C: ConnectionTrait>(conn: &C, limit: u64) -> AppResult<Vec<bulk_run::Model>> {
    Ok(bulk_run::Entity::find()
        .order_by_desc(bulk_run::Column::CreatedAt)
        .limit(limit)
        .all(conn)
        .await?)
}
