//! Running the restore guard (`services::restore_guard`) before a process serves anything:
//! each account a restored backup brought back is deleted again, through the same steps as
//! any deletion but run here, in order, instead of on the queue (the jobs the outbox still
//! pushes find each step done). Channel `restore-guard`, actor `system`; no confirmation
//! email (the holder was told when the account was first deleted).

use crate::{
    domain::{Actor, Channel},
    services::{
        deletion::{self, confirmation},
        purge,
        restore_guard::{self, Inspection},
    },
    state::AppState,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardReport {
    /// Whether the database was found behind the tombstone journal.
    pub restored: bool,
    /// Accounts deleted again, by id.
    pub deleted_again: Vec<i64>,
}

pub async fn run(state: &AppState) -> anyhow::Result<GuardReport> {
    let env = state.env();
    let Inspection::Restored { resurrected } = restore_guard::inspect(env).await? else {
        return Ok(GuardReport::default());
    };
    tracing::warn!(
        accounts = resurrected.len(),
        "the database is behind the tombstone journal (restored from a backup?): deleting again the accounts deleted since"
    );
    let mut report = GuardReport {
        restored: true,
        deleted_again: Vec::new(),
    };
    for account in resurrected {
        let opened =
            deletion::open_request(env, &state.keys, &account, Actor::System, Channel::RestoreGuard).await?;
        let request_id = opened.request_id;
        purge::run(env, &state.purge_plan, request_id).await?;
        confirmation::send(env, &state.keys, &state.mailer, request_id, 1).await?;
        super::handlers::record_deletion(state, request_id).await?;
        tracing::warn!(account_id = account.id, %request_id, "account deleted again by the restore guard");
        report.deleted_again.push(account.id);
    }
    restore_guard::settle(env).await?;
    Ok(report)
}
