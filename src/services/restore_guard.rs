//! The guard against resurrection by restore. Each completed deletion is journaled outside
//! the database (`vault::tombstones`) right after the transaction that records it commits
//! (outside the ledger's lock: the journal's fsync does not hold up other deletions). At
//! start-up (and by `erasure restore-guard`) the journal's newest record is looked up in the
//! ledger: found, the database is the one the journal followed, and any deletion a crash kept
//! from the journal is written into it from the ledger; missing, the database was restored
//! from a backup, and every journaled subject that is a live account again is handed back to
//! be deleted once more, before any request is served.

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};

use crate::{
    domain::AccountStatus,
    env::Env,
    error::{AppError, AppResult},
    models::{account, ledger_entry},
    services::{accounts::sealed, ledger::RecordedDeletion},
    vault::{Tombstones, tombstones::Record},
};

/// Pseudonyms looked up per statement.
const CHUNK: usize = 500;
/// The end of the journal read at start-up: far more than the deletions that can be in
/// flight when a process stops.
const TAIL_BYTES: u64 = 256 * 1024;

/// What the guard found.
#[derive(Debug)]
pub enum Inspection {
    /// The ledger holds the journal's newest record: nothing was restored.
    Consistent,
    /// The database is behind the journal. These accounts (opened) were deleted since its
    /// backup and are live again.
    Restored { resurrected: Vec<account::Model> },
}

/// Journals deletions whose ledger entries have been committed (as `ledger::record_deletion`
/// returned them: nothing is read back), with one sync.
pub fn journal(tombstones: &Tombstones, recorded: &[RecordedDeletion]) -> AppResult<()> {
    let records: Vec<Record> = recorded
        .iter()
        .map(|r| Record::Deleted {
            seq: r.entry.seq,
            hash: r.entry.hash.clone(),
            vsee_id: r.vsee_id.clone(),
            email: r.email.clone(),
        })
        .collect();
    tombstones.append_all(&records).map_err(AppError::internal)
}

/// Compares the journal with the ledger; on a restore, finds the accounts it brought back.
pub async fn inspect(env: Env<'_>) -> AppResult<Inspection> {
    let journal = env.vault.tombstones();
    let tail = journal.tail(TAIL_BYTES).map_err(AppError::internal)?;
    let Some(last) = tail.last() else {
        // A journal that starts on a database with deletions already: write them down.
        backfill(env, 0).await?;
        return Ok(Inspection::Consistent);
    };
    let (seq, hash) = last.head();
    let in_ledger = seq == 0
        || ledger_entry::Entity::find_by_id(seq)
            .one(&env.db.conn)
            .await?
            .is_some_and(|e| e.hash == hash);
    if in_ledger {
        // Deletions a crash kept from the journal (committed, not yet journaled).
        let newest = tail.iter().map(|r| r.head().0).max().unwrap_or(0);
        backfill(env, newest).await?;
        return Ok(Inspection::Consistent);
    }
    let records = journal.read().map_err(AppError::internal)?;
    let pseudonyms: Vec<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::Deleted { vsee_id, email, .. } => Some([Some(vsee_id.clone()), email.clone()]),
            Record::Settled { .. } => None,
        })
        .flatten()
        .flatten()
        .collect();
    let mut resurrected = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for chunk in pseudonyms.chunks(CHUNK) {
        let rows = account::Entity::find()
            .filter(account::Column::Status.eq(AccountStatus::Active))
            .filter(
                Condition::any()
                    .add(account::Column::VseeIdIndex.is_in(chunk.iter().cloned()))
                    .add(account::Column::EmailIndex.is_in(chunk.iter().cloned())),
            )
            .all(&env.db.conn)
            .await?;
        for row in rows {
            if seen.insert(row.id) {
                resurrected.extend(sealed::open_some(env.vault, &env.db.conn, Some(row)).await?);
            }
        }
    }
    Ok(Inspection::Restored { resurrected })
}

/// Records that a restore has been dealt with: the journal continues from the ledger's head.
pub async fn settle(env: Env<'_>) -> AppResult<()> {
    let head = ledger_entry::Entity::find()
        .order_by_desc(ledger_entry::Column::Seq)
        .one(&env.db.conn)
        .await?;
    let (seq, hash) = head.map_or((0, String::new()), |e| (e.seq, e.hash));
    env.vault
        .tombstones()
        .append(&Record::Settled { seq, hash })
        .map_err(AppError::internal)
}

/// Journals every deletion the ledger holds after entry `after` (a first start with this
/// journal, or what a crash kept from it).
async fn backfill(env: Env<'_>, mut after: i64) -> AppResult<()> {
    loop {
        let rows = env
            .db
            .conn
            .query_all_raw(Statement::from_string(
                env.db.backend(),
                format!(
                    "SELECT l.seq, l.hash, d.subject, d.subject_email FROM ledger_entries l \
                     JOIN deletion_requests d ON d.id = l.request_id \
                     WHERE l.event = 'account_deleted' AND l.seq > {after} ORDER BY l.seq LIMIT 1000"
                ),
            ))
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in rows {
            let seq: i64 = row.try_get("", "seq")?;
            env.vault
                .tombstones()
                .append(&Record::Deleted {
                    seq,
                    hash: row.try_get("", "hash")?,
                    vsee_id: row.try_get("", "subject")?,
                    email: row.try_get("", "subject_email")?,
                })
                .map_err(AppError::internal)?;
            after = seq;
        }
    }
}
