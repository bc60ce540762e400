//! The apalis workers of the deletion pipeline (purge → confirmation email → ledger entry),
//! the notices to account holders, and the outbox relay that feeds them.

mod handlers;
pub mod relay;

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use apalis::prelude::*;
use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
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

/// Registers the four workers on one backend's storages and runs them until `shutdown`.
/// A macro, not a generic function: each backend's storage is its own type, but the worker
/// set, the handlers and the shutdown are the same.
macro_rules! run_monitor {
    ($state:expr, $shutdown:expr, $purge:expr, $email:expr, $ledger:expr, $notification:expr) => {{
        let poll = $state.settings.queue.poll_interval();
        let concurrency = $state.settings.queue.concurrency;
        let (purge_backend, email_backend, ledger_backend, notification_backend) =
            ($purge, $email, $ledger, $notification);
        let (s1, s2, s3, s4) = ($state.clone(), $state.clone(), $state.clone(), $state.clone());
        Monitor::new()
            .register(move |_| {
                WorkerBuilder::new(worker_name(JobKind::Purge))
                    .backend(purge_backend.clone().poll_with_strategy(PollEvery::new(poll)))
                    .data(s1.clone())
                    .concurrency(concurrency)
                    .build(handlers::purge)
            })
            .register(move |_| {
                WorkerBuilder::new(worker_name(JobKind::ConfirmationEmail))
                    .backend(email_backend.clone().poll_with_strategy(PollEvery::new(poll)))
                    .data(s2.clone())
                    .concurrency(concurrency)
                    .build(handlers::confirmation_email)
            })
            .register(move |_| {
                WorkerBuilder::new(worker_name(JobKind::LedgerEntry))
                    .backend(ledger_backend.clone().poll_with_strategy(PollEvery::new(poll)))
                    .data(s3.clone())
                    .concurrency(concurrency)
                    .build(handlers::ledger_entry)
            })
            .register(move |_| {
                WorkerBuilder::new(worker_name(JobKind::Notification))
                    .backend(notification_backend.clone().poll_with_strategy(PollEvery::new(poll)))
                    .data(s4.clone())
                    .concurrency(concurrency)
                    .build(handlers::notification)
            })
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

/// Runs the four workers until `shutdown` fires, then lets running jobs finish.
pub async fn run(state: AppState, shutdown: CancellationToken) -> anyhow::Result<()> {
    match state.queue.backend().clone() {
        Backend::Sqlite(q) => run_monitor!(state, shutdown, q.purge, q.email, q.ledger, q.notification)?,
        Backend::Redis(q) => run_monitor!(state, shutdown, q.purge, q.email, q.ledger, q.notification)?,
    }
    Ok(())
}
