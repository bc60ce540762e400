//! `erasure accounts`: bulk deletion of dormant accounts, for an administrator on the host.

use std::{io::Write, process::ExitCode, sync::Arc};

use chrono::{DateTime, NaiveDate, Utc};
use clap::Subcommand;

use crate::{
    clock::SystemClock,
    config::Settings,
    domain::{Email, StaffRole},
    services::{bulk, staff},
    startup,
};

/// Accounts opened per batch (each its own transaction).
const BATCH: u64 = 500;

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Delete the free accounts with no log-in since a date (and created before it), each
    /// through the pipeline with its own request, receipt and ledger entry (actor: the admin,
    /// channel: bulk). Without --yes, only shows how many and the first of them.
    Delete {
        /// YYYY-MM-DD (UTC midnight) or an RFC 3339 time.
        #[arg(long)]
        inactive_since: String,
        /// Show the count and a preview; delete nothing (the default without --yes).
        #[arg(long, conflicts_with = "yes")]
        dry_run: bool,
        /// Delete them.
        #[arg(long)]
        yes: bool,
        /// The administrator who orders it (an enabled admin's staff email), named in the ledger.
        #[arg(long)]
        admin: Option<String>,
    },
}

fn parse_since(raw: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    Ok(DateTime::parse_from_rfc3339(raw)
        .map_err(|_| anyhow::anyhow!("--inactive-since takes YYYY-MM-DD or an RFC 3339 time, not {raw:?}"))?
        .with_timezone(&Utc))
}

pub async fn run(
    settings: Settings,
    clock: Arc<SystemClock>,
    command: AccountsCommand,
) -> anyhow::Result<ExitCode> {
    let AccountsCommand::Delete {
        inactive_since,
        yes,
        admin,
        ..
    } = command;
    let since = match parse_since(&inactive_since) {
        Ok(since) => since,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let state = startup::build_state(settings, clock).await?;
    let preview = bulk::preview(state.env(), since, 20).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} free account(s) with no log-in since {} (created before it):",
        preview.count,
        since.format("%Y-%m-%d %H:%M UTC")
    )?;
    for a in &preview.sample {
        writeln!(
            out,
            "  #{}\t{}\tcreated {}\tlast log-in {}",
            a.id,
            a.vsee_id,
            a.created_at.format("%Y-%m-%d"),
            a.last_login_at.map_or_else(
                || "never recorded".to_owned(),
                |t| t.format("%Y-%m-%d").to_string()
            )
        )?;
    }
    if preview.count > preview.sample.len() as u64 {
        writeln!(
            out,
            "  … and {} more",
            preview.count - preview.sample.len() as u64
        )?;
    }
    if !yes {
        writeln!(
            out,
            "Dry run: nothing was deleted. Run again with --yes --admin EMAIL to delete them."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(admin) = admin else {
        eprintln!("error: --yes needs --admin EMAIL: the administrator the ledger names");
        return Ok(ExitCode::from(2));
    };
    let found = match Email::parse(&admin) {
        Ok(email) => staff::find_by_email(&state.db, &email).await?,
        Err(_) => None,
    };
    let Some(admin) = found.filter(|s| s.role == StaffRole::Admin && s.disabled_at.is_none()) else {
        eprintln!("error: {admin} is not an enabled administrator");
        return Ok(ExitCode::from(2));
    };
    let started = bulk::start(state.env(), admin.id, since, false).await?;
    let id = uuid::Uuid::parse_str(&started.id)?;
    let bar = super::progress_bar(preview.count);
    let run = loop {
        let run = bulk::advance(state.env(), &state.keys, id, state.grace(), BATCH).await?;
        bar.set_position(u64::try_from(run.requested + run.skipped).unwrap_or(0));
        if run.finished_at.is_some() {
            break run;
        }
    };
    bar.finish_and_clear();
    writeln!(
        out,
        "{} deletion(s) requested, {} skipped (no longer dormant, or being deleted already); \
         the workers carry them out (`erasure jobs status`).",
        run.requested, run.skipped
    )?;
    Ok(ExitCode::SUCCESS)
}
