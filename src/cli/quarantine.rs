//! `erasure quarantine`: the mail that could not be read, for an admin on the host.

use std::{io::Write, process::ExitCode, sync::Arc};

use clap::Subcommand;

use crate::{clock::SystemClock, config::Settings, services::intake::quarantine, startup};

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// List quarantined messages, newest first, one a line: id, received at, door, bytes, why.
    List {
        #[arg(long, default_value_t = 50)]
        limit: u64,
    },
    /// Write one message's raw bytes to standard output, exactly as it came.
    Show { id: i64 },
}

pub async fn run(
    settings: Settings,
    clock: Arc<SystemClock>,
    command: QuarantineCommand,
) -> anyhow::Result<ExitCode> {
    let state = startup::build_state(settings, clock).await?;
    let mut out = std::io::stdout().lock();
    match command {
        QuarantineCommand::List { limit } => {
            for q in quarantine::list(state.env(), limit).await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    q.id,
                    q.received_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    q.door.as_str(),
                    q.bytes,
                    q.reason
                )?;
            }
        }
        QuarantineCommand::Show { id } => match quarantine::find(state.env(), id).await {
            Ok(found) => out.write_all(&found.raw)?,
            Err(crate::error::AppError::NotFound) => {
                eprintln!("error: no quarantined message has the id {id}");
                return Ok(ExitCode::from(2));
            }
            Err(e) => return Err(e.into()),
        },
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
