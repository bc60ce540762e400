use sea_orm::entity::prelude::*;

/// A job that failed on its last allowed attempt. Kept in our own database, not the queue's,
/// so it reads the same whatever backend ran the job.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dead_jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub job_kind: String,
    pub request_id: String,
    pub attempts: i32,
    pub last_error: String,
    pub died_at: DateTimeUtc,
    /// Set by `erasure jobs retry`; the job is dead again only if it fails again.
    pub retried_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
