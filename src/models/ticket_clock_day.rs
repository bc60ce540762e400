use sea_orm::entity::prelude::*;

/// The regulatory clock as the daily job found it: one row a day, however many replicas tick.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ticket_clock_days")]
pub struct Model {
    /// `YYYY-MM-DD`, UTC.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: String,
    pub open: i32,
    pub due_soon: i32,
    pub overdue: i32,
    pub computed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
