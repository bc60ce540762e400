use sea_orm::entity::prelude::*;

use crate::domain::{ActorKind, Channel, DeletionStatus};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deletion_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub receipt_hash: String,
    pub account_id: i64,
    /// Pseudonym (HMAC) of the VSee ID: what the ledger names.
    pub subject: String,
    /// Pseudonym of the normalised email (requests made before it was kept have none).
    pub subject_email: Option<String>,
    pub actor_kind: ActorKind,
    /// The staff id, for staff actors.
    pub actor_id: Option<i64>,
    pub channel: Channel,
    pub status: DeletionStatus,
    /// Where the confirmation goes; cleared as soon as it has been sent.
    pub notify_email: Option<String>,
    pub requested_at: DateTimeUtc,
    pub purge_started_at: Option<DateTimeUtc>,
    pub purged_at: Option<DateTimeUtc>,
    pub email_sent_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// JSON object: store name → rows (or files) removed.
    pub store_counts: Option<String>,
    /// While set and in the future, one worker is sending the confirmation: another one
    /// handed the same job waits instead of sending a second copy.
    pub email_claimed_until: Option<DateTimeUtc>,
    /// When the confirmation was found undeliverable (the address or the mail server refused
    /// it for good): the deletion completes without it, and the ledger says so.
    pub email_failed_at: Option<DateTimeUtc>,
    /// With a grace period: the purge starts no earlier (the request waits `scheduled`).
    pub purge_after: Option<DateTimeUtc>,
    /// Hash of the one-time link that cancels a scheduled deletion; cleared once used.
    #[sea_orm(unique)]
    pub cancel_hash: Option<String>,
    pub cancelled_at: Option<DateTimeUtc>,
    /// `account_holder`, or `agent:<staff id>`.
    pub cancelled_by: Option<String>,
    /// An agent's reason for cancelling.
    pub cancel_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
