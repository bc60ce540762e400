//! (c), (f): purge::run against a hand-written chunked DELETE of the same rows.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use anyhow::bail;
use erasure::{
    datamap::Action,
    domain::{Actor, Channel},
    models::account,
    services::{
        deletion,
        purge::{self, PurgeOutcome},
    },
    state::AppState,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{
    app::{App, StatementStats, app_err, seed_accounts},
    cli::Shape,
    results::{PurgeCompare, PurgeSide},
    stack::StackCtx,
};

/// config/datamap.toml, written out by hand: (table, column, nullify).
pub const RAW_RULES: [(&str, &str, bool); 12] = [
    ("sessions", "account_id", false),
    ("password_resets", "account_id", false),
    ("notifications", "account_id", false),
    ("data_exports", "account_id", false),
    ("devices", "account_id", false),
    ("contacts", "owner_id", false),
    ("contacts", "contact_id", false),
    ("messages", "sender_id", false),
    ("conversation_members", "account_id", false),
    ("conversations", "created_by", true),
    ("calls", "caller_id", true),
    ("calls", "callee_id", true),
];

pub fn check_raw_rules(state: &AppState) -> anyhow::Result<()> {
    let map: Vec<(String, String, bool)> = state
        .purge_plan
        .map
        .stores
        .iter()
        .map(|r| (r.table.clone(), r.column.clone(), r.action == Action::Nullify))
        .collect();
    let raw: Vec<(String, String, bool)> = RAW_RULES
        .iter()
        .map(|(t, c, n)| ((*t).to_owned(), (*c).to_owned(), *n))
        .collect();
    if map != raw {
        bail!("the baseline's rules no longer match config/datamap.toml: {map:?}");
    }
    Ok(())
}

/// The baseline: each rule's rows in chunks of `purge.chunk_size`, one transaction a chunk,
/// then the account row and the avatar file. Returns the rows changed.
pub async fn raw_delete(state: &AppState, account: &account::Model) -> anyhow::Result<u64> {
    let chunk = state.settings.purge.chunk_size;
    let backend = state.db.backend();
    let p = if backend == DbBackend::Postgres { "$1" } else { "?" };
    let mut rows = 0;
    for (table, column, nullify) in RAW_RULES {
        let sql = if nullify {
            format!(
                "UPDATE {table} SET {column} = NULL WHERE id IN (SELECT id FROM {table} WHERE {column} = {p} LIMIT {chunk})"
            )
        } else {
            format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} = {p} LIMIT {chunk})"
            )
        };
        loop {
            let tx = state.db.begin_write().await?;
            let n = tx
                .execute_raw(Statement::from_sql_and_values(backend, &sql, [account.id.into()]))
                .await?
                .rows_affected();
            tx.commit().await?;
            rows += n;
            if n < chunk {
                break;
            }
        }
    }
    let tx = state.db.begin_write().await?;
    rows += tx
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!("DELETE FROM accounts WHERE id = {p}"),
            [account.id.into()],
        ))
        .await?
        .rows_affected();
    tx.commit().await?;
    if let Some(file) = &account.avatar_file {
        match std::fs::remove_file(state.settings.storage.data_dir.join("avatars").join(file)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rows)
}

/// Rows (not files) the purge reports.
pub fn purged_rows(state: &AppState, outcome: PurgeOutcome) -> anyhow::Result<u64> {
    let PurgeOutcome::Purged(counts) = outcome else {
        bail!("the purge had already run");
    };
    let files: Vec<&str> = state
        .purge_plan
        .map
        .files
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    Ok(counts
        .iter()
        .filter(|(store, _)| !files.contains(&store.as_str()))
        .map(|(_, n)| u64::try_from(*n).unwrap_or(0))
        .sum())
}

pub async fn purge_compare(ctx: &StackCtx, shape: Shape, per_side: usize) -> anyhow::Result<PurgeCompare> {
    // No workers, no relay: purge::run is called directly and nothing competes with it.
    let stats = Arc::new(StatementStats::default());
    let app = App::start(ctx, false, Some(stats.clone())).await?;
    let outcome = async {
        check_raw_rules(&app.state)?;
        let accounts = seed_accounts(&app.state, shape, per_side * 2).await?;
        // Requests for the purge half, opened before the clock starts.
        let mut requests = HashMap::new();
        for account in accounts.iter().step_by(2) {
            let receipt = deletion::open_request(
                app.state.env(),
                &app.state.keys,
                account,
                Actor::AccountHolder,
                Channel::Api,
            )
            .await
            .map_err(app_err)?;
            requests.insert(account.id, receipt.request_id);
        }
        let (mut ours, mut raw) = (PurgeSide::default(), PurgeSide::default());
        // Alternating, so both halves see the database at the same sizes.
        for account in &accounts {
            // Untimed, for both sides: the WAL starts empty before each account, as after a
            // completion's checkpoint (the pipeline's, timed in (l)). Otherwise SQLite's own
            // checkpoint at 1,000 pages falls on whichever side crosses it, a 25 ms lottery.
            app.state.db.checkpoint().await?;
            if let Some(request_id) = requests.get(&account.id) {
                stats.recording.store(true, Ordering::Relaxed);
                let t = Instant::now();
                let outcome = purge::run(app.state.env(), &app.state.purge_plan, *request_id)
                    .await
                    .map_err(app_err)?;
                stats.recording.store(false, Ordering::Relaxed);
                ours.secs += t.elapsed().as_secs_f64();
                ours.rows += purged_rows(&app.state, outcome)?;
                ours.accounts += 1;
            } else {
                let t = Instant::now();
                let n = raw_delete(&app.state, account).await?;
                raw.secs += t.elapsed().as_secs_f64();
                raw.rows += n;
                raw.accounts += 1;
            }
        }
        let top = stats.top(6, ours.accounts);
        if ours.rows != raw.rows {
            eprintln!(
                "    note: purge removed {} rows, the baseline {} (they should match)",
                ours.rows, raw.rows
            );
        }
        Ok(PurgeCompare { ours, raw, top })
    }
    .await;
    app.shutdown().await?;
    outcome
}
