//! The regulatory clock's daily reading (GDPR Art. 12(3)): open tickets, those past due and
//! those due within a week, as the day began.
//!
//! Invariant: one row per UTC day of the service's clock, written by the first tick of that
//! day; every later tick (another replica's, a restart's) finds it and changes nothing.

use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};

use super::deadline_counts;
use crate::{
    env::Env,
    error::{AppError, AppResult},
    models::ticket_clock_day,
};

/// How far ahead "due soon" looks.
pub const DUE_SOON_DAYS: i64 = 7;

/// Today's reading: written if this is the day's first tick, else the one already written.
pub async fn record_day(env: Env<'_>) -> AppResult<ticket_clock_day::Model> {
    let now = env.now();
    let day = now.format("%Y-%m-%d").to_string();
    if let Some(done) = ticket_clock_day::Entity::find_by_id(day.clone())
        .one(&env.db.conn)
        .await?
    {
        return Ok(done);
    }
    let (open, overdue, due_soon) = deadline_counts(env, chrono::Duration::days(DUE_SOON_DAYS)).await?;
    let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
    let written = ticket_clock_day::ActiveModel {
        day: Set(day.clone()),
        open: Set(count(open)),
        due_soon: Set(count(due_soon)),
        overdue: Set(count(overdue)),
        computed_at: Set(now),
    }
    .insert(&env.db.conn)
    .await;
    match written.map_err(AppError::from) {
        Ok(row) => {
            tracing::info!(day, open, overdue, due_soon, "ticket clock recorded");
            Ok(row)
        }
        // Another replica's tick wrote the day first.
        Err(AppError::Conflict(_)) => ticket_clock_day::Entity::find_by_id(day)
            .one(&env.db.conn)
            .await?
            .ok_or(AppError::NotFound),
        Err(e) => Err(e),
    }
}

/// The newest reading, if the job has run.
pub async fn latest_day(env: Env<'_>) -> AppResult<Option<ticket_clock_day::Model>> {
    Ok(ticket_clock_day::Entity::find()
        .order_by_desc(ticket_clock_day::Column::Day)
        .one(&env.db.conn)
        .await?)
}
