//! `erasure staff`: staff members are created and disabled on the host, not over HTTP.

use std::{process::ExitCode, sync::Arc};

use clap::Subcommand;

use crate::{
    clock::SystemClock,
    config::Settings,
    domain::{Email, Password, PersonName, StaffRole},
    services::staff,
    startup,
};

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Create a staff member. The password is read from standard input, one line (never from
    /// an argument, which other users of the machine could read).
    Create {
        #[arg(long)]
        email: String,
        /// agent, auditor or admin
        #[arg(long)]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Disable a staff member: their sessions end at once and they cannot log in again.
    Disable {
        #[arg(long)]
        email: String,
    },
}
pub async fn run(
    settings: Settings,
    clock: Arc<SystemClock>,
    command: StaffCommand,
) -> anyhow::Result<ExitCode> {
    let state = startup::build_state(settings, clock).await?;
    match command {
        StaffCommand::Create { email, role, name } => {
            let email = Email::parse(&email)?;
            let role = StaffRole::parse(&role)?;
            let name = PersonName::parse(&name)?;
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = Password::parse(line.trim_end_matches(['\n', '\r']))?;
            let member = staff::create(
                state.env(),
                staff::NewStaff {
                    email,
                    name,
                    role,
                    password,
                },
            )
            .await?;
            println!(
                "created {} {} (staff id {})",
                member.role.as_str(),
                member.email,
                member.id
            );
        }
        StaffCommand::Disable { email } => {
            let member = staff::disable(state.env(), &Email::parse(&email)?).await?;
            println!("disabled {}; their sessions have ended", member.email);
        }
    }
    Ok(ExitCode::SUCCESS)
}
