use sea_orm::entity::prelude::*;

use crate::domain::{AuthVerdict, IntakeDoor, TicketStatus};

/// A paid termination asked for by mail. One per Message-ID.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tickets")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub reference: String,
    /// The Message-ID, or `sha256:<hex>` of the raw message when it had none.
    #[sea_orm(unique)]
    pub message_id: String,
    pub door: IntakeDoor,
    /// The From address, normalised.
    pub sender: String,
    pub subject: String,
    /// The message as plain text (HTML parts are converted, never kept to render).
    pub body: String,
    /// The account whose email is the sender's; none when nobody's is.
    pub account_id: Option<i64>,
    pub status: TicketStatus,
    pub received_at: DateTimeUtc,
    pub due_at: DateTimeUtc,
    pub verified_at: Option<DateTimeUtc>,
    /// The agent who recorded a verification by other means, with why.
    pub verified_by: Option<i64>,
    pub verification_reason: Option<String>,
    /// Approval or rejection: when, by which agent, and why (rejections).
    pub decided_at: Option<DateTimeUtc>,
    pub decided_by: Option<i64>,
    pub decision_reason: Option<String>,
    /// The deletion an approval started.
    pub deletion_request_id: Option<String>,
    /// The SHA-256 of the live link that lets the account's owner confirm the request; cleared
    /// once used.
    #[sea_orm(unique)]
    pub verification_token_hash: Option<String>,
    pub verification_expires_at: Option<DateTimeUtc>,
    /// The agent working it, if any.
    pub assignee_id: Option<i64>,
    /// The one extension of the deadline (GDPR Art. 12(3)): when, by whom, why.
    pub extended_at: Option<DateTimeUtc>,
    pub extended_by: Option<i64>,
    pub extension_reason: Option<String>,
    /// With `support.two_person_approval`: the first agent's approval, awaiting a second.
    pub first_approved_by: Option<i64>,
    pub first_approved_at: Option<DateTimeUtc>,
    /// Sender authentication when the message came (none for the in-app door): shown to the
    /// agent, never a verification.
    pub dkim: Option<AuthVerdict>,
    /// The domain whose DKIM signature passed (`d=`), if one did.
    pub dkim_domain: Option<String>,
    pub spf: Option<AuthVerdict>,
    pub dmarc: Option<AuthVerdict>,
    /// A duplicate closed into the ticket it repeats.
    pub merged_into_id: Option<i64>,
    /// The blind index of the sender's address (the sender, subject and body are sealed
    /// under the ticket's data key; `tickets::sealed` hands them out opened). `None` on a row
    /// from before encryption, or once the ticket is erased.
    pub sender_index: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
