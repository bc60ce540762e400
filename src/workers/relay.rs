//! The outbox relay: moves committed outbox rows onto the queue. Woken right after a commit
//! in this process, and polls for rows written by other processes.

use tokio_util::sync::CancellationToken;

use crate::{services::outbox, state::AppState};

const BATCH: u64 = 100;

pub async fn run(state: AppState, shutdown: CancellationToken) {
    let interval = state.settings.queue.relay_interval();
    loop {
        let delivered = match outbox::relay_batch(&state.db, &state.queue, state.clock.now(), BATCH).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay pass failed");
                0
            }
        };
        if delivered as u64 == BATCH {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = state.outbox_written.notified() => {}
            () = tokio::time::sleep(interval) => {}
        }
    }
}
