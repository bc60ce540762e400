//! The apalis workers of the deletion pipeline (purge → confirmation email → ledger entry)
//! and the outbox relay that feeds them.

mod handlers;
pub mod relay;

use std::time::Duration;

use apalis::prelude::*;
use apalis_sqlite::SqliteStorage;
use erasure_jobs::{JobKind, PurgeAccount, RecordLedgerEntry, SendConfirmation};
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

/// Runs the three workers until `shutdown` fires, then lets running jobs finish.
pub async fn run(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Some(pool) = state.db.sqlite_pool().cloned() else {
        anyhow::bail!("the queue needs queue.url (redis) when the database is not SQLite");
    };
    let options = state.queue.options().clone();
    let poll = state.settings.queue.poll_interval();
    let purge_backend =
        SqliteStorage::<PurgeAccount>::new(&pool).with_config(options.sqlite_config(JobKind::Purge));
    let email_backend = SqliteStorage::<SendConfirmation>::new(&pool)
        .with_config(options.sqlite_config(JobKind::ConfirmationEmail));
    let ledger_backend = SqliteStorage::<RecordLedgerEntry>::new(&pool)
        .with_config(options.sqlite_config(JobKind::LedgerEntry));
    let (s1, s2, s3) = (state.clone(), state.clone(), state.clone());
    let monitor = Monitor::new()
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
        .shutdown_timeout(Duration::from_secs(30));
    monitor
        .run_with_signal(async move {
            shutdown.cancelled().await;
            Ok(())
        })
        .await?;
    Ok(())
}
