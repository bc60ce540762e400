//! Mail that could not be read as mail, kept raw for an admin: listed (without its bytes) and
//! fetched one at a time. It is deleted `support.retention_days` after it came (the vacuum).

use sea_orm::{EntityTrait, QueryOrder, QuerySelect, sea_query::Expr};

use crate::{
    domain::IntakeDoor,
    env::Env,
    error::{AppError, AppResult},
    models::quarantined_mail,
};

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
            .column_as(Expr::cust("CAST(LENGTH(raw) AS BIGINT)"), "bytes")
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

/// One message with its raw bytes.
pub async fn find(env: Env<'_>, id: i64) -> AppResult<quarantined_mail::Model> {
    quarantined_mail::Entity::find_by_id(id)
        .one(&env.db.conn)
        .await?
        .ok_or(AppError::NotFound)
}
