use sea_orm::entity::prelude::*;

use crate::domain::IntakeDoor;

/// A message that answers a ticket (a reply to our email, or one quoting its reference). One
/// per Message-ID, kept with its ticket instead of opening another.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_replies")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    #[sea_orm(unique)]
    pub message_id: String,
    pub door: IntakeDoor,
    /// The From address, normalised.
    pub sender: String,
    pub subject: String,
    /// Plain text, as for tickets.
    pub body: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
