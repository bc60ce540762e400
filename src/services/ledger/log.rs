//! The transparency log's storage. Invariant: after every committed append, `log_nodes`
//! holds each perfect subtree of the ledger's first `size` bodies (leaf i is entry i + 1), and
//! `size` is the ledger's length. Appends extend the tree in the append's own transaction
//! (under the ledger lock), so the tree can never lag or fork from the chain; entries written
//! before the log existed are taken in by the first append or head after the upgrade.
//!
//! A signed head is written at most once per size: signing is idempotent, whoever asks.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, Func, OnConflict},
};

use super::{
    LEDGER_LOCK,
    events::StoredBody,
    tree::{self, Frontier, Hash, Subtree},
};
use crate::{
    db::Database,
    error::{AppError, AppResult},
    models::{ledger_entry, log_head, log_node},
    transparency::{LogSigner, SignedHead},
};

const CATCH_UP_PAGE: u64 = 1000;
/// Rows a multi-row insert carries (PostgreSQL allows 65535 bind parameters).
const INSERT_CHUNK: usize = 500;

/// The number of leaves: one past the highest leaf id.
pub async fn size(conn: &impl ConnectionTrait) -> AppResult<u64> {
    let highest: Option<i64> = log_node::Entity::find()
        .select_only()
        .expr_as(Func::max(Expr::col(log_node::Column::Id)), "highest")
        .filter(log_node::Column::Id.lt(Subtree::FIRST_INNER_ID))
        .into_tuple()
        .one(conn)
        .await?
        .flatten();
    Ok(highest.map_or(0, |h| u64::try_from(h).unwrap_or(0) + 1))
}

/// The stored hashes of `subtrees`, in their order, in one query.
async fn hashes(conn: &impl ConnectionTrait, subtrees: &[Subtree]) -> AppResult<Vec<Hash>> {
    let mut ids: Vec<i64> = subtrees.iter().map(|s| s.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found: HashMap<i64, Hash> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(INSERT_CHUNK) {
        let rows = log_node::Entity::find()
            .filter(log_node::Column::Id.is_in(chunk.iter().copied()))
            .all(conn)
            .await?;
        for row in rows {
            found.insert(row.id, decode(&row.hash)?);
        }
    }
    subtrees
        .iter()
        .map(|s| {
            found.get(&s.id()).copied().ok_or_else(|| {
                AppError::internal(anyhow::anyhow!(
                    "the log lacks node {s:?}: the tree is incomplete"
                ))
            })
        })
        .collect()
}

fn decode(text: &str) -> AppResult<Hash> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("a log node's hash is not 32 bytes of hex")))
}

/// The stored leaf hashes at `indices` (entry seq - 1): what stays of a pruned entry.
pub async fn leaves(conn: &impl ConnectionTrait, indices: &[u64]) -> AppResult<HashMap<u64, Hash>> {
    let subtrees: Vec<Subtree> = indices.iter().map(|&index| Subtree { level: 0, index }).collect();
    let found = hashes(conn, &subtrees).await?;
    Ok(indices.iter().copied().zip(found).collect())
}

/// The tree of `size` leaves, ready to grow.
async fn frontier(conn: &impl ConnectionTrait, size: u64) -> AppResult<Frontier> {
    let hashes = hashes(conn, &tree::decompose(0, size)).await?;
    Frontier::from_parts(size, hashes)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("the log's frontier has the wrong shape")))
}

/// The log after a catch-up: its size, and its root when the catch-up took entries in (the
/// root is then at hand, with no query).
#[derive(Debug, Clone, Copy)]
pub(super) struct Tree {
    pub size: u64,
    pub root: Option<Hash>,
}

/// Takes every entry past the tree's size into it, with its facets. Runs under the ledger
/// lock, inside the append's transaction, so nothing is appended meanwhile: a page shorter
/// than a full one is the last.
pub(super) async fn catch_up(tx: &impl ConnectionTrait) -> AppResult<Tree> {
    let mut caught = Tree {
        size: size(tx).await?,
        root: None,
    };
    loop {
        let page = ledger_entry::Entity::find()
            .filter(ledger_entry::Column::Seq.gt(i64::try_from(caught.size).unwrap_or(i64::MAX)))
            .order_by_asc(ledger_entry::Column::Seq)
            .limit(CATCH_UP_PAGE)
            .all(tx)
            .await?;
        if page.is_empty() {
            return Ok(caught);
        }
        let mut tree = frontier(tx, caught.size).await?;
        let mut made = Vec::new();
        for entry in &page {
            if u64::try_from(entry.seq).ok() != Some(tree.size() + 1) {
                return Err(AppError::internal(anyhow::anyhow!(
                    "ledger entry {} follows the log's {} leaves: an entry is missing",
                    entry.seq,
                    tree.size()
                )));
            }
            backfill_facets(tx, entry).await?;
            made.extend(tree.push(tree::leaf_hash(entry.body.as_bytes())));
        }
        insert_nodes(tx, &made).await?;
        caught = Tree {
            size: tree.size(),
            root: Some(tree.root()),
        };
        if (page.len() as u64) < CATCH_UP_PAGE {
            return Ok(caught);
        }
    }
}

/// Entries written before the log existed get their facets when they join the tree.
async fn backfill_facets(tx: &impl ConnectionTrait, entry: &ledger_entry::Model) -> AppResult<()> {
    let Ok(body) = StoredBody::parse(&entry.body) else {
        return Ok(()); // `audit verify` reports it; the tree still takes its bytes.
    };
    let facets = body.facets();
    if (
        facets.channel.as_ref(),
        facets.actor_kind.as_ref(),
        facets.outcome.as_ref(),
    ) == (
        entry.channel.as_ref(),
        entry.actor_kind.as_ref(),
        entry.outcome.as_ref(),
    ) {
        return Ok(());
    }
    ledger_entry::Entity::update_many()
        .col_expr(ledger_entry::Column::Channel, Expr::value(facets.channel))
        .col_expr(ledger_entry::Column::ActorKind, Expr::value(facets.actor_kind))
        .col_expr(ledger_entry::Column::Outcome, Expr::value(facets.outcome))
        .filter(ledger_entry::Column::Seq.eq(entry.seq))
        .exec(tx)
        .await?;
    Ok(())
}

async fn insert_nodes(tx: &impl ConnectionTrait, nodes: &[(Subtree, Hash)]) -> AppResult<()> {
    for chunk in nodes.chunks(INSERT_CHUNK) {
        log_node::Entity::insert_many(chunk.iter().map(|(s, h)| log_node::ActiveModel {
            id: sea_orm::Set(s.id()),
            hash: sea_orm::Set(hex::encode(h)),
        }))
        .on_conflict(OnConflict::column(log_node::Column::Id).do_nothing().to_owned())
        .exec_without_returning(tx)
        .await?;
    }
    Ok(())
}

/// The hashes of `ranges` of leaves, each folded from its perfect subtrees; one query.
async fn range_hashes(conn: &impl ConnectionTrait, ranges: &[(u64, u64)]) -> AppResult<Vec<Hash>> {
    let shapes: Vec<Vec<Subtree>> = ranges.iter().map(|&(a, b)| tree::decompose(a, b)).collect();
    let all: Vec<Subtree> = shapes.iter().flatten().copied().collect();
    let found = hashes(conn, &all).await?;
    let mut at = 0;
    let mut out = Vec::with_capacity(shapes.len());
    for shape in &shapes {
        let part = &found[at..at + shape.len()];
        at += shape.len();
        out.push(tree::fold(part).unwrap_or_else(tree::empty_root));
    }
    Ok(out)
}

/// The root of the tree's first `size` leaves.
pub async fn root_at(conn: &impl ConnectionTrait, size: u64) -> AppResult<Hash> {
    if size == 0 {
        return Ok(tree::empty_root());
    }
    Ok(range_hashes(conn, &[(0, size)]).await?.remove(0))
}

/// Leaf `index`'s audit path in the tree of `size` leaves.
pub async fn inclusion(conn: &impl ConnectionTrait, index: u64, size: u64) -> AppResult<Vec<Hash>> {
    range_hashes(conn, &tree::inclusion_ranges(index, size)).await
}

/// The proof that the tree of `old` leaves is a prefix of the tree of `new`.
pub async fn consistency(conn: &impl ConnectionTrait, old: u64, new: u64) -> AppResult<Vec<Hash>> {
    range_hashes(conn, &tree::consistency_ranges(old, new)).await
}

fn head_of(row: log_head::Model) -> SignedHead {
    SignedHead {
        size: u64::try_from(row.size).unwrap_or(0),
        root: row.root,
        timestamp: crate::transparency::head_timestamp(row.signed_at),
        key_id: row.key_id,
        signature: row.signature,
    }
}

/// The newest signed head, if any was signed.
pub async fn newest_head(conn: &impl ConnectionTrait) -> AppResult<Option<SignedHead>> {
    Ok(log_head::Entity::find()
        .order_by_desc(log_head::Column::Size)
        .one(conn)
        .await?
        .map(head_of))
}

/// The head signed at exactly `size` entries.
pub async fn head_at(conn: &impl ConnectionTrait, size: u64) -> AppResult<Option<SignedHead>> {
    Ok(
        log_head::Entity::find_by_id(i64::try_from(size).unwrap_or(i64::MAX))
            .one(conn)
            .await?
            .map(head_of),
    )
}

/// Signs a head for the ledger as it is now, unless one of this size is signed already (then
/// that one is returned). Takes in any entries the tree lacks first.
pub async fn sign_head(db: &Database, signer: &LogSigner, now: DateTime<Utc>) -> AppResult<SignedHead> {
    let tx = db.begin_write().await?;
    db.serialize_on(&tx, LEDGER_LOCK).await?;
    let head = sign_head_in(&tx, signer, now).await?;
    tx.commit().await?;
    Ok(head)
}

/// [`sign_head`] inside `tx`, which holds the ledger lock: a head that commits with the
/// entries it covers.
async fn sign_head_in(
    tx: &impl ConnectionTrait,
    signer: &LogSigner,
    now: DateTime<Utc>,
) -> AppResult<SignedHead> {
    let tree = catch_up(tx).await?;
    sign_caught_up(tx, signer, tree, now).await
}

/// Signs a head for `tree`, which a catch-up in `tx` (holding the ledger lock) returned.
pub(super) async fn sign_caught_up(
    tx: &impl ConnectionTrait,
    signer: &LogSigner,
    tree: Tree,
    now: DateTime<Utc>,
) -> AppResult<SignedHead> {
    let root = match tree.root {
        // The tree just grew: no head of this size can exist yet.
        Some(root) => root,
        None => {
            if let Some(head) = head_at(tx, tree.size).await? {
                return Ok(head);
            }
            root_at(tx, tree.size).await?
        }
    };
    let at = now.trunc_subsecs(3);
    let head = signer.sign(tree.size, &root, at);
    log_head::Entity::insert(log_head::ActiveModel {
        size: sea_orm::Set(i64::try_from(tree.size).map_err(AppError::internal)?),
        root: sea_orm::Set(head.root.clone()),
        signed_at: sea_orm::Set(at),
        key_id: sea_orm::Set(head.key_id.clone()),
        signature: sea_orm::Set(head.signature.clone()),
    })
    .on_conflict(OnConflict::column(log_head::Column::Size).do_nothing().to_owned())
    .exec_without_returning(tx)
    .await?;
    Ok(head)
}
