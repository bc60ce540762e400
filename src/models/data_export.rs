use sea_orm::entity::prelude::*;

/// One takeout archive of an account's data (GDPR Art. 20): built by a job, downloadable by
/// the logged-in holder until `expires_at`, removed then, and with the account by the purge.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "data_exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: i64,
    /// queued | running | ready | failed
    pub status: String,
    pub items_done: i64,
    pub items_total: i64,
    /// Under `<data_dir>/exports`, named `<account id>.<export id>.zip` (the data map's file
    /// store convention).
    pub file_name: Option<String>,
    pub bytes: Option<i64>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
