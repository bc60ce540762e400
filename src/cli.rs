//! The `erasure` command line.

mod accounts;
mod audit;
mod ingest;
mod keys;
mod quarantine;
mod staff;

use std::{io::IsTerminal, process::ExitCode, sync::Arc};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use audit::{AuditCommand, ReceiptCommand};

use crate::{
    clock::SystemClock,
    config::Settings,
    db::Database,
    domain::{Email, Password, PersonName, Plan, VseeId},
    services::{dead_jobs, ledger, monitoring, outbox, seed},
    startup::{self, Application, Roles},
    telemetry, workers,
};

/// erasure: deletes messenger accounts properly — the purge of all associated data, the
/// confirmation email and the audit-ledger entry, on background jobs.
///
/// Configuration comes from config/default.toml, config/{ERASURE_ENV}.toml and
/// ERASURE_<SECTION>__<KEY> environment variables (see README.md).
#[derive(Debug, Parser)]
#[command(name = "erasure", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the web pages and API, relay the outbox and run the workers (the default).
    Serve {
        /// Serve HTTP only; run workers in separate `erasure worker` processes.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run the background workers (and the outbox relay) without HTTP.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create one account with generated messenger data (for demos, tests, benchmarks).
    SeedAccount(SeedArgs),
    /// Work with the audit ledger and its transparency log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check a deletion's erasure receipt (offline).
    Receipt {
        #[command(subcommand)]
        command: ReceiptCommand,
    },
    /// Inspect and repair the job queue.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Read one email (RFC 5322) on standard input, as an MTA's pipe delivers it, and open its
    /// ticket; print the ticket's reference. Exit 0 stored or a duplicate, 65 unreadable or
    /// over 10 MiB, 75 unable just now (the MTA tries again).
    IngestEmail,
    /// Manage staff: support agents, auditors, administrators.
    Staff {
        #[command(subcommand)]
        command: staff::StaffCommand,
    },
    /// Bulk deletion of dormant accounts (dry run first).
    Accounts {
        #[command(subcommand)]
        command: accounts::AccountsCommand,
    },
    /// The per-account data keys and the epoch keys that wrap them.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Delete again every account deleted since the database's backup, if the database is
    /// behind the tombstone journal (start-up does this before serving).
    RestoreGuard,
    /// Inspect the mail that could not be read as mail (kept raw, never made a ticket).
    Quarantine {
        #[command(subcommand)]
        command: quarantine::QuarantineCommand,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCommand {
    /// List dead jobs (failed on their last attempt, not retried), one per line:
    /// id, job, request id, attempts, died at, last error.
    Dead,
    /// Run a dead job again (a fresh attempt count); the workers pick it up.
    Retry {
        /// The id `erasure jobs dead` shows.
        id: i64,
    },
    /// Show how many jobs wait per queue, how many are dead, and the outbox lag.
    Status,
    /// Remove finished jobs and relayed outbox rows older than queue.retention_hours now.
    Vacuum,
}

#[derive(Debug, Args)]
struct SeedArgs {
    #[arg(long)]
    vsee_id: String,
    #[arg(long)]
    email: String,
    #[arg(long)]
    password: String,
    #[arg(long, default_value = "")]
    first_name: String,
    #[arg(long, default_value = "")]
    last_name: String,
    /// free or paid
    #[arg(long, default_value = "free")]
    plan: String,
    /// Messages sent by the account.
    #[arg(long, default_value_t = 0)]
    messages: u64,
    /// Contacts (each recorded in both directions).
    #[arg(long, default_value_t = 0)]
    contacts: u64,
    /// Calls, alternately made and received.
    #[arg(long, default_value_t = 0)]
    calls: u64,
    /// Devices, each with a push token.
    #[arg(long, default_value_t = 0)]
    devices: u64,
}

/// Exit codes: 0 success; 1 the ledger does not verify; 2 the command could not run.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    // Offline checks read no configuration (an auditor runs them anywhere): before it loads.
    match &cli.command {
        Some(Command::Audit {
            command: AuditCommand::Consistency { old, new, key },
        }) => return audit::consistency(old, new, key),
        Some(Command::Receipt {
            command: ReceiptCommand::Verify { receipt, key },
        }) => return audit::receipt(receipt, key),
        _ => {}
    }
    let settings = Settings::load()?;
    telemetry::init(&settings.log);
    let clock = Arc::new(SystemClock);
    match cli.command.unwrap_or(Command::Serve { no_workers: false }) {
        Command::Serve { no_workers } => {
            serve(
                settings,
                Roles {
                    http: true,
                    workers: !no_workers,
                },
            )
            .await
        }
        Command::Worker => {
            serve(
                settings,
                Roles {
                    http: false,
                    workers: true,
                },
            )
            .await
        }
        Command::Migrate => {
            let db = Database::connect(&settings).await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::SeedAccount(args) => {
            let state = startup::build_state(settings, clock).await?;
            let spec = seed::SeedSpec {
                vsee_id: VseeId::parse(&args.vsee_id)?,
                email: Email::parse(&args.email)?,
                password: Password::parse(&args.password)?,
                first_name: PersonName::parse(&args.first_name)?,
                last_name: PersonName::parse(&args.last_name)?,
                plan: Plan::parse(&args.plan)?,
                messages: args.messages,
                contacts: args.contacts,
                calls: args.calls,
                devices: args.devices,
            };
            let total = args.messages + args.contacts * 2 + args.calls + args.devices;
            let bar = progress_bar(total);
            let report = seed::seed_account(state.env(), &state.settings.storage.data_dir, spec, &|done| {
                bar.set_position(done)
            })
            .await?;
            bar.finish_and_clear();
            println!(
                "seeded account {} with {} messages, {} contacts, {} calls, {} devices",
                report.account_id, report.messages, report.contacts, report.calls, report.devices
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs { command } => jobs(settings, clock, command).await,
        Command::Staff { command } => staff::run(settings, clock, command).await,
        Command::Quarantine { command } => quarantine::run(settings, clock, command).await,
        Command::Accounts { command } => accounts::run(settings, clock, command).await,
        Command::Keys { command } => keys::run(settings, clock, command).await,
        Command::RestoreGuard => keys::restore_guard(settings, clock).await,
        Command::IngestEmail => Ok(ingest::ingest_email(settings).await),
        Command::Audit { command } => {
            let state = startup::build_state(settings, clock).await?;
            match command {
                AuditCommand::Verify { head } => audit::verify(&state, head.as_ref()).await,
                AuditCommand::Export => {
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    ledger::export(&state.db, &mut out).await?;
                    std::io::Write::flush(&mut out)?;
                    Ok(ExitCode::SUCCESS)
                }
                AuditCommand::Consistency { old, new, key } => audit::consistency(&old, &new, &key),
            }
        }
        Command::Receipt {
            command: ReceiptCommand::Verify { receipt, key },
        } => audit::receipt(&receipt, &key),
    }
}

async fn jobs(settings: Settings, clock: Arc<SystemClock>, command: JobsCommand) -> anyhow::Result<ExitCode> {
    let state = startup::build_state(settings, clock).await?;
    match command {
        JobsCommand::Dead => {
            let dead = dead_jobs::list(&state.db).await?;
            if dead.is_empty() {
                eprintln!("no dead jobs");
            }
            for job in dead {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    job.id,
                    job.job_kind,
                    job.request_id,
                    job.attempts,
                    job.died_at.to_rfc3339(),
                    job.last_error.replace(['\n', '\t'], " ")
                );
            }
        }
        JobsCommand::Retry { id } => {
            let job = dead_jobs::retry(state.env(), id).await?;
            // The relay of this short-lived process pushes it now; a running one would too.
            outbox::relay_batch(
                &state.db,
                &state.queue,
                state.clock.now(),
                100,
                state.settings.queue.max_backlog,
            )
            .await?;
            println!("requeued {} job of request {}", job.job_kind, job.request_id);
        }
        JobsCommand::Status => {
            let snapshot = monitoring::snapshot(state.env(), &state.queue).await?;
            println!("queue backend: {}", snapshot.queue_backend);
            for &kind in erasure_jobs::JobKind::ALL {
                println!("waiting {}: {}", kind.as_str(), snapshot.queue_waiting.of(kind));
            }
            println!("dead jobs: {}", snapshot.dead_jobs);
            println!(
                "outbox: {} waiting, oldest {:.1} s",
                snapshot.outbox_waiting, snapshot.outbox_lag_secs
            );
        }
        JobsCommand::Vacuum => {
            let (jobs, rows) = workers::relay::vacuum_once(&state).await?;
            println!("removed {jobs} finished jobs and {rows} relayed outbox rows");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A bar on a terminal; nothing at all in a pipe.
pub(crate) fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({per_sec}, eta {eta})") {
        bar.set_style(style);
    }
    bar
}

async fn serve(settings: Settings, roles: Roles) -> anyhow::Result<ExitCode> {
    let app = Application::build(settings, Arc::new(SystemClock), roles).await?;
    if let Some(port) = app.port() {
        tracing::info!(port, "listening");
    }
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: finishing work in hand");
        trigger.cancel();
    });
    app.run_until_stopped(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
