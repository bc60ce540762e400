use sea_orm::entity::prelude::*;

/// One row per (request, data-map step): written in the same transaction as each chunk it
/// counts, so a resumed purge neither loses nor double-counts rows.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "purge_progress")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub request_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub step: String,
    pub rows_removed: i64,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
