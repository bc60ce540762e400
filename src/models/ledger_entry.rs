use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub request_id: String,
    pub event: String,
    pub subject: String,
    pub recorded_at: DateTimeUtc,
    /// Canonical JSON of the entry; the chain MAC covers exactly these bytes.
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
    /// Facets an auditor filters by, repeated from the body (which alone is signed).
    pub channel: Option<String>,
    pub actor_kind: Option<String>,
    pub outcome: Option<String>,
    /// Set when the entry outlived `audit.retention_days`: its body and subject are cleared,
    /// its leaf hash stays in the tree, its MAC stays in the chain.
    pub pruned_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
