//! Job handlers. Each is idempotent: running a job twice leaves the same end state.

use apalis::prelude::{Attempt, BoxDynError, Data};
use erasure_jobs::{PurgeAccount, RecordLedgerEntry, SendConfirmation};

use crate::{
    error::AppError,
    services::{deletion, ledger, mail, purge},
    state::AppState,
};

/// apalis counts the run in progress: the first run is attempt 1.
fn last_attempt(state: &AppState, attempt: &Attempt) -> bool {
    attempt.current() >= state.settings.queue.max_attempts
}

pub async fn purge(job: PurgeAccount, state: Data<AppState>, attempt: Attempt) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    match purge::run(&state, request_id).await {
        Ok(outcome) => {
            tracing::info!(%request_id, ?outcome, "purge finished");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(%request_id, error = %e, attempt = attempt.current(), "purge failed");
            let detail = match &e {
                AppError::Internal(cause) => format!("{cause:#}"),
                other => other.to_string(),
            };
            purge::record_failure(&state, request_id, &detail, last_attempt(&state, &attempt)).await?;
            Err(e.into())
        }
    }
}

pub async fn confirmation_email(job: SendConfirmation, state: Data<AppState>) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    let request = deletion::find(&state, request_id).await?;
    if request.email_sent_at.is_none()
        && let Some(to) = request.notify_email.as_deref()
    {
        let rid = request_id.to_string();
        let receipt = state.keys.receipt(&rid);
        let message = mail::deletion_confirmation(&state.settings, to, &rid, receipt.expose())?;
        // Named by request id: a re-run after a crash rewrites the same file.
        state.mailer.send(message, &format!("deletion-{rid}")).await?;
        tracing::info!(%request_id, "confirmation email sent");
    }
    deletion::confirmation_sent(&state, request_id).await?;
    Ok(())
}

pub async fn ledger_entry(job: RecordLedgerEntry, state: Data<AppState>) -> Result<(), BoxDynError> {
    let request_id = job.request_id();
    ledger::record_deletion(&state, request_id).await?;
    tracing::info!(%request_id, "deletion recorded in the ledger");
    Ok(())
}
