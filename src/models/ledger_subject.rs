use sea_orm::entity::prelude::*;

/// Every pseudonym a ledger entry names, so a lookup by any identifier of a subject finds it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_subjects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub pseudonym: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
