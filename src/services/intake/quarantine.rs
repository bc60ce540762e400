//! Mail that could not be read as mail, kept raw for an admin: listed (without its bytes) and
//! fetched one at a time. It is deleted `support.retention_days` after it came (the sweep).
//!
//! Invariant: the raw bytes are stored sealed under a key of the message's own
//! (`KeyOwner::Quarantine`), which the sweep destroys with the row, so a backup of the
//! database keeps nothing readable of a message once it has aged out and the epoch turned.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::Expr,
};

use crate::{
    domain::IntakeDoor,
    env::Env,
    error::{AppError, AppResult},
    models::quarantined_mail,
    vault::{
        KeyOwner,
        cipher::{OVERHEAD, PREFIX},
    },
};

/// What the raw bytes are sealed for.
pub const RAW: &str = "quarantined_mail.raw";

/// Keeps `raw` for an admin, sealed: the row (its id names the key), the key and the sealed
/// bytes commit together. Returns the row's id.
pub async fn keep(env: Env<'_>, door: IntakeDoor, reason: &str, raw: &[u8]) -> AppResult<i64> {
    let tx = env.db.begin_write().await?;
    let kept = quarantined_mail::ActiveModel {
        received_at: Set(env.now()),
        door: Set(door),
        reason: Set(reason.to_owned()),
        raw: Set(Vec::new()),
        ..Default::default()
    }
    .insert(&tx)
    .await?;
    seal_row(&tx, env, kept.id, raw).await?;
    tx.commit().await?;
    Ok(kept.id)
}

/// Stores `raw` as row `id`'s bytes, sealed under the row's own key (made if it has none), in
/// `tx`.
async fn seal_row(tx: &DatabaseTransaction, env: Env<'_>, id: i64, raw: &[u8]) -> AppResult<()> {
    let key = env
        .vault
        .create_key(tx, &KeyOwner::Quarantine(id), env.now())
        .await?;
    quarantined_mail::Entity::update_many()
        .col_expr(
            quarantined_mail::Column::Raw,
            Expr::value(key.seal_bytes(RAW, raw).into_bytes()),
        )
        .filter(quarantined_mail::Column::Id.eq(id))
        .exec(tx)
        .await?;
    Ok(())
}

/// SQL that is true for a row whose bytes are sealed (they start with the sealed prefix).
fn sealed_sql(backend: DbBackend) -> String {
    let prefix = hex::encode(PREFIX);
    match backend {
        DbBackend::Postgres => format!("substr(raw, 1, {}) = '\\x{prefix}'::bytea", PREFIX.len()),
        _ => format!(
            "hex(substr(raw, 1, {})) = '{}'",
            PREFIX.len(),
            prefix.to_uppercase()
        ),
    }
}

/// The size of the message as it came, in SQL: a sealed value is the prefix and unpadded
/// base64 of nonce, bytes and tag; a row from before encryption is as it came.
fn size_sql(backend: DbBackend) -> String {
    format!(
        "CAST(CASE WHEN {} THEN (length(raw) - {}) * 3 / 4 - {} ELSE length(raw) END AS BIGINT)",
        sealed_sql(backend),
        PREFIX.len(),
        OVERHEAD
    )
}

/// One quarantined message, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub id: i64,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub door: IntakeDoor,
    pub reason: String,
    pub bytes: i64,
}

/// The newest first, at most `limit`.
pub async fn list(env: Env<'_>, limit: u64) -> AppResult<Vec<Quarantined>> {
    // The size from the database: listing never reads the (up to 10 MiB) messages.
    let rows: Vec<(i64, chrono::DateTime<chrono::Utc>, IntakeDoor, String, i64)> =
        quarantined_mail::Entity::find()
            .select_only()
            .column(quarantined_mail::Column::Id)
            .column(quarantined_mail::Column::ReceivedAt)
            .column(quarantined_mail::Column::Door)
            .column(quarantined_mail::Column::Reason)
            .column_as(Expr::cust(size_sql(env.db.backend())), "bytes")
            .order_by_desc(quarantined_mail::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&env.db.conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, received_at, door, reason, bytes)| Quarantined {
            id,
            received_at,
            door,
            reason,
            bytes,
        })
        .collect())
}

/// One message with its raw bytes, opened.
pub async fn find(env: Env<'_>, id: i64) -> AppResult<quarantined_mail::Model> {
    let row = quarantined_mail::Entity::find_by_id(id)
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)?;
    match env.vault.key(&env.db.conn, &KeyOwner::Quarantine(id)).await? {
        Some(key) => {
            let raw = key.open_file(RAW, &row.raw)?;
            Ok(quarantined_mail::Model { raw, ..row })
        }
        // Kept before encryption: as it came. (Sealed with its key gone is the sweep's
        // work half-seen: the row goes in the same transaction.)
        None if !row.raw.starts_with(PREFIX.as_bytes()) => Ok(row),
        None => Err(AppError::NotFound),
    }
}

/// Seals the messages kept before encryption, each under a key of its own (the migration to
/// sealed storage, `services::seal_existing`); how many.
pub async fn seal_existing(env: Env<'_>) -> AppResult<u64> {
    let in_clear = format!("NOT ({})", sealed_sql(env.db.backend()));
    let ids: Vec<i64> = quarantined_mail::Entity::find()
        .select_only()
        .column(quarantined_mail::Column::Id)
        .filter(Expr::cust(in_clear.clone()))
        .into_tuple()
        .all(&env.db.conn)
        .await?;
    let mut sealed = 0;
    for id in ids {
        let tx = env.db.begin_write().await?;
        // Under the row's lock, and only if still in clear: a sweep or another run meanwhile
        // wins.
        let Some(row) = quarantined_mail::Entity::find_by_id(id)
            .filter(Expr::cust(in_clear.clone()))
            .lock_exclusive()
            .one(&tx)
            .await?
        else {
            tx.rollback().await?;
            continue;
        };
        seal_row(&tx, env, id, &row.raw).await?;
        tx.commit().await?;
        sealed += 1;
    }
    Ok(sealed)
}
