//! Downstream processors are told of each completed deletion (GDPR Art. 19, CCPA §7022): one
//! signed webhook per processor, on its own job, retried with backoff until the processor
//! acknowledges (answers 2xx), dead after the last attempt.
//!
//! Invariant: a deletion's deliveries are written in the transaction that completes it (with
//! its ledger entry), so every completed deletion is offered to every processor configured
//! then; an acknowledgement is recorded once, in one transaction with its ledger entry, so the
//! receipt can prove it. The payload names the subject only by that processor's pseudonym
//! and the receipt id.
//!
//! Signature (the convention of Stripe's webhooks): `Erasure-Signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. A receiver recomputes it, compares in constant
//! time, refuses a `t` more than five minutes away from its clock (a replay), and deduplicates
//! on the body's `id` (a retry sends the same `id`, freshly signed).

mod config;
mod deliveries;

pub use config::{Processor, load};
pub use deliveries::{Delivery, DeliveryState, Standing, deliveries, standing};

use chrono::{DateTime, Utc};
use erasure_jobs::JobKind;
use hmac::{Hmac, Mac};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

use crate::{
    domain::DeletionStatus,
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::{deletion_request, processor_delivery},
    services::{
        ledger::{
            self,
            events::{AuditEvent, ProcessorAcknowledged, Subjects},
        },
        outbox,
    },
};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Erasure-Signature";

/// `t=<timestamp>,v1=<hex>` over `"<timestamp>.<body>"`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(mac(secret, timestamp, body)))
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Vec::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// What a receiver does with a delivery: true when `header` signs `body` with `secret` and
/// its timestamp is within `tolerance` of `now`.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: DateTime<Utc>,
    tolerance: chrono::Duration,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.extend(hex::decode(v).ok()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return false;
    };
    if (now.timestamp() - timestamp).abs() > tolerance.num_seconds() {
        return false;
    }
    let Ok(mut expected) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    expected.update(timestamp.to_string().as_bytes());
    expected.update(b".");
    expected.update(body);
    signatures
        .iter()
        .any(|s| expected.clone().verify_slice(s).is_ok())
}

/// Offers a completed deletion to every processor, inside the transaction that completes it.
pub async fn offer_in(
    tx: &DatabaseTransaction,
    processors: &[Processor],
    request_id: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    for processor in processors {
        let id = Uuid::new_v4();
        processor_delivery::ActiveModel {
            id: Set(id.to_string()),
            request_id: Set(request_id.to_owned()),
            processor: Set(processor.name.clone()),
            created_at: Set(now),
            attempts: Set(0),
            last_attempt_at: Set(None),
            last_status: Set(None),
            last_error: Set(None),
            acknowledged_at: Set(None),
            dead_at: Set(None),
        }
        .insert(tx)
        .await?;
        outbox::add(tx, JobKind::ProcessorNotice, id, now).await?;
    }
    Ok(())
}

/// What sending a delivery needs besides the environment.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub keys: &'a Keys,
    pub client: &'a reqwest::Client,
    pub processors: &'a [Processor],
}

/// Sends delivery `id` once, unless it was acknowledged already. A 2xx is the
/// acknowledgement; anything else is an error, and the job is tried again.
pub async fn deliver(env: Env<'_>, sender: Sender<'_>, id: Uuid) -> AppResult<()> {
    let Some(delivery) = processor_delivery::Entity::find_by_id(id.to_string())
        .one(&env.db.conn)
        .await?
    else {
        return Ok(());
    };
    if delivery.acknowledged_at.is_some() {
        return Ok(());
    }
    let Some(processor) = sender.processors.iter().find(|p| p.name == delivery.processor) else {
        // Taken out of the configuration since: nobody to tell. Stays unacknowledged, and the
        // reports show it.
        return Err(AppError::Conflict(format!(
            "processor {} is no longer configured",
            delivery.processor
        )));
    };
    let request = deletion_request::Entity::find_by_id(&delivery.request_id)
        .one(&env.db.conn)
        .await?
        .filter(|r| r.status == DeletionStatus::Completed)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("delivery {id} names no completed deletion")))?;
    let body = serde_json::to_vec(&json!({
        "id": delivery.id,
        "type": "account.deleted",
        "created_at": ledger::events::timestamp(delivery.created_at),
        "data": {
            "subject": sender.keys.processor_pseudonym(&processor.name, &request.subject),
            "receipt_id": sender.keys.receipt(&request.id).expose(),
            "deleted_at": request.completed_at.map(ledger::events::timestamp),
        },
    }))
    .map_err(AppError::internal)?;
    let now = env.now();
    let sent = sender
        .client
        .post(processor.url.clone())
        .header("Content-Type", "application/json")
        .header(
            SIGNATURE_HEADER,
            signature(processor.secret(), now.timestamp(), &body),
        )
        .header("Erasure-Delivery", &delivery.id)
        .body(body)
        .send()
        .await;
    let (status, error) = match sent {
        Ok(answer) if answer.status().is_success() => {
            return acknowledge(env, sender.keys, &delivery, &request, answer.status().as_u16()).await;
        }
        Ok(answer) => (
            Some(i32::from(answer.status().as_u16())),
            format!("{} answered {}", processor.name, answer.status()),
        ),
        Err(e) => (None, format!("{} could not be reached: {e}", processor.name)),
    };
    processor_delivery::Entity::update_many()
        .col_expr(
            processor_delivery::Column::Attempts,
            Expr::col(processor_delivery::Column::Attempts).add(1),
        )
        .col_expr(processor_delivery::Column::LastAttemptAt, Expr::value(now))
        .col_expr(processor_delivery::Column::LastStatus, Expr::value(status))
        .col_expr(processor_delivery::Column::LastError, Expr::value(error.clone()))
        .filter(processor_delivery::Column::Id.eq(&delivery.id))
        .exec(&env.db.conn)
        .await?;
    Err(AppError::Unavailable(anyhow::anyhow!(error)))
}

async fn acknowledge(
    env: Env<'_>,
    keys: &Keys,
    delivery: &processor_delivery::Model,
    request: &deletion_request::Model,
    status: u16,
) -> AppResult<()> {
    let now = env.now();
    let tx = env.db.begin_write().await?;
    let marked = processor_delivery::Entity::update_many()
        .col_expr(processor_delivery::Column::AcknowledgedAt, Expr::value(now))
        .col_expr(
            processor_delivery::Column::Attempts,
            Expr::col(processor_delivery::Column::Attempts).add(1),
        )
        .col_expr(processor_delivery::Column::LastAttemptAt, Expr::value(now))
        .col_expr(
            processor_delivery::Column::LastStatus,
            Expr::value(i32::from(status)),
        )
        .col_expr(
            processor_delivery::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            processor_delivery::Column::DeadAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(processor_delivery::Column::Id.eq(&delivery.id))
        .filter(processor_delivery::Column::AcknowledgedAt.is_null())
        .exec(&tx)
        .await?
        .rows_affected;
    if marked != 1 {
        // Acknowledged by a run racing this one: recorded once, there.
        tx.rollback().await?;
        return Ok(());
    }
    let event = AuditEvent::ProcessorAcknowledged(ProcessorAcknowledged {
        delivery_id: delivery.id.clone(),
        request_id: request.id.clone(),
        processor: delivery.processor.clone(),
        subjects: Subjects {
            vsee_id: request.subject.clone(),
            email: request.subject_email.clone(),
        },
        status,
    });
    ledger::record_in(&tx, env.db, keys, &event, now).await?;
    tx.commit().await?;
    tracing::info!(delivery_id = %delivery.id, processor = %delivery.processor, "processor acknowledged the deletion");
    Ok(())
}

/// The delivery's job died after its last attempt: it shows as dead until retried.
pub async fn died<C: ConnectionTrait>(conn: &C, id: Uuid, now: DateTime<Utc>) -> AppResult<()> {
    processor_delivery::Entity::update_many()
        .col_expr(processor_delivery::Column::DeadAt, Expr::value(now))
        .filter(processor_delivery::Column::Id.eq(id.to_string()))
        .filter(processor_delivery::Column::AcknowledgedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// A dead delivery run again by hand (`erasure jobs retry`): no longer dead.
pub async fn revived<C: ConnectionTrait>(conn: &C, id: Uuid) -> AppResult<()> {
    processor_delivery::Entity::update_many()
        .col_expr(
            processor_delivery::Column::DeadAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(processor_delivery::Column::Id.eq(id.to_string()))
        .exec(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_once_and_only_fresh_and_unchanged() {
        let now = Utc::now();
        let header = signature(b"secret", now.timestamp(), b"{\"id\":1}");
        let five = chrono::Duration::minutes(5);
        assert!(verify_signature(b"secret", &header, b"{\"id\":1}", now, five));
        assert!(!verify_signature(b"other", &header, b"{\"id\":1}", now, five));
        assert!(!verify_signature(b"secret", &header, b"{\"id\":2}", now, five));
        let later = now + chrono::Duration::minutes(6);
        assert!(
            !verify_signature(b"secret", &header, b"{\"id\":1}", later, five),
            "a replay"
        );
        assert!(!verify_signature(b"secret", "v1=00", b"{}", now, five));
    }
}
