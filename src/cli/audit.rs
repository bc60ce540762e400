//! `erasure audit …` and `erasure receipt …`: the ledger's checks. `audit verify` and `audit
//! export` read the database; `audit consistency` and `receipt verify` are offline — they read
//! only the documents and the public key, never the database or the server key.

use std::{io::IsTerminal, path::PathBuf, process::ExitCode};

use clap::Subcommand;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{
    services::{deletion, ledger},
    state::AppState,
    transparency::{ConsistencyDocument, LogKey, SignedHead, receipt::Receipt, verify_consistency},
};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole ledger: every entry's MAC and link, the Merkle tree rebuilt from the
    /// entries against every signed head, and (with --head) a head you kept earlier. Exit 0
    /// when all verify and every deletion older than audit.completion_bound_minutes has its
    /// entry; exit 1 naming what does not (exit 2: could not check at all).
    Verify {
        /// A signed head kept earlier (the JSON of GET /api/v1/log/head): the log must still
        /// hold exactly the entries it signed.
        #[arg(long, value_name = "HEAD.json")]
        head: Option<PathBuf>,
    },
    /// Print every entry as NDJSON (one JSON object a line) to stdout.
    Export,
    /// Offline: prove the log in NEW.json (GET /api/v1/log/consistency?from=<old size>&to=…)
    /// extends the head kept in OLD.json. Exit 0 it does, 1 it does not, 2 unreadable input.
    Consistency {
        #[arg(value_name = "OLD.json")]
        old: PathBuf,
        #[arg(value_name = "NEW.json")]
        new: PathBuf,
        /// The log's public key: 64 hex, or a file holding it or /.well-known/erasure-log-key.
        #[arg(long, value_name = "PUB")]
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Offline: check an erasure receipt (GET /api/v1/deletions/{receipt_id}/proof) with the
    /// log's public key. Exit 0 it verifies, 1 it does not, 2 unreadable input.
    Verify {
        #[arg(value_name = "RECEIPT.json")]
        receipt: PathBuf,
        #[arg(long, value_name = "PUB")]
        key: String,
    },
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not the expected JSON: {e}", path.display()))
}

fn verdict(result: Result<(), crate::transparency::VerifyError>, ok: &str) -> ExitCode {
    match result {
        Ok(()) => {
            println!("{ok}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("does not verify: {e}");
            ExitCode::from(1)
        }
    }
}

/// `audit consistency`, offline.
pub fn consistency(old: &PathBuf, new: &PathBuf, key: &str) -> anyhow::Result<ExitCode> {
    let key = LogKey::from_arg(key)?;
    let old: SignedHead = read_json(old)?;
    let new: ConsistencyDocument = read_json(new)?;
    let ok = format!(
        "consistent: the log of {} entries extends the kept head of {}",
        new.head.size, old.size
    );
    Ok(verdict(verify_consistency(&old, &new, &key), &ok))
}

/// `receipt verify`, offline.
pub fn receipt(path: &PathBuf, key: &str) -> anyhow::Result<ExitCode> {
    let key = LogKey::from_arg(key)?;
    let receipt: Receipt = read_json(path)?;
    let ok = format!(
        "receipt verified: deletion {} completed {} is entry {} of the log signed at {} entries",
        receipt.request_id, receipt.completed_at, receipt.ledger.seq, receipt.head.size
    );
    Ok(verdict(receipt.verify(&key), &ok))
}

/// Exit 1 when the ledger does not verify, or when a deletion has gone without its ledger
/// entry for longer than `audit.completion_bound_minutes`: stalled or failed, it needs a person.
pub async fn verify(state: &AppState, head: Option<&PathBuf>) -> anyhow::Result<ExitCode> {
    const LISTED: u64 = 1000;
    let kept: Option<SignedHead> = head.map(read_json).transpose()?;
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
    };
    bar.set_style(ProgressStyle::with_template(
        "{spinner} {pos} entries verified ({per_sec})",
    )?);
    let progress = |n: u64| bar.set_position(n);
    let outcome = ledger::verify(
        &state.db,
        &state.keys,
        &state.log_signer.public(),
        kept.as_ref(),
        &progress,
    )
    .await?;
    bar.finish_and_clear();
    let mut intact = match outcome {
        Ok(v) => {
            println!(
                "ledger intact: {} entries verified, {} signed heads match the tree{}",
                v.entries,
                v.heads,
                kept.as_ref()
                    .map(|k| format!(", and it extends the kept head of {} entries", k.size))
                    .unwrap_or_default()
            );
            true
        }
        Err(broken) => {
            println!("{broken}");
            false
        }
    };
    let bound = state.settings.audit.completion_bound();
    let overdue = deletion::overdue(&state.db, state.clock.now(), bound, LISTED).await?;
    for request in &overdue {
        intact = false;
        println!(
            "deletion {} requested {} is {} with no ledger entry after {} minutes{}",
            request.id,
            request.requested_at.to_rfc3339(),
            request.status.as_str(),
            bound.num_minutes(),
            request
                .last_error
                .as_deref()
                .map(|e| format!(": {}", e.replace(['\n', '\t'], " ")))
                .unwrap_or_default()
        );
    }
    if overdue.len() as u64 == LISTED {
        println!("(only the oldest {LISTED} overdue deletions are listed)");
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
