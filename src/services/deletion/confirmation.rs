//! The confirmation email of a deletion: sent once, under a lease, or found undeliverable.
//!
//! Two workers can be handed the same job (a redelivery after a missed heartbeat): only the
//! holder of the lease on the request sends; the other looks again a little later, through the
//! outbox. A lease that runs out means its holder stopped midway, perhaps after the server took
//! the email: it is not sent again, so a confirmation goes at most once. Once sent the address
//! is forgotten. An address or a mail server that refuses the email for good does not hold the
//! deletion: the ledger entry records that the confirmation could not be sent. Erasure does not
//! wait on a mailbox.
//!
//! The address is sealed under a key of its own (the account's is destroyed by the purge
//! before the email goes); that key is destroyed with the address once the email is sent or
//! has failed for good.

use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use erasure_jobs::JobKind;

use super::find;
use crate::{
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    mailer::{Mailer, stored_address},
    models::deletion_request,
    services::outbox,
    vault::KeyOwner,
};

/// The sealed column the address is kept in.
pub const ADDRESS: &str = "deletion_requests.notify_email";

/// How long one worker may hold the sending of a confirmation before another may take over.
const LEASE: chrono::Duration = chrono::Duration::seconds(60);

/// How soon an attempt that found the lease taken looks again.
const LOOK_AGAIN: chrono::Duration = chrono::Duration::seconds(5);

/// Why a confirmation whose sending was cut off is not sent again.
const INTERRUPTED: &str = "the attempt sending the confirmation stopped midway; it may have been \
                           delivered, and it is not sent again so that it is never sent twice";

/// Sends the request's confirmation unless it was sent or found undeliverable, then
/// schedules the ledger entry. Running it again does nothing more. `attempt` is this job's
/// attempt, kept when it has to look again later.
pub async fn send(
    env: Env<'_>,
    keys: &Keys,
    mailer: &Mailer,
    request_id: Uuid,
    attempt: u32,
) -> AppResult<()> {
    loop {
        let request = find(env.db, request_id).await?;
        let pending = request.email_sent_at.is_none() && request.email_failed_at.is_none();
        let Some(sealed) = request.notify_email.as_deref().filter(|_| pending) else {
            break;
        };
        let owner = KeyOwner::Confirmation(request.id.clone());
        let Some(address_key) = env.vault.key(&env.db.conn, &owner).await? else {
            return undeliverable(env, request_id, "the address's key is gone").await;
        };
        let to = address_key.open(ADDRESS, sealed)?;
        let to = to.as_str();
        let now = env.now();
        match request.email_claimed_until {
            // Another attempt is sending it: look again shortly, through the outbox, instead
            // of waiting in a worker slot (two such waits held up every confirmation of a
            // worker for up to a minute).
            Some(until) if until >= now => {
                let tx = env.db.begin_write().await?;
                outbox::reschedule(
                    &tx,
                    JobKind::ConfirmationEmail,
                    request_id,
                    attempt,
                    Ord::min(until, now + LOOK_AGAIN),
                    "another attempt holds the lease",
                    now,
                )
                .await?;
                tx.commit().await?;
                return Ok(());
            }
            // A lease that ran out with the email neither sent nor given back: the attempt
            // that took it stopped while sending (a killed or crashed worker, or the database
            // lost before it could record the email as sent), and the email may have reached
            // the server. Sending again could send it twice; the deletion completes without
            // it instead, and the ledger entry says so.
            Some(_) => {
                tracing::warn!(%request_id, "an attempt stopped while sending the confirmation; not sending it again");
                return undeliverable(env, request_id, INTERRUPTED).await;
            }
            None => {}
        }
        if !claim(env, request_id, LEASE).await? {
            // Taken or sent since we looked: look again.
            continue;
        }
        let rid = request_id.to_string();
        let receipt = keys.receipt(&rid);
        let delivered = match stored_address(to)
            .and_then(|to| mailer.deletion_confirmation(&to, &rid, receipt.expose()))
        {
            // Named by request id: a re-run after a crash rewrites the same file.
            Ok(message) => mailer.send(message, &format!("deletion-{rid}")).await,
            Err(e) => Err(e),
        };
        match delivered {
            Ok(()) => {
                tracing::info!(%request_id, "confirmation email sent");
                break;
            }
            Err(e) if e.is_permanent() => {
                tracing::warn!(%request_id, error = %e, "confirmation cannot be delivered; completing without it");
                // A mail server's refusal may quote the address: it is not kept in the reason.
                let reason = e.to_string().replace(to, "<address>");
                return undeliverable(env, request_id, &reason).await;
            }
            Err(e) => {
                // Let the retry take the lease at once.
                release(env, request_id).await?;
                return Err(AppError::internal(e));
            }
        }
    }
    sent(env, request_id).await
}

/// Takes the lease on sending a request's confirmation for `lease`. False when the email has
/// been sent already or another worker holds an unexpired lease.
async fn claim(env: Env<'_>, request_id: Uuid, lease: chrono::Duration) -> AppResult<bool> {
    let now = env.now();
    let claimed = deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::EmailClaimedUntil,
            Expr::value(now + lease),
        )
        .filter(deletion_request::Column::Id.eq(request_id.to_string()))
        .filter(deletion_request::Column::EmailSentAt.is_null())
        .filter(
            deletion_request::Column::EmailClaimedUntil
                .is_null()
                .or(deletion_request::Column::EmailClaimedUntil.lt(now)),
        )
        .exec(&env.db.conn)
        .await?
        .rows_affected;
    Ok(claimed == 1)
}

async fn release(env: Env<'_>, request_id: Uuid) -> AppResult<()> {
    deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::EmailClaimedUntil,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .filter(deletion_request::Column::Id.eq(request_id.to_string()))
        .exec(&env.db.conn)
        .await?;
    Ok(())
}

/// Marks the confirmation as sent, forgets the address and schedules the ledger entry.
async fn sent(env: Env<'_>, request_id: Uuid) -> AppResult<()> {
    let now = env.now();
    let tx = env.db.begin_write().await?;
    deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::EmailSentAt,
            Expr::col(deletion_request::Column::EmailSentAt).if_null(now),
        )
        .col_expr(
            deletion_request::Column::NotifyEmail,
            Expr::value(Option::<String>::None),
        )
        .filter(deletion_request::Column::Id.eq(request_id.to_string()))
        .exec(&tx)
        .await?;
    env.vault
        .destroy(&tx, &KeyOwner::Confirmation(request_id.to_string()))
        .await?;
    outbox::add(&tx, JobKind::LedgerEntry, request_id, now).await?;
    tx.commit().await?;
    env.wake_relay();
    Ok(())
}

/// The confirmation cannot be delivered (the address or the mail server refused it for good):
/// record why, forget the address and schedule the ledger entry, which says so.
async fn undeliverable(env: Env<'_>, request_id: Uuid, reason: &str) -> AppResult<()> {
    let now = env.now();
    let tx = env.db.begin_write().await?;
    deletion_request::Entity::update_many()
        .col_expr(
            deletion_request::Column::EmailFailedAt,
            Expr::col(deletion_request::Column::EmailFailedAt).if_null(now),
        )
        .col_expr(
            deletion_request::Column::LastError,
            Expr::value(reason.to_owned()),
        )
        .col_expr(
            deletion_request::Column::NotifyEmail,
            Expr::value(Option::<String>::None),
        )
        .filter(deletion_request::Column::Id.eq(request_id.to_string()))
        .filter(deletion_request::Column::EmailSentAt.is_null())
        .exec(&tx)
        .await?;
    env.vault
        .destroy(&tx, &KeyOwner::Confirmation(request_id.to_string()))
        .await?;
    outbox::add(&tx, JobKind::LedgerEntry, request_id, now).await?;
    tx.commit().await?;
    env.wake_relay();
    Ok(())
}
