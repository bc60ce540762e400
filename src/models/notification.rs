use sea_orm::entity::prelude::*;

/// A message to an account holder that is not part of a deletion: a reset link, or the notice
/// that the email or password changed. Sent by a job, so the request that caused it does the
/// same work whether or not an account matched.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    pub account_id: Option<i64>,
    /// Only when the address is not the account's current one; cleared once sent.
    pub recipient: Option<String>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// The ticket a notice about a ticket is about.
    pub ticket_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
