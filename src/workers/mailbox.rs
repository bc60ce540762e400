//! Polls the help@ mailbox over IMAP every `support.imap.poll_interval_secs`, when a URL is
//! set. Every worker process polls; the Message-ID makes a message read by two of them one
//! ticket, and the cursor keeps the furthest position.

use tokio_util::sync::CancellationToken;

use crate::{domain::IntakeDoor, services::intake::imap, state::AppState};

pub async fn poll(state: AppState, shutdown: CancellationToken) {
    let settings = &state.settings.support.imap;
    if settings.url.is_empty() {
        return;
    }
    loop {
        match imap::poll_once(state.env(), state.intake(IntakeDoor::Imap), settings).await {
            Ok(report) if report == imap::PollReport::default() => {}
            Ok(report) => tracing::info!(
                taken = report.taken,
                refused = report.refused,
                left = report.left,
                "help@ mailbox polled"
            ),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "help@ mailbox poll failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.poll_interval()) => {}
        }
    }
}
