//! The outbox relay: moves committed outbox rows onto the queue. Woken right after a commit
//! in this process, and polls for rows written by other processes. It holds back while a
//! queue's backlog is at `queue.max_backlog`.

use tokio_util::sync::CancellationToken;

use crate::{
    services::{notifications, outbox, tickets, watchdog},
    state::AppState,
    throttle,
};

const BATCH: u64 = 100;

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let interval = state.settings.queue.relay_interval();
    let max_backlog = state.settings.queue.max_backlog;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let pass = outbox::relay_batch(&state.db, &state.queue, state.clock.now(), BATCH, max_backlog).await;
        let delivered = match pass {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e.detail(), "outbox relay pass failed");
                0
            }
        };
        if delivered > 0 {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = state.outbox_written.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Every `queue.vacuum_interval_secs`: sends again the steps a queue lost (see
/// `services::watchdog`), and removes finished jobs, relayed outbox rows and sent notices older
/// than `queue.retention_hours`, forgotten throttle counters and ended re-registration blocks, so neither the database nor
/// Redis grows without bound; erases decided tickets past `support.retention_days`, and prunes
/// ledger entries past `audit.retention_days`.
pub async fn vacuum(state: AppState, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(state.settings.queue.vacuum_interval()) => {}
        }
        let now = state.clock.now();
        let stall_after = chrono::Duration::seconds(
            i64::try_from(state.settings.queue.stall_after_secs).unwrap_or(i64::MAX),
        );
        let horizon =
            chrono::Duration::hours(i64::try_from(state.settings.queue.retention_hours).unwrap_or(24));
        match watchdog::redeliver_stalled(&state.db, now, stall_after, horizon).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(steps = n, "stalled steps sent again");
                state.outbox_written.notify_one();
            }
            Err(e) => tracing::warn!(error = %e.detail(), "stalled-step check failed"),
        }
        match vacuum_once(&state).await {
            Ok((jobs, rows)) => tracing::info!(jobs, outbox_rows = rows, "queue vacuumed"),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "queue vacuum failed"),
        }
    }
}

pub async fn vacuum_once(state: &AppState) -> anyhow::Result<(u64, u64)> {
    let jobs = state.queue.vacuum().await?;
    // Bounded by the configuration check, so neither conversion nor subtraction can overflow.
    let retention = chrono::Duration::from_std(state.queue.options().retention)?;
    let now = state.clock.now();
    let rows = outbox::vacuum(&state.db, now - retention).await?;
    notifications::vacuum(&state.db, now - retention).await?;
    throttle::vacuum(&state.db, now).await?;
    crate::services::reuse::vacuum(&state.db, now).await?;
    crate::services::takeout::vacuum(&state.db, &state.settings.storage.data_dir, now).await?;
    let ticket_retention = chrono::Duration::days(i64::from(state.settings.support.retention_days));
    tickets::sweep(state.env(), now - ticket_retention).await?;
    let ledger_retention = chrono::Duration::days(i64::from(state.settings.audit.retention_days));
    let pruned = crate::services::ledger::prune::prune(&state.db, now - ledger_retention, now).await?;
    if pruned > 0 {
        tracing::info!(entries = pruned, "ledger entries past retention pruned");
    }
    Ok((jobs, rows))
}
