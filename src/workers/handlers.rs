//! Job handlers. Each is idempotent: running a job twice leaves the same end state.
//!
//! Retries are ours, the same on every backend, and never a sleep: a failed attempt schedules
//! the next one through the outbox (a new job the relay pushes once its backoff has passed)
//! and is acknowledged, so a failing job never holds a worker slot while it waits. The last
//! allowed attempt records the job as dead (in our database, with its error) and, for a step
//! of a deletion, marks the request `failed`.

use std::time::Instant;

use apalis::prelude::{BoxDynError, Data};
use erasure_jobs::{JobKind, PurgeAccount, RecordLedgerEntry, SendConfirmation, SendNotification};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    services::{dead_jobs, deletion, ledger, mail, notifications, outbox, purge},
    state::AppState,
};

/// How long one worker may hold the sending of a confirmation before another may take over.
const EMAIL_LEASE_SECS: i64 = 60;

pub async fn purge(job: PurgeAccount, state: Data<AppState>) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    let started = Instant::now();
    let outcome = purge::run(&state, request_id).await.map(|outcome| {
        tracing::info!(%request_id, ?outcome, "purge finished");
    });
    conclude(
        &state,
        JobKind::Purge,
        request_id,
        job.attempt(),
        started,
        outcome,
    )
    .await
}

pub async fn confirmation_email(job: SendConfirmation, state: Data<AppState>) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    let started = Instant::now();
    let outcome = send_confirmation(&state, request_id).await;
    conclude(
        &state,
        JobKind::ConfirmationEmail,
        request_id,
        job.attempt(),
        started,
        outcome,
    )
    .await
}

pub async fn ledger_entry(job: RecordLedgerEntry, state: Data<AppState>) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    let started = Instant::now();
    let outcome = ledger::record_deletion(&state.db, &state.keys, state.clock.as_ref(), request_id)
        .await
        .map(|()| {
            tracing::info!(%request_id, "deletion recorded in the ledger");
        });
    conclude(
        &state,
        JobKind::LedgerEntry,
        request_id,
        job.attempt(),
        started,
        outcome,
    )
    .await
}

pub async fn notification(job: SendNotification, state: Data<AppState>) -> Result<(), BoxDynError> {
    let id = job.notification_id();
    let started = Instant::now();
    let outcome = notifications::send(&state, id).await;
    conclude(&state, JobKind::Notification, id, job.attempt(), started, outcome).await
}

async fn send_confirmation(state: &AppState, request_id: Uuid) -> AppResult<()> {
    let lease = chrono::Duration::seconds(EMAIL_LEASE_SECS);
    loop {
        let request = deletion::find(state, request_id).await?;
        let pending = request.email_sent_at.is_none() && request.email_failed_at.is_none();
        let Some(to) = request.notify_email.as_deref().filter(|_| pending) else {
            break;
        };
        // Two workers can be handed the same job (a redelivery after a missed heartbeat):
        // only the lease holder sends; the other waits for it to finish or its lease to end.
        if !deletion::claim_confirmation(state, request_id, lease).await? {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        let rid = request_id.to_string();
        let receipt = state.keys.receipt(&rid);
        let sent = match mail::stored_address(to) {
            Ok(to) => match mail::deletion_confirmation(&state.settings, &to, &rid, receipt.expose()) {
                // Named by request id: a re-run after a crash rewrites the same file.
                Ok(message) => state.mailer.send(message, &format!("deletion-{rid}")).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => {
                tracing::info!(%request_id, "confirmation email sent");
                break;
            }
            // Erasure does not wait on a mailbox: the deletion completes, and its ledger
            // entry records that the confirmation could not be sent.
            Err(e) if e.is_permanent() => {
                tracing::warn!(%request_id, error = %e, "confirmation cannot be delivered; completing without it");
                return deletion::confirmation_undeliverable(state, request_id, &e.to_string()).await;
            }
            Err(e) => {
                // Let the retry take the lease at once.
                deletion::release_confirmation(state, request_id).await?;
                return Err(AppError::internal(e));
            }
        }
    }
    deletion::confirmation_sent(state, request_id).await
}

/// Records how an attempt ended: nothing on success; otherwise the next attempt scheduled
/// after its backoff, or, after the last allowed one, the job dead. Only when even that cannot
/// be written (the database is down) is the job handed back to the backend to run again.
async fn conclude(
    state: &AppState,
    kind: JobKind,
    id: Uuid,
    attempt: u32,
    started: Instant,
    outcome: AppResult<()>,
) -> Result<(), BoxDynError> {
    state
        .metrics
        .job_finished(kind, started.elapsed(), outcome.is_ok());
    let Err(e) = outcome else {
        return Ok(());
    };
    let detail = match &e {
        AppError::Internal(cause) | AppError::Unavailable(cause) => format!("{cause:#}"),
        other => other.to_string(),
    };
    let now = state.clock.now();
    let n = usize::try_from(attempt).unwrap_or(usize::MAX);
    if n >= state.settings.queue.max_attempts {
        dead_jobs::died(&state.db, kind, id, n, &detail, now).await?;
        tracing::error!(id = %id, job = kind.as_str(), attempt, error = %detail, "job is dead");
        return Ok(());
    }
    let backoff = state.settings.queue.retry_backoff(n);
    let not_before = now + chrono::Duration::from_std(backoff).unwrap_or(chrono::Duration::MAX);
    let tx = state.db.begin_write().await?;
    outbox::reschedule(&tx, kind, id, attempt + 1, not_before, &detail, now).await?;
    if kind.is_deletion_step() {
        deletion::note_error(&tx, id, &detail).await?;
    }
    tx.commit().await?;
    tracing::warn!(
        id = %id,
        job = kind.as_str(),
        attempt,
        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
        error = %detail,
        "job failed; retry scheduled"
    );
    Ok(())
}
