//! The re-registration cool-off (`accounts.reuse_cooloff_days`): for a while after a deletion,
//! its email and VSee ID cannot sign up again, nor become another account's email.
//!
//! Invariant: a block names an identifier only by the keyed pseudonym the ledger already uses,
//! so the cool-off keeps nothing the ledger does not; it is written in the transaction that
//! removes the account row (no moment exists when the identifier is free), and it ends by
//! itself: a block past its `until` refuses nothing, and the vacuum removes it. Refusals say
//! neither which of the two identifiers is held nor until when: that would describe the
//! deleted account.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::OnConflict};

use crate::{
    db::Database,
    domain::{Email, VseeId},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::reuse_block,
    services::{
        ledger::{
            self,
            events::{AuditEvent, ReuseBlockLifted, Subjects},
        },
        text::reason_text,
    },
};

/// Holds `pseudonyms` until `until`, inside the caller's transaction. Holding one again moves
/// its end.
pub async fn hold<C: ConnectionTrait>(
    conn: &C,
    pseudonyms: &[&str],
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    for pseudonym in pseudonyms.iter().filter(|p| !p.is_empty()) {
        reuse_block::Entity::insert(reuse_block::ActiveModel {
            pseudonym: Set((*pseudonym).to_owned()),
            until: Set(until),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::column(reuse_block::Column::Pseudonym)
                .update_column(reuse_block::Column::Until)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// Refuses, with `identifier_cooling_off`, an email or VSee ID still cooling off.
pub async fn refuse_if_cooling_off(
    db: &Database,
    keys: &Keys,
    now: DateTime<Utc>,
    vsee_id: Option<&VseeId>,
    email: Option<&Email>,
) -> AppResult<()> {
    let pseudonyms: Vec<String> = vsee_id
        .map(|id| keys.pseudonym("vsee_id", id.as_str()))
        .into_iter()
        .chain(email.map(|e| keys.pseudonym("email", e.as_str())))
        .collect();
    if pseudonyms.is_empty() {
        return Ok(());
    }
    let held = reuse_block::Entity::find()
        .filter(reuse_block::Column::Pseudonym.is_in(pseudonyms))
        .filter(reuse_block::Column::Until.gt(now))
        .one(&db.conn)
        .await?;
    match held {
        Some(_) => Err(AppError::IdentifierCoolingOff),
        None => Ok(()),
    }
}

/// An identifier given by an admin: an email (it has an @) or a VSee ID, as its pseudonym.
fn pseudonym_of(keys: &Keys, identifier: &str) -> AppResult<String> {
    let refuse = |_| AppError::InvalidInput("identifier must be an email address or a VSee ID".into());
    let identifier = identifier.trim();
    if identifier.contains('@') {
        let email = Email::parse(identifier).map_err(refuse)?;
        Ok(keys.pseudonym("email", email.as_str()))
    } else {
        let id = VseeId::parse(identifier).map_err(refuse)?;
        Ok(keys.pseudonym("vsee_id", id.as_str()))
    }
}

/// What lifting a block ended.
#[derive(Debug, Clone)]
pub struct Lifted {
    /// When the block would have ended.
    pub until: DateTime<Utc>,
}

/// An admin lets one identifier sign up again before its cool-off ends, with a reason, signed
/// into the ledger's event (the admin is told not to name anyone in it: nothing else keeps it,
/// and the ledger cannot forget it before its retention ends). Not found when no block holds
/// it now.
pub async fn lift(
    env: Env<'_>,
    keys: &Keys,
    staff_id: i64,
    identifier: &str,
    reason: &str,
) -> AppResult<Lifted> {
    let reason = reason_text(reason)?;
    let pseudonym = pseudonym_of(keys, identifier)?;
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let block = reuse_block::Entity::find_by_id(pseudonym.clone())
        .one(&tx)
        .await?
        .filter(|b| b.until > now)
        .ok_or(AppError::NotFound)?;
    let removed = reuse_block::Entity::delete_many()
        .filter(reuse_block::Column::Pseudonym.eq(&pseudonym))
        .filter(reuse_block::Column::Until.eq(block.until))
        .exec(&tx)
        .await?
        .rows_affected;
    if removed != 1 {
        return Err(AppError::Conflict(
            "the block changed meanwhile; try again".into(),
        ));
    }
    let event = AuditEvent::ReuseBlockLifted(ReuseBlockLifted {
        key: uuid::Uuid::new_v4().to_string(),
        subjects: subjects_of(identifier, pseudonym),
        staff_id,
        until: block.until,
        reason,
    });
    ledger::record_in(&tx, env.db, keys, &event, now).await?;
    tx.commit().await?;
    tracing::info!(staff_id, "re-registration block lifted");
    Ok(Lifted { until: block.until })
}

fn subjects_of(identifier: &str, pseudonym: String) -> Subjects {
    if identifier.contains('@') {
        Subjects {
            vsee_id: String::new(),
            email: Some(pseudonym),
        }
    } else {
        Subjects {
            vsee_id: pseudonym,
            email: None,
        }
    }
}

/// Removes blocks that have ended.
pub async fn vacuum(db: &Database, now: DateTime<Utc>) -> AppResult<u64> {
    Ok(reuse_block::Entity::delete_many()
        .filter(reuse_block::Column::Until.lte(now))
        .exec(&db.conn)
        .await?
        .rows_affected)
}
