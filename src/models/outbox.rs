use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_kind: String,
    pub request_id: String,
    pub created_at: DateTimeUtc,
    pub dispatched_at: Option<DateTimeUtc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// 1, plus one per retry by hand: part of the job's idempotency key.
    pub generation: i32,
    /// The relay pushes the row only from this time on: a retry's backoff.
    pub not_before: Option<DateTimeUtc>,
    /// The attempt the job will run as (1, then one more per retry).
    pub attempt: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
