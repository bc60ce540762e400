use sea_orm::entity::prelude::*;

/// What an agent wrote on a ticket: an internal note, or a question mailed to the requester
/// (whose answer comes back as a reply).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_notes")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub ticket_id: i64,
    pub staff_id: i64,
    /// note | question
    pub kind: String,
    pub body: String,
    /// The notice that mails a question.
    pub notice_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
