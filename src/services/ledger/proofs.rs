//! The documents that let anyone check the log without the server's secret: a consistency
//! proof between two heads, and a deletion's signed receipt. Each is built from one reading
//! of the log; a receipt's head is the newest, signed on demand when none covers its entry yet.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::log;
use crate::{
    db::Database,
    domain::DeletionStatus,
    error::{AppError, AppResult},
    models::ledger_entry,
    services::deletion,
    transparency::{
        ConsistencyDocument, LogSigner,
        receipt::{Leaf, RECEIPT_VERSION, Receipt, facts_of},
    },
};

/// The proof that the log at `from` entries is a prefix of the log at `to`, where a head was
/// signed at `to`.
pub async fn consistency(db: &Database, from: u64, to: u64) -> AppResult<ConsistencyDocument> {
    if from > to {
        return Err(AppError::InvalidInput(format!(
            "from ({from}) must not be larger than to ({to})"
        )));
    }
    let head = log::head_at(&db.conn, to).await?.ok_or(AppError::NotFound)?;
    let proof = log::consistency(&db.conn, from, to).await?;
    Ok(ConsistencyDocument {
        from,
        to,
        head,
        proof: proof.iter().map(hex::encode).collect(),
    })
}

/// The signed receipt of the deletion `raw_receipt` names, once its ledger entry is written.
pub async fn receipt(
    db: &Database,
    signer: &LogSigner,
    now: DateTime<Utc>,
    raw_receipt: &str,
) -> AppResult<Receipt> {
    let request = deletion::request_by_receipt(db, raw_receipt).await?;
    if request.status != DeletionStatus::Completed {
        return Err(AppError::Conflict(
            "the deletion is not completed yet: its receipt exists once its ledger entry is written".into(),
        ));
    }
    let entry = ledger_entry::Entity::find()
        .filter(ledger_entry::Column::RequestId.eq(&request.id))
        .filter(ledger_entry::Column::Event.eq("account_deleted"))
        .one(&db.conn)
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("completed request {} has no entry", request.id))
        })?;
    if entry.pruned_at.is_some() {
        return Err(AppError::Conflict(
            "the deletion's ledger entry was pruned after the retention period: a receipt downloaded earlier still verifies".into(),
        ));
    }
    let seq = u64::try_from(entry.seq).map_err(AppError::internal)?;
    let head = match log::newest_head(&db.conn).await? {
        Some(head) if head.size >= seq => head,
        _ => log::sign_head(db, signer, now).await?,
    };
    let proof = log::inclusion(&db.conn, seq.saturating_sub(1), head.size).await?;
    let body: serde_json::Value = serde_json::from_str(&entry.body).map_err(AppError::internal)?;
    let facts = facts_of(&body).map_err(AppError::internal)?;
    Ok(Receipt {
        v: RECEIPT_VERSION,
        receipt_id: raw_receipt.to_owned(),
        request_id: facts.request_id,
        channel: facts.channel,
        requested_at: facts.requested_at,
        completed_at: facts.completed_at,
        stores: facts.stores,
        retained: facts.retained,
        confirmation_sent_at: facts.confirmation_sent_at,
        ledger: Leaf {
            seq,
            body: entry.body,
        },
        inclusion_proof: proof.iter().map(hex::encode).collect(),
        head,
    })
}
