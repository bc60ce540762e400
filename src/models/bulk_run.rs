use sea_orm::entity::prelude::*;

/// One bulk deletion of dormant accounts by an administrator: its criterion, and how far it
/// got (a keyset cursor over account ids), so a run interrupted anywhere resumes.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bulk_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The administrator: the actor of every deletion it opens.
    pub staff_id: i64,
    /// Free accounts with no log-in since then (and created before it).
    pub inactive_since: DateTimeUtc,
    pub created_at: DateTimeUtc,
    /// Accounts up to this id have been looked at.
    pub last_account_id: i64,
    /// Deletions opened.
    pub requested: i64,
    /// Accounts that stopped qualifying before their turn (a log-in, a deletion of their own).
    pub skipped: i64,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
