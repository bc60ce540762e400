//! Job handlers. Each is idempotent: running a job twice leaves the same end state.
//!
//! Retries are ours, the same on every backend, and never a sleep: a failed attempt schedules
//! the next one through the outbox (a new job the relay pushes once its backoff has passed)
//! and is acknowledged, so a failing job never holds a worker slot while it waits. The last
//! allowed attempt records the job as dead (in our database, with its error) and, for a step
//! of a deletion, marks the request `failed`.

use std::time::Instant;

use apalis::prelude::{BoxDynError, Data};
use erasure_jobs::{
    AdvanceBulkRun, BuildExport, Job, JobKind, NotifyProcessor, PurgeAccount, RecordLedgerEntry,
    SendConfirmation, SendNotification,
};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    services::{
        bulk, dead_jobs,
        deletion::{self, confirmation},
        ledger, notifications, outbox, processors, purge, restore_guard, takeout,
    },
    state::AppState,
};

/// The daily tick of the regulatory clock (apalis-cron): idempotent per day, since every
/// replica's scheduler ticks.
pub async fn ticket_clock(_tick: apalis_cron::Tick, state: Data<AppState>) -> Result<(), BoxDynError> {
    crate::services::tickets::record_day(state.env())
        .await
        .map(|_| ())
        .map_err(|e| e.detail().into())
}

/// Signs a tree head for whatever the ledger holds now (nothing new: no new head).
pub async fn log_head(_tick: apalis_cron::Tick, state: Data<AppState>) -> Result<(), BoxDynError> {
    ledger::log::sign_head(&state.db, &state.log_signer, state.clock.now())
        .await
        .map(|_| ())
        .map_err(|e| e.detail().into())
}

/// Wraps the live data keys under the new epoch's key and destroys the old ones, once per
/// epoch (`vault::rotation`): every replica ticks, and a run with nothing to do is a no-op.
pub async fn rotate_keys(_tick: apalis_cron::Tick, state: Data<AppState>) -> Result<(), BoxDynError> {
    let report = crate::vault::rotation::rotate(
        &state.db,
        &state.vault,
        state.clock.now(),
        crate::vault::rotation::SETTLE,
    )
    .await
    .map_err(|e| -> BoxDynError { e.detail().into() })?;
    if report.rewrapped > 0 || !report.destroyed.is_empty() {
        tracing::info!(epoch = report.epoch, rewrapped = report.rewrapped, destroyed = ?report.destroyed, "data keys rotated");
    }
    Ok(())
}

pub async fn purge(job: PurgeAccount, state: Data<AppState>) -> Result<(), BoxDynError> {
    let request_id = job.id();
    let started = Instant::now();
    let outcome = match purge::run(state.env(), &state.purge_plan, request_id).await {
        // Pushed before its time: put back, to be pushed again when the grace period ends.
        Ok(purge::PurgeOutcome::NotDue(at)) => {
            tracing::warn!(%request_id, purge_after = %at, "purge job arrived before its grace period ended; held back");
            outbox::hold_until(
                &state.db,
                JobKind::Purge,
                request_id,
                job.attempt(),
                at,
                state.clock.now(),
            )
            .await
        }
        Ok(outcome) => {
            tracing::info!(%request_id, ?outcome, "purge finished");
            Ok(())
        }
        Err(e) => Err(e),
    };
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
    let request_id = job.id();
    let attempt = job.attempt();
    let started = Instant::now();
    // On its own task: apalis drops a worker's running jobs when the worker fails (a lost
    // Redis connection, a missed heartbeat), and a send cut off there would leave its lease
    // behind, the email perhaps delivered, and so never sent again. Spawned, the send and its
    // record run to their end whatever happens to the job.
    let sending = (*state).clone();
    let outcome = tokio::spawn(async move {
        confirmation::send(sending.env(), &sending.keys, &sending.mailer, request_id, attempt).await
    })
    .await
    .unwrap_or_else(|e| Err(AppError::internal(e)));
    conclude(
        &state,
        JobKind::ConfirmationEmail,
        request_id,
        attempt,
        started,
        outcome,
    )
    .await
}

/// Appends the deletion's ledger entry (with those of the other deletions ready for theirs),
/// in one transaction with the processors' notices and a signed tree head, then journals the
/// tombstones outside the database.
pub async fn record_deletion(state: &AppState, request_id: Uuid) -> AppResult<()> {
    let processors = state.processors.clone();
    let complete = ledger::on_completion(move |tx, rid, now| {
        let processors = processors.clone();
        Box::pin(async move { processors::offer_in(tx, &processors, rid, now).await })
    });
    let recorder = ledger::Recorder {
        keys: &state.keys,
        signer: &state.log_signer,
        clock: state.clock.as_ref(),
        declared: &state.purge_plan.map.retained,
        on_completion: &complete,
    };
    let recorded = ledger::record_deletion(&state.db, recorder, request_id).await?;
    // Empty when recorded earlier (a redelivered job, or another job's batch): journaled then,
    // or written in from the ledger by the next start-up's look (`restore_guard::inspect`) if
    // a crash came between.
    if !recorded.is_empty() {
        // A file append and its fsync: off the async threads.
        let tombstones = state.vault.tombstones().clone();
        tokio::task::spawn_blocking(move || restore_guard::journal(&tombstones, &recorded))
            .await
            .map_err(AppError::internal)??;
    }
    Ok(())
}

pub async fn ledger_entry(job: RecordLedgerEntry, state: Data<AppState>) -> Result<(), BoxDynError> {
    let request_id = job.id();
    let started = Instant::now();
    let outcome = record_deletion(&state, request_id).await.map(|()| {
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

pub async fn processor_notice(job: NotifyProcessor, state: Data<AppState>) -> Result<(), BoxDynError> {
    let id = job.id();
    let started = Instant::now();
    let sender = processors::Sender {
        keys: &state.keys,
        client: &state.http_client,
        processors: &state.processors,
    };
    let outcome = processors::deliver(state.env(), sender, id).await;
    conclude(
        &state,
        JobKind::ProcessorNotice,
        id,
        job.attempt(),
        started,
        outcome,
    )
    .await
}

pub async fn export(job: BuildExport, state: Data<AppState>) -> Result<(), BoxDynError> {
    let id = job.id();
    let started = Instant::now();
    let builder = takeout::Builder {
        data_dir: &state.settings.storage.data_dir,
        ttl: state.settings.export.ttl(),
    };
    let outcome = takeout::build(state.env(), builder, id).await;
    conclude(&state, JobKind::Export, id, job.attempt(), started, outcome).await
}

/// One batch of a bulk run; the run's job is put back until the run is finished.
pub async fn bulk_deletion(job: AdvanceBulkRun, state: Data<AppState>) -> Result<(), BoxDynError> {
    let id = job.id();
    let started = Instant::now();
    let outcome = async {
        let run = bulk::advance(state.env(), &state.keys, id, state.grace(), BULK_BATCH).await?;
        if run.finished_at.is_none() {
            let now = state.clock.now();
            outbox::hold_until(&state.db, JobKind::BulkDeletion, id, job.attempt(), now, now).await?;
            state.outbox_written.notify_one();
        }
        Ok(())
    }
    .await;
    conclude(&state, JobKind::BulkDeletion, id, job.attempt(), started, outcome).await
}

/// Accounts a bulk run opens per job: a job stays short, and other work interleaves.
const BULK_BATCH: u64 = 500;

pub async fn notification(job: SendNotification, state: Data<AppState>) -> Result<(), BoxDynError> {
    let id = job.id();
    let started = Instant::now();
    let sender = notifications::Sender {
        keys: &state.keys,
        mailer: &state.mailer,
        reset_ttl: state.settings.security.password_reset_ttl(),
        verification_ttl: chrono::Duration::hours(i64::from(state.settings.support.verification_link_hours)),
        export_ttl: state.settings.export.ttl(),
    };
    let outcome = notifications::send(state.env(), sender, id).await;
    conclude(&state, JobKind::Notification, id, job.attempt(), started, outcome).await
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
        match kind {
            JobKind::ProcessorNotice => processors::died(&state.db.conn, id, now).await?,
            JobKind::Export => takeout::died(&state.db, id, now).await?,
            _ => {}
        }
        if kind.is_deletion_step() {
            // What a purge overwrote before it failed leaves the WAL now, not at the next
            // completion's checkpoint.
            state.db.checkpoint().await?;
        }
        tracing::error!(id = %id, job = kind.as_str(), attempt, error = %detail, "job is dead");
        return Ok(());
    }
    let backoff = state.settings.queue.retry_backoff(n);
    let not_before = now + chrono::Duration::from_std(backoff).unwrap_or(chrono::Duration::MAX);
    let tx = state.db.begin_write().await?;
    outbox::reschedule(&tx, kind, id, attempt + 1, not_before, &detail, now).await?;
    if kind.is_deletion_step() {
        deletion::failure::note_error(&tx, id, &detail).await?;
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
