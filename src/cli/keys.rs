//! `erasure keys` (the data keys and their epochs) and `erasure restore-guard`.

use std::{process::ExitCode, sync::Arc};

use clap::Subcommand;

use crate::{
    clock::SystemClock,
    config::Settings,
    startup,
    vault::{self, rotation},
    workers,
};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show the epoch keys in the key store and how many data keys each wraps.
    Status,
    /// Rotate now: wrap every live data key under the current epoch's key, then destroy the
    /// older epoch keys (once the new one is a minute old; run it again after that).
    Rotate,
    /// Seal the rows written before encryption (resumable; the service may keep running).
    Seal,
}

pub async fn run(
    settings: Settings,
    clock: Arc<SystemClock>,
    command: KeysCommand,
) -> anyhow::Result<ExitCode> {
    let state = startup::build_state(settings, clock).await?;
    match command {
        KeysCommand::Status => {
            let counts = vault::epoch_counts(&state.db).await?;
            let live = state.vault.store().epochs()?;
            println!("current epoch: {}", state.vault.epoch_at(state.clock.now()));
            for epoch in &live {
                let n = counts.get(epoch).copied().unwrap_or(0);
                println!("epoch {epoch}: key present, wraps {n} data key(s)");
            }
            for (epoch, n) in counts.iter().filter(|(e, _)| !live.contains(e)) {
                println!("epoch {epoch}: KEY DESTROYED, {n} data key(s) unreadable");
            }
        }
        KeysCommand::Rotate => {
            let report =
                rotation::rotate(&state.db, &state.vault, state.clock.now(), rotation::SETTLE).await?;
            println!(
                "epoch {}: {} data key(s) wrapped again",
                report.epoch, report.rewrapped
            );
            for epoch in &report.destroyed {
                println!("destroyed the key of epoch {epoch}");
            }
            for epoch in &report.settling {
                println!(
                    "kept the key of epoch {epoch} for now: the new key is under a minute old; run again"
                );
            }
        }
        KeysCommand::Seal => {
            let bar = super::progress_bar(0);
            let report = crate::services::seal_existing::seal_all(
                state.env(),
                &state.settings.storage.data_dir,
                &|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                },
            )
            .await?;
            bar.finish_and_clear();
            println!(
                "sealed {} row(s) and {} file(s) written before encryption",
                report.rows, report.files
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `erasure restore-guard`: what start-up does before serving, on demand.
pub async fn restore_guard(settings: Settings, clock: Arc<SystemClock>) -> anyhow::Result<ExitCode> {
    let state = startup::build_state(settings, clock).await?;
    let report = workers::restore_guard::run(&state).await?;
    if report.restored {
        println!(
            "the database was behind the tombstone journal: {} account(s) deleted again",
            report.deleted_again.len()
        );
    } else {
        println!("the database matches the tombstone journal: nothing to do");
    }
    Ok(ExitCode::SUCCESS)
}
