use sea_orm::entity::prelude::*;

/// One downstream processor's notice of one completed deletion: sent until it acknowledges
/// (a 2xx answer), or dead after the last attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "processor_deliveries")]
pub struct Model {
    /// The job's id, and the webhook's `id` (receivers deduplicate on it).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub request_id: String,
    /// The processor's configured name.
    pub processor: String,
    pub created_at: DateTimeUtc,
    pub attempts: i32,
    pub last_attempt_at: Option<DateTimeUtc>,
    /// The HTTP status of the last answer (none: no answer).
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub acknowledged_at: Option<DateTimeUtc>,
    pub dead_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
