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
    models::{ledger_entry, processor_delivery},
    services::deletion,
    transparency::{
        ConsistencyDocument, LogSigner,
        receipt::{Acknowledgement, Leaf, RECEIPT_VERSION, Receipt, facts_of},
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
    let acks = acknowledgements(db, &request.id).await?;
    let newest = acks
        .iter()
        .map(|a| a.seq)
        .max()
        .map_or(seq, |a| u64::try_from(a).map_or(seq, |a| a.max(seq)));
    let head = match log::newest_head(&db.conn).await? {
        Some(head) if head.size >= newest => head,
        _ => log::sign_head(db, signer, now).await?,
    };
    let mut processors = Vec::with_capacity(acks.len());
    for ack in acks {
        let ack_seq = u64::try_from(ack.seq).map_err(AppError::internal)?;
        let ack_proof = log::inclusion(&db.conn, ack_seq.saturating_sub(1), head.size).await?;
        let body: serde_json::Value = serde_json::from_str(&ack.body).map_err(AppError::internal)?;
        let processor = body["data"]["processor"].as_str().unwrap_or_default().to_owned();
        processors.push(Acknowledgement {
            processor,
            acknowledged_at: body["recorded_at"].as_str().unwrap_or_default().to_owned(),
            ledger: Leaf {
                seq: ack_seq,
                body: ack.body,
            },
            inclusion_proof: ack_proof.iter().map(hex::encode).collect(),
        });
    }
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
        processors,
    })
}

/// The ledger entries of the processors' acknowledgements of a deletion (not pruned), oldest
/// first.
async fn acknowledgements(db: &Database, request_id: &str) -> AppResult<Vec<ledger_entry::Model>> {
    use sea_orm::QueryOrder;
    let deliveries: Vec<String> = processor_delivery::Entity::find()
        .filter(processor_delivery::Column::RequestId.eq(request_id))
        .filter(processor_delivery::Column::AcknowledgedAt.is_not_null())
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    Ok(ledger_entry::Entity::find()
        .filter(ledger_entry::Column::Event.eq("processor_acknowledged"))
        .filter(ledger_entry::Column::RequestId.is_in(deliveries))
        .filter(ledger_entry::Column::PrunedAt.is_null())
        .order_by_asc(ledger_entry::Column::Seq)
        .all(&db.conn)
        .await?)
}
