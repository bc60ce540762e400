//! Asking for a deletion, and reading where one stands.
//!
//! The request is one transaction: the account stops being able to log in, every session of
//! it is revoked, the request row and the purge job's outbox row are written. Any refusal
//! happens before the transaction and changes nothing. The steps after it live beside this
//! module: the purge (`services::purge`), the confirmation (`confirmation`), the ledger entry
//! (`services::ledger`), and what happens when a step dies (`failure`).

pub mod confirmation;
pub mod failure;
pub mod grace;

use chrono::{DateTime, Utc};
use erasure_jobs::JobKind;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DerivePartialModel, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    db::Database,
    domain::{AccountStatus, Actor, Channel, DeletionStatus, Email, Plan, SecretToken},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::{account, deletion_request, password_reset},
    services::{outbox, sessions},
    vault::KeyOwner,
};

#[derive(Debug, Clone)]
pub struct Receipt {
    pub request_id: Uuid,
    /// Handed to the user once; only its hash is stored.
    pub receipt: SecretToken,
    pub status: DeletionStatus,
    /// With a grace period: when the purge will start, unless the deletion is cancelled.
    pub purge_after: Option<DateTime<Utc>>,
}

/// What a self-service deletion is checked against.
#[derive(Debug, Clone, Copy)]
pub struct SelfService<'a> {
    /// Where paid accounts are sent instead.
    pub support_email: &'a str,
    /// A log-in older than this must prove the password again.
    pub reauth_window: chrono::Duration,
    /// How long a confirmed deletion waits, cancellable, before its purge (zero: at once).
    pub grace: chrono::Duration,
}

/// A free account holder confirms the deletion of their own account by typing its email.
pub async fn request_by_account_holder(
    env: Env<'_>,
    keys: &Keys,
    rules: SelfService<'_>,
    current: &sessions::CurrentSession,
    typed_email: &str,
    channel: Channel,
) -> AppResult<Receipt> {
    let account = &current.account;
    if account.plan == Plan::Paid {
        return Err(AppError::PaidAccount {
            support_email: rules.support_email.to_owned(),
        });
    }
    if current.login_is_older_than(env.now(), rules.reauth_window) {
        return Err(AppError::ReauthenticationRequired);
    }
    if !typed_email_matches(&account.email, typed_email) {
        return Err(AppError::ConfirmationMismatch);
    }
    open_request_after(env, keys, account, Actor::AccountHolder, channel, rules.grace).await
}

/// The account holder typed their address. An address stored before the grammar was narrowed
/// may not parse any more; its holder must still be able to leave, so it is compared as it
/// was then: trimmed and lowercased.
pub(crate) fn typed_email_matches(stored: &str, typed: &str) -> bool {
    match Email::parse(stored) {
        Ok(email) => email.matches_typed(typed),
        Err(_) => typed.trim().to_lowercase() == stored,
    }
}

/// Writes the request and its outbox row in one transaction; refuses if the account is
/// already being deleted. The purge starts at once.
pub async fn open_request(
    env: Env<'_>,
    keys: &Keys,
    account: &account::Model,
    actor: Actor,
    channel: Channel,
) -> AppResult<Receipt> {
    open_request_after(env, keys, account, actor, channel, chrono::Duration::zero()).await
}

/// [`open_request`] with a grace period: above zero, the request waits `scheduled`, its holder
/// is mailed a link that cancels it, and the purge starts when `grace` is up.
pub async fn open_request_after(
    env: Env<'_>,
    keys: &Keys,
    account: &account::Model,
    actor: Actor,
    channel: Channel,
    grace: chrono::Duration,
) -> AppResult<Receipt> {
    let described = actor.to_string();
    let tx = env.db.begin_write().await?;
    let opened = open_request_in(&tx, env, keys, account, actor, channel, grace).await?;
    tx.commit().await?;
    env.wake_relay();
    tracing::info!(account_id = account.id, request_id = %opened.request_id, actor = %described, channel = channel.as_str(), "deletion requested");
    Ok(opened)
}

/// [`open_request_after`] inside a caller's write transaction (an approval records its
/// decision in the same one). The caller commits, then wakes the relay; on an error it rolls
/// back.
pub async fn open_request_in(
    tx: &DatabaseTransaction,
    env: Env<'_>,
    keys: &Keys,
    account: &account::Model,
    actor: Actor,
    channel: Channel,
    grace: chrono::Duration,
) -> AppResult<Receipt> {
    let now = env.now();
    let request_id = Uuid::new_v4();
    let receipt = keys.receipt(&request_id.to_string());
    // The confirmation's address outlives the account's key: it gets a key of its own,
    // destroyed once the email is sent or has failed for good. The restore guard sends none:
    // the holder was told when the account was first deleted.
    let notify_email = if actor == Actor::System {
        None
    } else {
        let address_key = env
            .vault
            .create_key(tx, &KeyOwner::Confirmation(request_id.to_string()), now)
            .await?;
        Some(address_key.seal(confirmation::ADDRESS, &account.email))
    };
    let purge_after = (grace > chrono::Duration::zero()).then(|| now + grace);
    let status = if purge_after.is_some() {
        DeletionStatus::Scheduled
    } else {
        DeletionStatus::Pending
    };
    let (actor_kind, actor_id) = actor.parts();

    let locked = account::Entity::update_many()
        .col_expr(account::Column::Status, Expr::value(AccountStatus::Deleting))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account.id))
        .filter(account::Column::Status.eq(AccountStatus::Active))
        .exec(tx)
        .await?
        .rows_affected;
    if locked != 1 {
        return Err(AppError::Conflict("this account is already being deleted".into()));
    }
    sessions::end_all(tx, account.id).await?;
    password_reset::Entity::delete_many()
        .filter(password_reset::Column::AccountId.eq(account.id))
        .exec(tx)
        .await?;
    deletion_request::ActiveModel {
        id: Set(request_id.to_string()),
        receipt_hash: Set(receipt.hash().0),
        account_id: Set(account.id),
        subject: Set(keys.pseudonym("vsee_id", &account.vsee_id)),
        subject_email: Set(Some(keys.pseudonym("email", &account.email))),
        actor_kind: Set(actor_kind),
        actor_id: Set(actor_id),
        channel: Set(channel),
        status: Set(status),
        notify_email: Set(notify_email),
        requested_at: Set(now),
        purge_started_at: Set(None),
        purged_at: Set(None),
        email_sent_at: Set(None),
        completed_at: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        store_counts: Set(None),
        email_claimed_until: Set(None),
        email_failed_at: Set(None),
        purge_after: Set(purge_after),
        cancel_hash: Set(purge_after.map(|_| keys.cancel_token(&request_id.to_string()).hash().0)),
        cancelled_at: Set(None),
        cancelled_by: Set(None),
        cancel_reason: Set(None),
    }
    .insert(tx)
    .await?;
    outbox::add_after(tx, JobKind::Purge, request_id, now, purge_after).await?;
    if purge_after.is_some() {
        grace::announce(tx, account, now).await?;
    }
    Ok(Receipt {
        request_id,
        receipt,
        status,
        purge_after,
    })
}

/// One step of the pipeline as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepState {
    pub name: &'static str,
    pub status: &'static str,
    pub at: Option<DateTime<Utc>>,
}

/// Where a request stands: no personal data in it.
#[derive(Debug, Clone)]
pub struct DeletionView {
    pub status: DeletionStatus,
    pub requested_at: DateTime<Utc>,
    /// With a grace period: when the purge starts (or started).
    pub purge_after: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub steps: Vec<StepState>,
}

/// The columns the view is made of, and no others: the status page and its API read only these.
#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "deletion_request::Entity")]
struct Progress {
    status: DeletionStatus,
    requested_at: DateTime<Utc>,
    purge_after: Option<DateTime<Utc>>,
    purged_at: Option<DateTime<Utc>>,
    email_sent_at: Option<DateTime<Utc>>,
    email_failed_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl DeletionView {
    fn of(r: &Progress) -> AppResult<Self> {
        let status = r.status;
        let step = |name, at: Option<DateTime<Utc>>, running: bool| StepState {
            name,
            status: match (at, running, status) {
                (Some(_), _, _) => "done",
                (None, true, DeletionStatus::Failed) => "failed",
                (None, true, _) => "running",
                (None, false, _) => "waiting",
            },
            at,
        };
        let purging = matches!(
            status,
            DeletionStatus::Pending | DeletionStatus::Purging | DeletionStatus::Failed
        );
        if status == DeletionStatus::Cancelled {
            return Ok(Self {
                status,
                requested_at: r.requested_at,
                purge_after: r.purge_after,
                cancelled_at: r.cancelled_at,
                completed_at: None,
                steps: Vec::new(),
            });
        }
        let mut email = step("confirmation_email", r.email_sent_at, r.purged_at.is_some());
        if let Some(at) = r.email_failed_at {
            // Undeliverable: the deletion went on without it.
            email = StepState {
                name: "confirmation_email",
                status: "failed",
                at: Some(at),
            };
        }
        let email_done = r.email_sent_at.is_some() || r.email_failed_at.is_some();
        let steps = vec![
            step("purge", r.purged_at, purging),
            email,
            step("ledger_entry", r.completed_at, email_done),
        ];
        Ok(Self {
            status,
            requested_at: r.requested_at,
            purge_after: r.purge_after,
            cancelled_at: r.cancelled_at,
            completed_at: r.completed_at,
            steps,
        })
    }
}

/// Where the request a receipt token names stands; not found for any other string.
pub async fn by_receipt(db: &Database, raw_receipt: &str) -> AppResult<DeletionView> {
    let select = named_by_receipt(raw_receipt)?.into_partial_model::<Progress>();
    let progress = crate::db::by_unique_key(select, &db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    DeletionView::of(&progress)
}

/// The request a receipt token names; not found for any other string.
pub async fn request_by_receipt(db: &Database, raw_receipt: &str) -> AppResult<deletion_request::Model> {
    let select = named_by_receipt(raw_receipt)?.into_model::<deletion_request::Model>();
    crate::db::by_unique_key(select, &db.conn)
        .await?
        .ok_or(AppError::NotFound)
}

/// The request a receipt token names (`receipt_hash` is unique), to be read; a string that
/// is no token is not found.
fn named_by_receipt(raw_receipt: &str) -> AppResult<sea_orm::Select<deletion_request::Entity>> {
    let token = SecretToken::parse(raw_receipt).ok_or(AppError::NotFound)?;
    Ok(deletion_request::Entity::find().filter(deletion_request::Column::ReceiptHash.eq(token.hash().0)))
}

pub async fn find(db: &Database, request_id: Uuid) -> AppResult<deletion_request::Model> {
    deletion_request::Entity::find_by_id(request_id.to_string())
        .one(&db.conn)
        .await?
        .ok_or(AppError::NotFound)
}

/// Requests that were due more than `bound` before `now` (asked for, or at the end of their
/// grace period) and have no ledger entry yet: stalled or failed. A deletion must never stall
/// unseen; `erasure audit verify` lists these and fails. Cancelled ones are not owed an entry.
/// At most `limit`, oldest first.
pub async fn overdue(
    db: &Database,
    now: DateTime<Utc>,
    bound: chrono::Duration,
    limit: u64,
) -> AppResult<Vec<deletion_request::Model>> {
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    let due_before = now - bound;
    Ok(deletion_request::Entity::find()
        .filter(
            deletion_request::Column::Status
                .is_not_in([DeletionStatus::Completed, DeletionStatus::Cancelled]),
        )
        .filter(deletion_request::Column::RequestedAt.lt(due_before))
        .filter(
            Condition::any()
                .add(deletion_request::Column::PurgeAfter.is_null())
                .add(deletion_request::Column::PurgeAfter.lt(due_before)),
        )
        .order_by_asc(deletion_request::Column::RequestedAt)
        .limit(limit)
        .all(&db.conn)
        .await?)
}
