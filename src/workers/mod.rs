//! The apalis workers of the deletion pipeline (purge → confirmation email → ledger entry)
//! and the outbox relay that feeds them.

mod handlers;
pub mod relay;

use std::time::Duration;

use apalis::prelude::*;
use erasure_jobs::{Backend, JobKind};
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// Worker names must be unique per process and across restarts (apalis refuses a reused
/// name for a while), so each carries the pid and a random suffix.
fn worker_name(kind: JobKind) -> String {
    format!(
        "{}-{}-{}",
        kind.as_str(),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Registers the three workers on one backend's storages and runs them until `shutdown`.
/// A macro, not a generic function: each backend's storage is its own type, but the worker
/// set, the handlers and the shutdown are the same.
macro_rules! run_monitor {
    ($state:expr, $shutdown:expr, $purge:expr, $email:expr, $ledger:expr) => {{
        let poll = $state.settings.queue.poll_interval();
        let (purge_backend, email_backend, ledger_backend) = ($purge, $email, $ledger);
        let (s1, s2, s3) = ($state.clone(), $state.clone(), $state.clone());
        Monitor::new()
            .register(move |_| {
                WorkerBuilder::new(worker_name(JobKind::Purge))
                    .backend(purge_backend.clone().poll_with_interval(poll))
                    .data(s1.clone())
                    .build(handlers::purge)
            })
            .register(move |_| {
                WorkerBuilder::new(worker_name(JobKind::ConfirmationEmail))
                    .backend(email_backend.clone().poll_with_interval(poll))
                    .data(s2.clone())
                    .build(handlers::confirmation_email)
            })
            .register(move |_| {
                WorkerBuilder::new(worker_name(JobKind::LedgerEntry))
                    .backend(ledger_backend.clone().poll_with_interval(poll))
                    .data(s3.clone())
                    .build(handlers::ledger_entry)
            })
            // Jobs still running at SIGTERM get this long to finish; what is cut off is
            // redelivered after the heartbeat window and resumes (every job is idempotent).
            .shutdown_timeout(SHUTDOWN_GRACE)
            .run_with_signal(async move {
                $shutdown.cancelled().await;
                Ok(())
            })
            .await
    }};
}

pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Runs the three workers until `shutdown` fires, then lets running jobs finish.
pub async fn run(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    match state.queue.backend().clone() {
        Backend::Sqlite(q) => run_monitor!(state, shutdown, q.purge, q.email, q.ledger)?,
        Backend::Redis(q) => run_monitor!(state, shutdown, q.purge, q.email, q.ledger)?,
    }
    Ok(())
}
