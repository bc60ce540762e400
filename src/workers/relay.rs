//! The outbox relay: moves committed outbox rows onto the queue. Woken right after a commit
//! in this process, and polls for rows written by other processes. It holds back while a
//! queue's backlog is at `queue.max_backlog`.

use tokio_util::sync::CancellationToken;

use crate::{services::outbox, state::AppState};

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
                tracing::warn!(error = %e, "outbox relay pass failed");
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

/// Removes finished jobs and relayed outbox rows older than `queue.retention_hours`, every
/// `queue.vacuum_interval_secs`, so neither the database nor Redis grows without bound.
pub async fn vacuum(state: AppState, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(state.settings.queue.vacuum_interval()) => {}
        }
        match vacuum_once(&state).await {
            Ok((jobs, rows)) => tracing::info!(jobs, outbox_rows = rows, "queue vacuumed"),
            Err(e) => tracing::warn!(error = %e, "queue vacuum failed"),
        }
    }
}

pub async fn vacuum_once(state: &AppState) -> anyhow::Result<(u64, u64)> {
    let jobs = state.queue.vacuum().await?;
    // Bounded by the configuration check, so neither conversion nor subtraction can overflow.
    let retention = chrono::Duration::from_std(state.queue.options().retention)?;
    let rows = outbox::vacuum(&state.db, state.clock.now() - retention).await?;
    Ok((jobs, rows))
}
