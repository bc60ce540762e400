//! The grace period. With `deletion.grace_hours` above 0 a confirmed deletion waits
//! `scheduled`: log-in has stopped and every session has ended (as without one), the purge's
//! outbox row is held back until `purge_after`, and the holder is mailed the date and a
//! one-time link that cancels it.
//!
//! Invariant: a deletion is either cancelled or purged, never both, and never cancelled after
//! the date the holder was given. Cancelling is one compare-and-set from `scheduled` that also
//! requires `purge_after` to be in the future, committed with the account's log-in restored,
//! the held-back purge withdrawn and the ledger's event; the purge claims the same row with its
//! own compare-and-set from `scheduled`, so of the two one wins and the other changes nothing.

use chrono::{DateTime, Utc};
use erasure_jobs::JobKind;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use crate::{
    domain::{AccountStatus, Actor, DeletionStatus, SecretToken},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::{account, deletion_request},
    services::{
        ledger::{
            self,
            events::{AuditEvent, DeletionCancelled, Subjects},
        },
        notifications::{self, NoticeKind},
        outbox,
    },
    vault::KeyOwner,
};

/// Mails the holder the date and the cancel link, inside the request's transaction.
pub(super) async fn announce(
    tx: &DatabaseTransaction,
    account: &account::Model,
    now: DateTime<Utc>,
) -> AppResult<()> {
    notifications::add(
        tx,
        NoticeKind::DeletionScheduled,
        Some(account.id),
        Some(&account.email),
        now,
    )
    .await?;
    Ok(())
}

/// A deletion that a cancel link names, as its page shows it.
#[derive(Debug, Clone)]
pub struct Scheduled {
    pub request_id: Uuid,
    pub status: DeletionStatus,
    pub purge_after: DateTime<Utc>,
    /// Whether it can still be cancelled now.
    pub cancellable: bool,
}

impl Scheduled {
    fn of(request: &deletion_request::Model, now: DateTime<Utc>) -> AppResult<Self> {
        let purge_after = request.purge_after.ok_or(AppError::NotFound)?;
        Ok(Self {
            request_id: Uuid::parse_str(&request.id).map_err(AppError::internal)?,
            status: request.status,
            purge_after,
            cancellable: request.status == DeletionStatus::Scheduled && now < purge_after,
        })
    }
}

/// The deletion a cancel link names; not found for any other string.
pub async fn by_cancel_link<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    raw: &str,
) -> AppResult<Scheduled> {
    Scheduled::of(&request_by_cancel_link(conn, raw).await?, now)
}

async fn request_by_cancel_link<C: ConnectionTrait>(
    conn: &C,
    raw: &str,
) -> AppResult<deletion_request::Model> {
    let token = SecretToken::parse(raw).ok_or(AppError::NotFound)?;
    deletion_request::Entity::find()
        .filter(deletion_request::Column::CancelHash.eq(token.hash().0))
        .one(conn)
        .await?
        .ok_or(AppError::NotFound)
}

/// The holder cancels from the emailed link: the account can log in again.
pub async fn cancel_by_link(env: Env<'_>, keys: &Keys, raw: &str) -> AppResult<Scheduled> {
    let request = request_by_cancel_link(&env.db.conn, raw).await?;
    cancel(env, keys, &request, Actor::AccountHolder, None).await
}

/// An agent cancels a scheduled deletion (a paid account's termination), with a reason.
pub async fn cancel_by_agent(
    env: Env<'_>,
    keys: &Keys,
    agent_id: i64,
    request_id: Uuid,
    reason: &str,
) -> AppResult<Scheduled> {
    let reason = crate::services::text::reason_text(reason)?;
    let request = super::find(env.db, request_id).await?;
    cancel(env, keys, &request, Actor::Agent(agent_id), Some(reason)).await
}

async fn cancel(
    env: Env<'_>,
    keys: &Keys,
    request: &deletion_request::Model,
    actor: Actor,
    reason: Option<String>,
) -> AppResult<Scheduled> {
    let now = env.now();
    let purge_after = request
        .purge_after
        .ok_or_else(|| AppError::Conflict("this deletion had no grace period".into()))?;
    let request_id = Uuid::parse_str(&request.id).map_err(AppError::internal)?;
    let tx = env.db.begin_write().await?;
    let cancelled = deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::Status,
            Expr::value(DeletionStatus::Cancelled),
        )
        .col_expr(deletion_request::Column::CancelledAt, Expr::value(now))
        .col_expr(
            deletion_request::Column::CancelledBy,
            Expr::value(actor.to_string()),
        )
        .col_expr(deletion_request::Column::CancelReason, Expr::value(reason))
        // No confirmation will be sent: the address is not kept for it.
        .col_expr(
            deletion_request::Column::NotifyEmail,
            Expr::value(Option::<String>::None),
        )
        .filter(deletion_request::Column::Id.eq(&request.id))
        .filter(
            deletion_request::Column::Status
                .is_in(DeletionStatus::that_can_become(DeletionStatus::Cancelled)),
        )
        .filter(deletion_request::Column::PurgeAfter.gt(now))
        .exec(&tx)
        .await?
        .rows_affected;
    env.vault
        .destroy(&tx, &KeyOwner::Confirmation(request.id.clone()))
        .await?;
    if cancelled != 1 {
        tx.rollback().await?;
        let current = super::find(env.db, request_id).await?;
        return Err(match current.status {
            DeletionStatus::Cancelled => AppError::Conflict("this deletion was cancelled already".into()),
            _ => AppError::GracePeriodOver,
        });
    }
    account::Entity::update_many()
        .col_expr(account::Column::Status, Expr::value(AccountStatus::Active))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(request.account_id))
        .filter(account::Column::Status.eq(AccountStatus::Deleting))
        .exec(&tx)
        .await?;
    outbox::withdraw(&tx, JobKind::Purge, request_id).await?;
    let event = AuditEvent::DeletionCancelled(DeletionCancelled {
        request_id: request.id.clone(),
        subjects: Subjects {
            vsee_id: request.subject.clone(),
            email: request.subject_email.clone(),
        },
        actor: actor.clone(),
        channel: request.channel,
        requested_at: request.requested_at,
        purge_after,
    });
    ledger::record_in(&tx, env.db, keys, &event, now).await?;
    tx.commit().await?;
    tracing::info!(request_id = %request_id, actor = %actor, "scheduled deletion cancelled");
    Ok(Scheduled {
        request_id,
        status: DeletionStatus::Cancelled,
        purge_after,
        cancellable: false,
    })
}

/// The scheduled deletion of `account_id` (its newest), for the notice that announces it.
pub async fn scheduled_of<C: ConnectionTrait>(
    conn: &C,
    account_id: i64,
) -> AppResult<Option<deletion_request::Model>> {
    use sea_orm::QueryOrder;
    Ok(deletion_request::Entity::find()
        .filter(deletion_request::Column::AccountId.eq(account_id))
        .filter(deletion_request::Column::Status.eq(DeletionStatus::Scheduled))
        .order_by_desc(deletion_request::Column::RequestedAt)
        .one(conn)
        .await?)
}
