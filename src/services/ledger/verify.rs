//! `audit verify`: one pass over the ledger that checks what the server key proves (each
//! entry's MAC and its link to the one before) and what the log key proves (the Merkle tree
//! rebuilt from the bodies has the root every signed head states). A head an auditor kept
//! is checked the same way: a rewritten history, re-MACed with the server key, still chains,
//! but its tree no longer has the kept root.

use std::collections::VecDeque;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{GENESIS_HASH, events::StoredBody, log, tree::Frontier};
use crate::{
    db::Database,
    domain::DeletionStatus,
    error::{AppError, AppResult},
    keys::Keys,
    models::{deletion_request, ledger_entry, log_head},
    transparency::{LogKey, SignedHead},
};

/// The first entry that does not verify, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ledger entry {seq} does not verify: {reason}")]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

/// What a clean pass checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    /// Signed heads whose signature and root were checked.
    pub heads: u64,
}

const PAGE: u64 = 1000;

/// Walks the whole ledger in order, and every signed head with it; then the kept head, if
/// given. `Ok(Err(_))`: the first thing that does not verify.
pub async fn verify(
    db: &Database,
    keys: &Keys,
    log_key: &LogKey,
    kept: Option<&SignedHead>,
    progress: &(dyn Fn(u64) + Sync),
) -> AppResult<Result<Verified, Broken>> {
    let mut walk = Walk {
        log_key,
        tree: Frontier::default(),
        prev_hash: GENESIS_HASH.to_owned(),
        heads: VecDeque::new(),
        heads_exhausted: false,
        heads_checked: 0,
        kept,
    };
    if let Err(broken) = walk.check_heads_at(db, 0).await? {
        return Ok(Err(broken));
    }
    // The next page is read while this one is checked: the database works while we hash.
    let mut pending = Some(fetch_page(db, 0));
    while let Some(fetching) = pending.take() {
        let page = fetching.await.map_err(AppError::internal)??;
        if page.len() as u64 == PAGE
            && let Some(last) = page.last()
        {
            pending = Some(fetch_page(db, last.seq));
        }
        let pruned: Vec<u64> = page
            .iter()
            .filter(|e| e.pruned_at.is_some())
            .filter_map(|e| u64::try_from(e.seq.saturating_sub(1)).ok())
            .collect();
        let kept_leaves = if pruned.is_empty() {
            Default::default()
        } else {
            match log::leaves(&db.conn, &pruned).await {
                Ok(found) => found,
                Err(_) => {
                    return Ok(Err(Broken {
                        seq: i64::try_from(pruned[0]).unwrap_or(0) + 1,
                        reason: "a pruned entry's leaf is missing from the tree".into(),
                    }));
                }
            }
        };
        for entry in &page {
            let expected = size_i64(walk.tree.size()) + 1;
            let checked = if entry.pruned_at.is_some() {
                check_link(entry, expected, &walk.prev_hash)
            } else {
                check_entry(keys, entry, expected, &walk.prev_hash)
            };
            if let Err(reason) = checked {
                return Ok(Err(Broken {
                    seq: entry.seq,
                    reason,
                }));
            }
            let leaf = match u64::try_from(entry.seq.saturating_sub(1))
                .ok()
                .and_then(|i| kept_leaves.get(&i))
            {
                Some(kept) if entry.pruned_at.is_some() => *kept,
                _ => super::tree::leaf_hash(entry.body.as_bytes()),
            };
            walk.prev_hash.clone_from(&entry.hash);
            walk.tree.push(leaf);
            if let Err(broken) = walk.check_heads_at(db, walk.tree.size()).await? {
                return Ok(Err(broken));
            }
        }
        progress(walk.tree.size());
    }
    let count = walk.tree.size();
    if let Err(broken) = walk.after_the_end(db).await? {
        return Ok(Err(broken));
    }
    // The chain cannot show that its newest entries were cut off; the requests can: every
    // completed deletion must have its entry.
    let completed = deletion_request::Entity::find()
        .filter(deletion_request::Column::Status.eq(DeletionStatus::Completed))
        .count(&db.conn)
        .await?;
    if completed > count {
        return Ok(Err(Broken {
            seq: size_i64(count) + 1,
            reason: format!(
                "{completed} deletions are completed but the ledger holds {count} entries: entries were removed"
            ),
        }));
    }
    Ok(Ok(Verified {
        entries: count,
        heads: walk.heads_checked,
    }))
}

/// Entries after `after`, a page, read on a task of its own.
fn fetch_page(
    db: &Database,
    after: i64,
) -> tokio::task::JoinHandle<Result<Vec<ledger_entry::Model>, sea_orm::DbErr>> {
    let conn = db.conn.clone();
    tokio::spawn(async move {
        ledger_entry::Entity::find()
            .filter(ledger_entry::Column::Seq.gt(after))
            .order_by_asc(ledger_entry::Column::Seq)
            .limit(PAGE)
            .all(&conn)
            .await
    })
}

fn size_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

struct Walk<'a> {
    log_key: &'a LogKey,
    tree: Frontier,
    prev_hash: String,
    /// Signed heads not yet reached, smallest first (a page of them).
    heads: VecDeque<log_head::Model>,
    /// No heads beyond those in `heads`.
    heads_exhausted: bool,
    heads_checked: u64,
    kept: Option<&'a SignedHead>,
}

impl Walk<'_> {
    /// Checks every head (stored, or kept) of exactly `size` entries against the tree so far.
    async fn check_heads_at(&mut self, db: &Database, size: u64) -> AppResult<Result<(), Broken>> {
        if self.heads.is_empty() && !self.heads_exhausted {
            let page = log_head::Entity::find()
                .filter(log_head::Column::Size.gte(size_i64(size)))
                .order_by_asc(log_head::Column::Size)
                .limit(PAGE)
                .all(&db.conn)
                .await?;
            self.heads_exhausted = (page.len() as u64) < PAGE;
            self.heads = page.into();
        }
        let at = size_i64(size);
        let due =
            self.heads.front().is_some_and(|h| h.size <= at) || self.kept.is_some_and(|k| k.size == size);
        if !due {
            return Ok(Ok(())); // the root costs a fold of the frontier: only when a head asks
        }
        let root = hex::encode(self.tree.root());
        while let Some(head) = self.heads.pop_front_if(|h| h.size <= at) {
            let signed = SignedHead {
                size,
                root: head.root.clone(),
                timestamp: crate::transparency::head_timestamp(head.signed_at),
                key_id: head.key_id.clone(),
                signature: head.signature.clone(),
            };
            if let Err(e) = signed.verify(self.log_key) {
                return Ok(Err(broken_head(
                    size,
                    format!("the signed head of {size} entries: {e}"),
                )));
            }
            if head.root != root {
                return Ok(Err(broken_head(
                    size,
                    format!("the signed head of {size} entries states another root than the entries give"),
                )));
            }
            self.heads_checked += 1;
        }
        if let Some(kept) = self.kept.filter(|k| k.size == size) {
            if let Err(e) = kept.verify(self.log_key) {
                return Ok(Err(broken_head(size, format!("the kept head: {e}"))));
            }
            if kept.root != root {
                return Ok(Err(broken_head(
                    size,
                    format!(
                        "the log's first {size} entries are not the ones the kept head signed: history was rewritten"
                    ),
                )));
            }
        }
        Ok(Ok(()))
    }

    /// Heads or a kept head beyond the last entry mean entries were removed; the stored tree
    /// must agree with the one rebuilt from the bodies.
    async fn after_the_end(&self, db: &Database) -> AppResult<Result<(), Broken>> {
        let count = self.tree.size();
        let beyond = self
            .heads
            .iter()
            .map(|h| u64::try_from(h.size).unwrap_or(0))
            .chain(self.kept.map(|k| k.size))
            .filter(|&s| s > count)
            .max();
        if let Some(size) = beyond {
            return Ok(Err(Broken {
                seq: size_i64(count) + 1,
                reason: format!(
                    "a signed head covers {size} entries, the ledger holds {count}: entries were removed"
                ),
            }));
        }
        if log::size(&db.conn).await? == count && log::root_at(&db.conn, count).await? != self.tree.root() {
            return Ok(Err(Broken {
                seq: size_i64(count),
                reason: "the stored Merkle tree disagrees with the entries: its proofs would not verify"
                    .into(),
            }));
        }
        Ok(Ok(()))
    }
}

fn broken_head(size: u64, reason: String) -> Broken {
    Broken {
        seq: size_i64(size),
        reason,
    }
}

/// What a pruned entry still proves: its place and its link (its MAC is the next one's link).
fn check_link(e: &ledger_entry::Model, expected_seq: i64, prev_hash: &str) -> Result<(), String> {
    if e.seq != expected_seq {
        return Err(format!("expected entry {expected_seq} next: an entry is missing"));
    }
    if e.prev_hash != prev_hash {
        return Err("it does not link to the entry before it".into());
    }
    Ok(())
}

fn check_entry(
    keys: &Keys,
    e: &ledger_entry::Model,
    expected_seq: i64,
    prev_hash: &str,
) -> Result<(), String> {
    check_link(e, expected_seq, prev_hash)?;
    if keys.ledger_mac(&e.prev_hash, &e.body) != e.hash {
        return Err("its content was altered (MAC mismatch)".into());
    }
    let body = StoredBody::parse(&e.body).map_err(|err| format!("its body is unreadable: {err}"))?;
    let columns = (
        e.seq,
        e.event.as_str(),
        e.request_id.as_str(),
        e.subject.as_str(),
        e.prev_hash.as_str(),
    );
    if body.indexed() != columns {
        return Err("its indexed columns disagree with its signed body".into());
    }
    Ok(())
}
