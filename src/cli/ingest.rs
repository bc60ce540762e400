//! `erasure ingest-email`: one message on stdin, as an MTA's pipe hands it over. The exit
//! code is what the MTA acts on (sysexits.h): 0 stored, a duplicate or ignored; 65
//! (EX_DATAERR) unreadable or too large, so the MTA bounces it; 75 (EX_TEMPFAIL) unable just
//! now, so the MTA keeps it and tries again.

use std::{io::Read, process::ExitCode, sync::Arc};

use crate::{
    clock::SystemClock,
    config::Settings,
    domain::IntakeDoor,
    error::AppError,
    services::intake::{self, MAX_MESSAGE_BYTES, Received},
    startup,
};

const EX_DATAERR: u8 = 65;
const EX_TEMPFAIL: u8 = 75;

pub async fn ingest_email(settings: Settings) -> ExitCode {
    let mut raw = Vec::new();
    // One byte more than allowed tells "too large" without reading everything.
    let limit = u64::try_from(MAX_MESSAGE_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    if let Err(e) = std::io::stdin().lock().take(limit).read_to_end(&mut raw) {
        eprintln!("error: could not read the message: {e}");
        return ExitCode::from(EX_TEMPFAIL);
    }
    let state = match startup::build_state(settings, Arc::new(SystemClock)).await {
        Ok(state) => state,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(EX_TEMPFAIL);
        }
    };
    match intake::receive(state.env(), state.intake(IntakeDoor::Pipe), &raw).await {
        Ok(Received::Opened(reference)) => {
            println!("{reference}");
            ExitCode::SUCCESS
        }
        Ok(Received::Duplicate(reference)) => {
            println!("{reference}");
            eprintln!("already received: ticket {reference}");
            ExitCode::SUCCESS
        }
        Ok(Received::Attached(reference)) => {
            println!("{reference}");
            eprintln!("a reply: kept with ticket {reference}");
            ExitCode::SUCCESS
        }
        Ok(Received::Ignored(why)) => {
            eprintln!("ignored: {why}");
            ExitCode::SUCCESS
        }
        Err(e @ (AppError::InvalidInput(_) | AppError::PayloadTooLarge { .. })) => {
            eprintln!("refused: {e}");
            ExitCode::from(EX_DATAERR)
        }
        Err(e) => {
            eprintln!("error: {}", e.detail());
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}
