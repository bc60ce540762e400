//! Notices to account holders that are not part of a deletion: reset links, and word that the
//! email, password or notification address changed. A notice is a row written in the same
//! transaction as the change that calls for it, plus an outbox row; a job sends it. So a reset
//! request does the same work whether or not an account matched (the job finds out), and a
//! change is never made without its notice, nor a notice sent for a change rolled back.
//! Notices about tickets (to requesters, and to the owners of the accounts they name) are sent
//! the same way; `tickets` writes them.

mod tickets;

use chrono::{DateTime, Utc};
use erasure_jobs::JobKind;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    domain::AccountStatus,
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    mailer::{Mailer, stored_address},
    models::{account, notification, password_reset},
    services::{accounts, outbox},
    vault::{KeyOwner, Vault},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// A reset link, to the account's address (none when no account matched).
    PasswordReset,
    /// To the old address, after the account's email changed.
    EmailChanged,
    /// To the account's address, after the password changed.
    PasswordChanged,
    /// To the account's address, after the offline-notification address changed.
    NotificationEmailChanged,
    /// A new ticket's acknowledgement, with its reference; when the ticket names an account
    /// and is not verified yet, it goes to the account's address with the link that confirms it.
    TicketReceived,
    /// To the requester: the request was rejected, why, and where to complain.
    TicketRejected,
    /// To the requester: an agent's question (a ticket note of kind `question`).
    TicketQuestion,
    /// To the requester: the deadline was extended, to when and why.
    TicketExtended,
    /// To the account's address: the deletion is scheduled for a date, with the one-time link
    /// that cancels it.
    DeletionScheduled,
    /// To the account's address: the takeout archive is ready (the link needs the log-in).
    ExportReady,
}

impl NoticeKind {
    const ALL: [Self; 10] = [
        Self::DeletionScheduled,
        Self::ExportReady,
        Self::PasswordReset,
        Self::EmailChanged,
        Self::PasswordChanged,
        Self::NotificationEmailChanged,
        Self::TicketReceived,
        Self::TicketRejected,
        Self::TicketQuestion,
        Self::TicketExtended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "password_reset",
            Self::EmailChanged => "email_changed",
            Self::PasswordChanged => "password_changed",
            Self::NotificationEmailChanged => "notification_email_changed",
            Self::TicketReceived => "ticket_received",
            Self::TicketRejected => "ticket_rejected",
            Self::TicketQuestion => "ticket_question",
            Self::TicketExtended => "ticket_extended",
            Self::DeletionScheduled => "deletion_scheduled",
            Self::ExportReady => "export_ready",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// Notices to a ticket's requester (`tickets` writes their letters).
    fn is_about_a_ticket(self) -> bool {
        matches!(
            self,
            Self::TicketReceived | Self::TicketRejected | Self::TicketQuestion | Self::TicketExtended
        )
    }
}

/// Records a notice and the job that sends it, inside `conn`'s transaction.
pub async fn add<C: ConnectionTrait>(
    conn: &C,
    kind: NoticeKind,
    account_id: Option<i64>,
    recipient: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Uuid> {
    insert(conn, kind, account_id, None, recipient, now).await
}

/// Records a notice about ticket `ticket_id` to `recipient` (the requester), the address
/// sealed under the ticket's key, and the job that sends it, inside `conn`'s transaction.
pub async fn add_about_ticket<C: ConnectionTrait>(
    conn: &C,
    vault: &Vault,
    kind: NoticeKind,
    ticket_id: i64,
    recipient: &str,
    now: DateTime<Utc>,
) -> AppResult<Uuid> {
    let key = vault.create_key(conn, &KeyOwner::Ticket(ticket_id), now).await?;
    let sealed = key.seal(super::tickets::sealed::NOTICE_RECIPIENT, recipient);
    insert(conn, kind, None, Some(ticket_id), Some(&sealed), now).await
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    kind: NoticeKind,
    account_id: Option<i64>,
    ticket_id: Option<i64>,
    recipient: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Uuid> {
    let id = Uuid::new_v4();
    notification::ActiveModel {
        id: Set(id.to_string()),
        kind: Set(kind.as_str().to_owned()),
        account_id: Set(account_id),
        recipient: Set(recipient.map(str::to_owned)),
        created_at: Set(now),
        sent_at: Set(None),
        ticket_id: Set(ticket_id),
    }
    .insert(conn)
    .await?;
    outbox::add(conn, JobKind::Notification, id, now).await?;
    Ok(id)
}

/// What sending notices uses besides the environment.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub keys: &'a Keys,
    pub mailer: &'a Mailer,
    /// How long a reset link works, counted from the request.
    pub reset_ttl: chrono::Duration,
    /// How long the link confirming a ticket works, counted from the ticket's notice.
    pub verification_ttl: chrono::Duration,
    /// How long a takeout archive can be downloaded.
    pub export_ttl: chrono::Duration,
}

/// Sends notice `id` once. A notice whose account is gone (purged, or never existed) is done
/// without sending anything.
pub async fn send(env: Env<'_>, sender: Sender<'_>, id: Uuid) -> AppResult<()> {
    let Some(notice) = notification::Entity::find_by_id(id.to_string())
        .one(&env.db.conn)
        .await?
    else {
        return Ok(());
    };
    if notice.sent_at.is_some() {
        return Ok(());
    }
    let kind = NoticeKind::parse(&notice.kind)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("notice {id} has unknown kind {}", notice.kind)))?;
    if kind.is_about_a_ticket() {
        let message = tickets::letter(env, sender, kind, &notice).await?;
        return deliver(env, sender.mailer, &notice, kind, message).await;
    }
    if kind == NoticeKind::DeletionScheduled {
        let message = scheduled_letter(env, sender, &notice).await?;
        return deliver(env, sender.mailer, &notice, kind, message).await;
    }
    let account = match notice.account_id {
        Some(account_id) => accounts::find(env, account_id)
            .await?
            .filter(|a| a.status == AccountStatus::Active),
        None => None,
    };
    let Some(account) = account else {
        return mark_sent(env, &notice.id).await;
    };
    let mailer = sender.mailer;
    let message = match kind {
        NoticeKind::PasswordReset => match issue_reset_link(env, sender, &notice, &account).await? {
            Some(link) => stored_address(&account.email).and_then(|to| {
                let minutes = sender.reset_ttl.num_minutes();
                mailer.password_reset(&to, &notice.id, &link, minutes)
            }),
            // A newer link superseded this one before it was sent.
            None => return mark_sent(env, &notice.id).await,
        },
        NoticeKind::EmailChanged => {
            let old = open_old_address(env, &account, notice.recipient.as_deref()).await?;
            stored_address(&old).and_then(|to| mailer.account_changed(&to, &notice.id, "email address"))
        }
        NoticeKind::PasswordChanged => {
            stored_address(&account.email).and_then(|to| mailer.account_changed(&to, &notice.id, "password"))
        }
        NoticeKind::NotificationEmailChanged => stored_address(&account.email)
            .and_then(|to| mailer.account_changed(&to, &notice.id, "offline-notification address")),
        NoticeKind::ExportReady => stored_address(&account.email).and_then(|to| {
            mailer.export_ready(
                &to,
                &notice.id,
                &mailer.link("/account/export"),
                sender.export_ttl,
            )
        }),
        NoticeKind::TicketReceived
        | NoticeKind::TicketRejected
        | NoticeKind::TicketQuestion
        | NoticeKind::TicketExtended
        | NoticeKind::DeletionScheduled => return mark_sent(env, &notice.id).await,
    };
    deliver(env, mailer, &notice, kind, Some(message)).await
}

/// The scheduled deletion's date and cancel link; none when it is no longer scheduled
/// (cancelled, or its purge begun, before the notice went out).
async fn scheduled_letter(
    env: Env<'_>,
    sender: Sender<'_>,
    notice: &notification::Model,
) -> AppResult<Option<Result<lettre::Message, crate::mailer::MailError>>> {
    let Some(account_id) = notice.account_id else {
        return Ok(None);
    };
    let Some(request) = crate::services::deletion::grace::scheduled_of(&env.db.conn, account_id).await?
    else {
        return Ok(None);
    };
    let Some(purge_after) = request.purge_after else {
        return Ok(None);
    };
    let token = sender.keys.cancel_token(&request.id);
    let link = sender
        .mailer
        .link(&format!("/deletion/cancel/{}", token.expose()));
    Ok(Some(
        stored_address(notice.recipient.as_deref().unwrap_or_default()).and_then(|to| {
            sender
                .mailer
                .deletion_scheduled(&to, &notice.id, purge_after, &link)
        }),
    ))
}

/// Sends the built message (none: nothing to send) and marks the notice sent. A message that
/// can never be delivered (an address the mailer refuses) is dropped, not retried.
async fn deliver(
    env: Env<'_>,
    mailer: &Mailer,
    notice: &notification::Model,
    kind: NoticeKind,
    message: Option<Result<lettre::Message, crate::mailer::MailError>>,
) -> AppResult<()> {
    let sent = match message {
        Some(Ok(message)) => mailer.send(message, &format!("notification-{}", notice.id)).await,
        Some(Err(e)) => Err(e),
        None => Ok(()),
    };
    match sent {
        Ok(()) => {}
        Err(e) if e.is_permanent() => {
            tracing::warn!(notification_id = %notice.id, kind = kind.as_str(), error = %e, "notice cannot be delivered; dropping it");
        }
        Err(e) => return Err(AppError::internal(e)),
    }
    mark_sent(env, &notice.id).await
}

/// Makes the notice's reset link the account's only live one, unless a newer request's link
/// already is. Returns the link, or None when superseded. Running it twice issues the same
/// link (its token derives from the notice).
async fn issue_reset_link(
    env: Env<'_>,
    sender: Sender<'_>,
    notice: &notification::Model,
    account: &account::Model,
) -> AppResult<Option<String>> {
    let token = sender.keys.reset_token(&notice.id);
    let token_hash = token.hash().0;
    let tx = env.db.begin_write().await?;
    let newer = password_reset::Entity::find()
        .filter(password_reset::Column::AccountId.eq(account.id))
        .filter(password_reset::Column::CreatedAt.gt(notice.created_at))
        .one(&tx)
        .await?;
    if newer.is_some() {
        tx.rollback().await?;
        return Ok(None);
    }
    // Every older link stops working: only the newest one asked for does.
    password_reset::Entity::delete_many()
        .filter(password_reset::Column::AccountId.eq(account.id))
        .filter(password_reset::Column::Id.ne(&token_hash))
        .exec(&tx)
        .await?;
    let exists = password_reset::Entity::find_by_id(&token_hash)
        .one(&tx)
        .await?
        .is_some();
    if !exists {
        password_reset::ActiveModel {
            id: Set(token_hash),
            account_id: Set(account.id),
            created_at: Set(notice.created_at),
            expires_at: Set(notice.created_at + sender.reset_ttl),
            used_at: Set(None),
        }
        .insert(&tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Some(
        sender
            .mailer
            .link(&format!("/reset-password?token={}", token.expose())),
    ))
}

async fn mark_sent(env: Env<'_>, id: &str) -> AppResult<()> {
    notification::Entity::update_many()
        .col_expr(notification::Column::SentAt, Expr::value(env.now()))
        .col_expr(
            notification::Column::Recipient,
            Expr::value(Option::<String>::None),
        )
        .filter(notification::Column::Id.eq(id))
        .exec(&env.db.conn)
        .await?;
    Ok(())
}

/// Removes notices sent before `cutoff`.
pub async fn vacuum(db: &crate::db::Database, cutoff: DateTime<Utc>) -> AppResult<u64> {
    Ok(notification::Entity::delete_many()
        .filter(notification::Column::SentAt.lt(cutoff))
        .exec(&db.conn)
        .await?
        .rows_affected)
}

/// The column the old address of an "email changed" notice is kept in, sealed under the
/// account's key (the notice goes with the account).
pub const OLD_ADDRESS: &str = "notifications.recipient";

async fn open_old_address(env: Env<'_>, account: &account::Model, sealed: Option<&str>) -> AppResult<String> {
    let Some(sealed) = sealed else {
        return Ok(String::new());
    };
    match env
        .vault
        .key(&env.db.conn, &KeyOwner::Account(account.id))
        .await?
    {
        Some(key) => key.open(OLD_ADDRESS, sealed),
        None => Ok(String::new()),
    }
}
