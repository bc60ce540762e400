//! Job handlers. Each is idempotent: running a job twice leaves the same end state.
//!
//! Retries are ours, the same on every backend: a failed attempt waits its backoff and goes
//! back to the queue; the last allowed attempt records the job as dead (in our database, with
//! its error) and acknowledges it, so no backend keeps retrying on its own schedule.

use std::time::Instant;

use apalis::prelude::{Attempt, BoxDynError, Data};
use erasure_jobs::{JobKind, PurgeAccount, RecordLedgerEntry, SendConfirmation};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    services::{dead_jobs, deletion, ledger, mail, purge},
    state::AppState,
};

/// How long one worker may hold the sending of a confirmation before another may take over.
const EMAIL_LEASE_SECS: i64 = 60;

pub async fn purge(job: PurgeAccount, state: Data<AppState>, attempt: Attempt) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    let started = Instant::now();
    let outcome = purge::run(&state, request_id).await.map(|outcome| {
        tracing::info!(%request_id, ?outcome, "purge finished");
    });
    conclude(&state, JobKind::Purge, request_id, &attempt, started, outcome).await
}

pub async fn confirmation_email(
    job: SendConfirmation,
    state: Data<AppState>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    let started = Instant::now();
    let outcome = send_confirmation(&state, request_id).await;
    conclude(
        &state,
        JobKind::ConfirmationEmail,
        request_id,
        &attempt,
        started,
        outcome,
    )
    .await
}

pub async fn ledger_entry(
    job: RecordLedgerEntry,
    state: Data<AppState>,
    attempt: Attempt,
) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    let started = Instant::now();
    let outcome = ledger::record_deletion(&state, request_id).await.map(|()| {
        tracing::info!(%request_id, "deletion recorded in the ledger");
    });
    conclude(
        &state,
        JobKind::LedgerEntry,
        request_id,
        &attempt,
        started,
        outcome,
    )
    .await
}

async fn send_confirmation(state: &AppState, request_id: Uuid) -> AppResult<()> {
    let lease = chrono::Duration::seconds(EMAIL_LEASE_SECS);
    loop {
        let request = deletion::find(state, request_id).await?;
        let Some(to) = request
            .notify_email
            .as_deref()
            .filter(|_| request.email_sent_at.is_none())
        else {
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
        let message = mail::deletion_confirmation(&state.settings, to, &rid, receipt.expose())
            .map_err(AppError::internal)?;
        // Named by request id: a re-run after a crash rewrites the same file.
        if let Err(e) = state.mailer.send(message, &format!("deletion-{rid}")).await {
            // Let the retry take the lease at once.
            deletion::release_confirmation(state, request_id).await?;
            return Err(AppError::internal(e));
        }
        tracing::info!(%request_id, "confirmation email sent");
        break;
    }
    deletion::confirmation_sent(state, request_id).await
}

/// apalis counts the run in progress: the first run is attempt 1.
async fn conclude(
    state: &AppState,
    kind: JobKind,
    request_id: Uuid,
    attempt: &Attempt,
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
        AppError::Internal(cause) => format!("{cause:#}"),
        other => other.to_string(),
    };
    let n = attempt.current();
    let last = n >= state.settings.queue.max_attempts;
    if kind == JobKind::Purge {
        purge::record_failure(state, request_id, &detail, last).await?;
    }
    if last {
        dead_jobs::record(&state.db, kind, request_id, n, &detail, state.clock.now()).await?;
        tracing::error!(%request_id, job = kind.as_str(), attempt = n, error = %detail, "job is dead");
        return Ok(());
    }
    tracing::warn!(%request_id, job = kind.as_str(), attempt = n, error = %detail, "job failed; will retry");
    tokio::time::sleep(state.settings.queue.retry_backoff(n)).await;
    Err(e.into())
}
