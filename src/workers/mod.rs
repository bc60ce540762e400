//! The apalis workers of the deletion pipeline (purge → confirmation email → ledger entry),
//! the notices to account holders, and the outbox relay that feeds them.

pub mod handlers;
pub mod mailbox;
pub mod relay;
pub mod restore_guard;

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use apalis::prelude::*;
use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
use apalis_cron::CronScheduler;
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use erasure_jobs::{
    AdvanceBulkRun, Backend, BuildExport, Job, JobKind, NotifyProcessor, PurgeAccount, RecordLedgerEntry,
    SendConfirmation, SendNotification,
};
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

/// Wakes an idle worker every `interval` to look for jobs.
///
/// apalis 1.0's own `poll_with_interval` replaces its timer when it fires without polling the
/// new one, so nothing is armed to wake the worker again if that same poll ends with an empty
/// fetch (a fetch slower than the interval, as when SQLite writers queue): the worker then
/// sleeps until its next heartbeat (`queue.heartbeat_interval_secs`). Measured with the bench:
/// 20 deletions took 4–9 s with a 5 s heartbeat, 20–39 s with a 20 s one. This strategy polls
/// each new timer at once, so one is always armed.
#[derive(Debug)]
pub struct PollEvery {
    interval: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl PollEvery {
    pub fn new(interval: Duration) -> Self {
        Self {
            // A zero interval would be ready forever.
            interval: interval.max(Duration::from_millis(1)),
            timer: None,
        }
    }
}

impl Clone for PollEvery {
    fn clone(&self) -> Self {
        Self::new(self.interval)
    }
}

impl PollStrategy for PollEvery {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let interval = self.interval;
        let mut ticked = false;
        loop {
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
            match timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    ticked = true;
                    self.timer = None;
                }
                // The next tick is armed with this waker.
                Poll::Pending => {
                    return if ticked {
                        Poll::Ready(Some(()))
                    } else {
                        Poll::Pending
                    };
                }
            }
        }
    }
}

/// Every kind of job and its handler: adding a kind is its payload in `erasure_jobs`' registry
/// and one line here. Each kind gets its worker on whichever backend runs.
macro_rules! every_job {
    ($register:ident) => {
        $register!(PurgeAccount, handlers::purge);
        $register!(SendConfirmation, handlers::confirmation_email);
        $register!(RecordLedgerEntry, handlers::ledger_entry);
        $register!(SendNotification, handlers::notification);
        $register!(NotifyProcessor, handlers::processor_notice);
        $register!(BuildExport, handlers::export);
        $register!(AdvanceBulkRun, handlers::bulk_deletion);
    };
}

/// The kinds `every_job!` registers (checked against the registry by a test).
#[cfg(test)]
fn registered_kinds() -> Vec<JobKind> {
    let mut kinds = Vec::new();
    macro_rules! kind_of {
        ($payload:ident, $handler:path) => {
            kinds.push(<$payload as Job>::KIND)
        };
    }
    every_job!(kind_of);
    kinds
}

/// Registers a worker for every kind on one backend and runs them until `shutdown`. A macro,
/// not a generic function: each backend's storage is its own type (`$storage!(Payload)` builds
/// one), but the worker set, the handlers and the shutdown are the same.
macro_rules! run_monitor {
    ($state:expr, $shutdown:expr, $storage:ident) => {{
        let poll = $state.settings.queue.poll_interval();
        let mut monitor = Monitor::new();
        macro_rules! register {
            ($payload:ident, $handler:path) => {{
                let backend = $storage!($payload);
                let state = $state.clone();
                let concurrency = concurrency_of(<$payload as Job>::KIND, &state);
                monitor = monitor.register(move |_| {
                    WorkerBuilder::new(worker_name(<$payload as Job>::KIND))
                        .backend(backend.clone().poll_with_strategy(PollEvery::new(poll)))
                        .data(state.clone())
                        .concurrency(concurrency)
                        .build($handler)
                });
            }};
        }
        every_job!(register);
        {
            let state = $state.clone();
            let schedule = $state.settings.support.clock_schedule()?;
            monitor = monitor.register(move |_| {
                WorkerBuilder::new(format!("ticket-clock-{}", std::process::id()))
                    .backend(CronScheduler::new(schedule.clone()))
                    .data(state.clone())
                    .build(handlers::ticket_clock)
            });
            let state = $state.clone();
            let schedule = $state.settings.audit.head_schedule()?;
            monitor = monitor.register(move |_| {
                WorkerBuilder::new(format!("log-head-{}", std::process::id()))
                    .backend(CronScheduler::new(schedule.clone()))
                    .data(state.clone())
                    .build(handlers::log_head)
            });
            let state = $state.clone();
            let schedule = $state.settings.keys.rotation_schedule()?;
            monitor = monitor.register(move |_| {
                WorkerBuilder::new(format!("key-rotation-{}", std::process::id()))
                    .backend(CronScheduler::new(schedule.clone()))
                    .data(state.clone())
                    .build(handlers::rotate_keys)
            });
        }
        monitor
            // A worker the queue gave up on (missed heartbeats under load, a lost connection)
            // fails its next fetch or ack; it comes back under a new name instead of leaving
            // the process running without it. Its jobs were handed to others meanwhile.
            .should_restart(|worker, error| {
                tracing::warn!(worker = worker.name(), %error, "worker failed; restarting it");
                true
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

/// Ledger jobs one SQLite worker process runs at once, at least.
const LEDGER_WAITERS: usize = 32;

/// Jobs of a kind one worker process runs at once: `queue.concurrency`, except ledger jobs on
/// SQLite. Each of those first waits, holding no connection, for a checkpoint that starts
/// after it asked (`Database::checkpoint`): the ones that arrive while one runs share the
/// next, which two at a time could not.
fn concurrency_of(kind: JobKind, state: &AppState) -> usize {
    let configured = state.settings.queue.concurrency;
    if kind == JobKind::LedgerEntry && state.db.backend() == sea_orm::DbBackend::Sqlite {
        configured.max(LEDGER_WAITERS)
    } else {
        configured
    }
}

/// Runs a worker for every kind of job until `shutdown` fires, then lets running jobs finish.
pub async fn run(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    // The clock's first tick may be a day away: today's reading is taken now if missing.
    if let Err(e) = crate::services::tickets::record_day(state.env()).await {
        tracing::warn!(error = %e.detail(), "ticket clock not recorded at start");
    }
    if let Err(e) =
        crate::services::ledger::log::sign_head(&state.db, &state.log_signer, state.clock.now()).await
    {
        tracing::warn!(error = %e.detail(), "tree head not signed at start");
    }
    let options = state.queue.options().clone();
    match state.queue.backend().clone() {
        Backend::Sqlite { pool, .. } => {
            macro_rules! sqlite_storage {
                ($payload:ident) => {
                    SqliteStorage::<$payload>::new(&pool)
                        .with_config(options.sqlite_config(<$payload as Job>::KIND))
                };
            }
            run_monitor!(state, shutdown, sqlite_storage)?
        }
        Backend::Redis { conn, .. } => {
            macro_rules! redis_storage {
                ($payload:ident) => {
                    RedisStorage::<$payload>::new(conn.clone())
                        .with_config(options.redis_config(<$payload as Job>::KIND))
                };
            }
            run_monitor!(state, shutdown, redis_storage)?
        }
    }
    Ok(())
}

/// Seals what was written before encryption, if anything is (`services::seal_existing`).
pub async fn seal_existing(state: AppState, stop: CancellationToken) {
    if !state.settings.keys.seal_in_background {
        return;
    }
    let env = state.env();
    match crate::services::seal_existing::needed(env).await {
        Ok(false) => return,
        Ok(true) => {}
        Err(e) => {
            tracing::warn!(error = %e.detail(), "could not tell whether rows are left to seal");
            return;
        }
    }
    tracing::info!("sealing rows written before encryption");
    let data_dir = state.settings.storage.data_dir.clone();
    let run = crate::services::seal_existing::seal_all(env, &data_dir, &|_, _| {});
    tokio::select! {
        outcome = run => match outcome {
            Ok(report) => tracing::info!(rows = report.rows, files = report.files, "rows written before encryption sealed"),
            Err(e) => tracing::warn!(error = %e.detail(), "sealing rows written before encryption stopped; the next start resumes it"),
        },
        () = stop.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_in_the_registry_has_a_worker() {
        let mut registered = super::registered_kinds();
        registered.sort();
        assert_eq!(registered, erasure_jobs::JobKind::ALL);
    }
}
