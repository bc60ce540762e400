use sea_orm::entity::prelude::*;

/// How far the IMAP poller has read a mailbox: UIDs are only comparable within one
/// UIDVALIDITY, so a new one starts the mailbox over (Message-IDs keep that from duplicating).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mailbox_cursors")]
pub struct Model {
    /// `user@host/MAILBOX`: a cursor per account and folder.
    #[sea_orm(primary_key, auto_increment = false)]
    pub mailbox: String,
    pub uid_validity: i64,
    pub last_uid: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
