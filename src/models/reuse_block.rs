use sea_orm::entity::prelude::*;

/// An identifier of a deleted account that cannot sign up again before `until`, named only by
/// its keyed pseudonym (the ledger's).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reuse_blocks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub pseudonym: String,
    pub until: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
