//! Crypto-shredding: every personal field is sealed under a random data key of its owner (an
//! account, or a deletion request's confirmation address), and the data keys are stored
//! wrapped under an epoch key that lives outside the database ([`store`]).
//!
//! Invariant: a data key is readable only while its row in `data_keys` and its epoch's key
//! both exist. Destroying the row (the purge, in the account row's transaction) makes every
//! sealed copy unreadable, in the database, its WAL and every backup; destroying an epoch key
//! (rotation, [`rotation`]) does the same for every backup older than the epoch.

pub mod cipher;
pub mod columns;
pub mod rotation;
pub mod sealed_file;
pub mod store;
pub mod tombstones;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::OnConflict};

pub use cipher::{CipherError, SymmetricKey, is_sealed};
pub use store::{FileKeyStore, KeyStore};
pub use tombstones::Tombstones;

use crate::{
    domain::{Email, VseeId},
    error::{AppError, AppResult},
    keys::Keys,
    models::data_key,
};

/// Whose data a key seals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    Account(i64),
    /// The address a deletion's confirmation email goes to, kept until that email is sent
    /// or has failed for good.
    Confirmation(String),
    /// A support ticket: its sender, subject, message, replies, notes and the notices to its
    /// requester. Destroyed when the ticket is erased.
    Ticket(i64),
    /// A quarantined message's raw bytes: a key per message, destroyed with the row when the
    /// message ages out (`support.retention_days`).
    Quarantine(i64),
}

impl KeyOwner {
    pub fn name(&self) -> String {
        match self {
            Self::Account(id) => format!("account:{id}"),
            Self::Confirmation(request) => format!("confirmation:{request}"),
            Self::Ticket(id) => format!("ticket:{id}"),
            Self::Quarantine(id) => format!("quarantine:{id}"),
        }
    }
}

/// One owner's data key, unwrapped: seals and opens that owner's fields.
#[derive(Debug, Clone)]
pub struct DataKey {
    owner: String,
    key: SymmetricKey,
}

impl DataKey {
    /// The associated data binds a value to its column and owner.
    fn place(&self, column: &str) -> String {
        format!("{column}|{}", self.owner)
    }

    pub fn seal(&self, column: &str, plain: &str) -> String {
        self.key.seal(&self.place(column), plain.as_bytes())
    }

    pub fn seal_bytes(&self, column: &str, plain: &[u8]) -> String {
        self.key.seal(&self.place(column), plain)
    }

    pub fn open(&self, column: &str, stored: &str) -> AppResult<String> {
        self.key
            .open_text(&self.place(column), stored)
            .map_err(|e| AppError::internal(anyhow::anyhow!("{column}: {e}")))
    }

    /// Chunk `index` of a file sealed in chunks (`sealed_file`), for the file's `place`.
    pub fn seal_chunk(&self, place: &str, index: u64, plain: &[u8]) -> Vec<u8> {
        self.key
            .seal_raw(&format!("{}|{index}", self.place(place)), plain)
    }

    pub fn open_chunk(
        &self,
        place: &str,
        index: u64,
        stored: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, CipherError> {
        self.key
            .open_raw(&format!("{}|{index}", self.place(place)), stored)
    }

    #[cfg(test)]
    pub(crate) fn for_tests(owner: &str, key: SymmetricKey) -> Self {
        Self {
            owner: owner.to_owned(),
            key,
        }
    }

    /// A file's contents: sealed (text, as a column) or, written before encryption, as is.
    pub fn open_file(&self, store: &str, stored: &[u8]) -> AppResult<Vec<u8>> {
        match std::str::from_utf8(stored) {
            Ok(text) if is_sealed(text) => self
                .key
                .open(&self.place(store), text)
                .map(|b| b.to_vec())
                .map_err(|e| AppError::internal(anyhow::anyhow!("{store}: {e}"))),
            _ => Ok(stored.to_vec()),
        }
    }
}

/// The data keys and what opens them.
#[derive(Debug, Clone)]
pub struct Vault {
    store: Arc<dyn KeyStore>,
    tombstones: Tombstones,
    keys: Keys,
    epoch_days: u32,
    epoch_cache: Arc<RwLock<HashMap<u64, (std::time::Instant, SymmetricKey)>>>,
}

/// How long an epoch key read from the store is used before it is read again.
const EPOCH_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(5);

impl Vault {
    pub fn new(store: Arc<dyn KeyStore>, tombstones: Tombstones, keys: Keys, epoch_days: u32) -> Self {
        Self {
            store,
            tombstones,
            keys,
            epoch_days: epoch_days.max(1),
            epoch_cache: Arc::default(),
        }
    }

    pub fn store(&self) -> &dyn KeyStore {
        self.store.as_ref()
    }

    /// The deletions recorded outside the database, for the restore guard.
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// The blind index of a VSee ID: the ledger's pseudonym of it, so log-in can find the
    /// row and a tombstone in the ledger names the same row, without the ID in clear.
    pub fn blind_vsee_id(&self, id: &VseeId) -> String {
        self.keys.pseudonym("vsee_id", id.as_str())
    }

    pub fn blind_email(&self, email: &Email) -> String {
        self.keys.pseudonym("email", email.as_str())
    }

    /// The epoch `now` falls in: days since 1970 over `keys.epoch_days`.
    pub fn epoch_at(&self, now: DateTime<Utc>) -> u64 {
        let days = u64::try_from(now.timestamp().div_euclid(86_400)).unwrap_or(0);
        days / u64::from(self.epoch_days)
    }

    /// The newest epoch key, created for `now`'s epoch when the store has none.
    fn wrapping_key(&self, now: DateTime<Utc>) -> AppResult<(u64, SymmetricKey)> {
        let newest = self.store.epochs().map_err(AppError::internal)?.last().copied();
        let epoch = newest.unwrap_or_else(|| self.epoch_at(now));
        let key = match self.cached_epoch_key(epoch)? {
            Some(key) => key,
            None => self.store.create(epoch).map_err(AppError::internal)?,
        };
        Ok((epoch, key))
    }

    fn epoch_key(&self, epoch: u64) -> AppResult<SymmetricKey> {
        self.cached_epoch_key(epoch)?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "the key of epoch {epoch} has been destroyed: data wrapped under it is gone"
            ))
        })
    }

    /// An epoch key, read from the store at most every [`EPOCH_KEY_TTL`]: every request
    /// unwraps a data key, and the store is a file (or a KMS) away. Kept that briefly so that
    /// a key destroyed by another process is gone from this one within seconds too.
    fn cached_epoch_key(&self, epoch: u64) -> AppResult<Option<SymmetricKey>> {
        let now = std::time::Instant::now();
        if let Ok(cache) = self.epoch_cache.read()
            && let Some((read_at, key)) = cache.get(&epoch)
            && now.duration_since(*read_at) < EPOCH_KEY_TTL
        {
            return Ok(Some(key.clone()));
        }
        let loaded = self.store.load(epoch).map_err(AppError::internal)?;
        if let Ok(mut cache) = self.epoch_cache.write() {
            cache.retain(|_, (read_at, _)| now.duration_since(*read_at) < EPOCH_KEY_TTL);
            match &loaded {
                Some(key) => {
                    cache.insert(epoch, (now, key.clone()));
                }
                None => {
                    cache.remove(&epoch);
                }
            }
        }
        Ok(loaded)
    }

    /// Forgets the cached epoch keys (after this process destroyed one).
    pub(crate) fn forget_epoch_keys(&self) {
        if let Ok(mut cache) = self.epoch_cache.write() {
            cache.clear();
        }
    }

    /// The blind index of an identifier stored before sign-up checked it (it does not parse
    /// any more): the pseudonym of the value as stored, trimmed and lower-cased.
    pub fn blind_raw(&self, kind: &str, value: &str) -> String {
        self.keys.pseudonym(kind, &value.trim().to_lowercase())
    }

    /// A new random data key for `owner`, stored wrapped in `conn`'s transaction. An owner
    /// that already has one keeps it (a retried step seals with the same key).
    pub async fn create_key<C: ConnectionTrait>(
        &self,
        conn: &C,
        owner: &KeyOwner,
        now: DateTime<Utc>,
    ) -> AppResult<DataKey> {
        if let Some(existing) = self.key(conn, owner).await? {
            return Ok(existing);
        }
        let name = owner.name();
        let key = SymmetricKey::generate();
        let (epoch, wrapping) = self.wrapping_key(now)?;
        let stored = data_key::Entity::insert(data_key::ActiveModel {
            owner: Set(name.clone()),
            epoch: Set(i64::try_from(epoch).unwrap_or(i64::MAX)),
            wrapped: Set(wrapping.seal(&wrap_place(&name), key.expose())),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(data_key::Column::Owner)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
        if stored == 1 {
            return Ok(DataKey { owner: name, key });
        }
        // A racing step stored its own first: use that one.
        self.key(conn, owner)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("a data key vanished as it was stored")))
    }

    /// The data keys of several owners in one statement, by owner name; an owner without one
    /// is absent.
    pub async fn keys<C: ConnectionTrait>(
        &self,
        conn: &C,
        owners: &[KeyOwner],
    ) -> AppResult<HashMap<String, DataKey>> {
        if owners.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = data_key::Entity::find()
            .filter(data_key::Column::Owner.is_in(owners.iter().map(KeyOwner::name)))
            .all(conn)
            .await?;
        rows.iter()
            .map(|row| Ok((row.owner.clone(), self.unwrap_row(row)?)))
            .collect()
    }

    /// The owner's data key, or `None` when it has none (never had, or destroyed).
    pub async fn key<C: ConnectionTrait>(&self, conn: &C, owner: &KeyOwner) -> AppResult<Option<DataKey>> {
        let name = owner.name();
        let Some(row) = data_key::Entity::find_by_id(name.clone()).one(conn).await? else {
            return Ok(None);
        };
        Ok(Some(self.unwrap_row(&row)?))
    }

    pub(crate) fn unwrap_row(&self, row: &data_key::Model) -> AppResult<DataKey> {
        self.unwrap(&row.owner, row.epoch, &row.wrapped)
    }

    /// The data key of `owner` from its stored form (its row's `epoch` and `wrapped`), read by
    /// the caller's own statement (an account read joins its key row).
    pub(crate) fn unwrap(&self, owner: &str, epoch: i64, wrapped: &str) -> AppResult<DataKey> {
        let epoch = u64::try_from(epoch).map_err(AppError::internal)?;
        let wrapping = self.epoch_key(epoch)?;
        let bytes = wrapping
            .open(&wrap_place(owner), wrapped)
            .map_err(AppError::internal)?;
        let key = SymmetricKey::from_bytes(&bytes)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("a data key is not 32 bytes")))?;
        Ok(DataKey {
            owner: owner.to_owned(),
            key,
        })
    }

    /// Destroys the owner's data key in `conn`'s transaction: from its commit on, every value
    /// sealed under it is unreadable wherever a copy of it lies. Returns whether one existed.
    pub async fn destroy<C: ConnectionTrait>(&self, conn: &C, owner: &KeyOwner) -> AppResult<bool> {
        let removed = data_key::Entity::delete_many()
            .filter(data_key::Column::Owner.eq(owner.name()))
            .exec(conn)
            .await?
            .rows_affected;
        Ok(removed > 0)
    }
}

/// A wrapped key is bound to its owner: it cannot be moved to another owner's row.
fn wrap_place(owner: &str) -> String {
    format!("data_keys.wrapped|{owner}")
}

/// How many data keys each epoch wraps (`erasure keys status`).
pub async fn epoch_counts(db: &crate::db::Database) -> AppResult<std::collections::BTreeMap<u64, u64>> {
    use sea_orm::{
        QuerySelect,
        sea_query::{Expr, ExprTrait},
    };
    let rows: Vec<(i64, i64)> = data_key::Entity::find()
        .select_only()
        .column(data_key::Column::Epoch)
        .column_as(Expr::col(data_key::Column::Owner).count(), "n")
        .group_by(data_key::Column::Epoch)
        .into_tuple()
        .all(&db.conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(e, n)| (u64::try_from(e).unwrap_or(0), u64::try_from(n).unwrap_or(0)))
        .collect())
}
