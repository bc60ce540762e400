//! The auditor's reports, as numbers: deletions completed per day by channel, the time from
//! request to completion (p50, p95) per week, the regulatory clock's daily readings, and
//! failed requests and dead jobs per day. Bucketed here from narrow selects over indexed
//! time ranges, so the SQL is the same on SQLite and PostgreSQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::{
    db::Database,
    domain::{Channel, DeletionStatus},
    error::AppResult,
    models::{dead_job, deletion_request, ticket_clock_day},
};

pub const DAYS: i64 = 30;
pub const WEEKS: i64 = 12;

#[derive(Debug, Clone, PartialEq)]
pub struct Reports {
    /// The last `DAYS` days, oldest first.
    pub days: Vec<NaiveDate>,
    /// Completed deletions per day, by channel.
    pub deletions: BTreeMap<&'static str, Vec<u64>>,
    /// The Mondays of the last `WEEKS` weeks, oldest first.
    pub weeks: Vec<NaiveDate>,
    /// Request to completion, seconds, per week (`None`: none completed that week).
    pub p50: Vec<Option<f64>>,
    pub p95: Vec<Option<f64>>,
    /// The daily readings of the regulatory clock over `days` (`None`: not read that day).
    pub open: Vec<Option<u64>>,
    pub due_soon: Vec<Option<u64>>,
    pub overdue: Vec<Option<u64>>,
    /// Requests that failed (by the day asked), and jobs that died, per day.
    pub failed: Vec<u64>,
    pub dead: Vec<u64>,
}

fn index_of(days: &[NaiveDate], at: DateTime<Utc>) -> Option<usize> {
    let first = *days.first()?;
    usize::try_from((at.date_naive() - first).num_days())
        .ok()
        .filter(|i| *i < days.len())
}

/// The `q` quantile (0..=1) of sorted values, by nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

pub async fn build(db: &Database, now: DateTime<Utc>) -> AppResult<Reports> {
    let today = now.date_naive();
    let days: Vec<NaiveDate> = (0..DAYS).rev().map(|i| today - Duration::days(i)).collect();
    let this_monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let weeks: Vec<NaiveDate> = (0..WEEKS)
        .rev()
        .map(|i| this_monday - Duration::weeks(i))
        .collect();
    let since_days = days[0].and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(now);
    let since_weeks = weeks[0].and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or(now);

    let completed: Vec<(Channel, DateTime<Utc>, Option<DateTime<Utc>>)> = deletion_request::Entity::find()
        .select_only()
        .columns([
            deletion_request::Column::Channel,
            deletion_request::Column::RequestedAt,
            deletion_request::Column::CompletedAt,
        ])
        .filter(deletion_request::Column::Status.eq(DeletionStatus::Completed))
        .filter(deletion_request::Column::CompletedAt.gte(since_days.min(since_weeks)))
        .into_tuple()
        .all(&db.conn)
        .await?;
    let mut deletions: BTreeMap<&'static str, Vec<u64>> = [Channel::Web, Channel::Api, Channel::Support]
        .iter()
        .map(|c| (c.as_str(), vec![0; days.len()]))
        .collect();
    let mut per_week: Vec<Vec<f64>> = vec![Vec::new(); weeks.len()];
    for (channel, requested, completed) in completed {
        let Some(completed) = completed else { continue };
        if let Some(i) = index_of(&days, completed)
            && let Some(counts) = deletions.get_mut(channel.as_str())
        {
            counts[i] += 1;
        }
        let week = usize::try_from((completed.date_naive() - weeks[0]).num_days() / 7).ok();
        if let Some(w) = week.filter(|w| *w < weeks.len()) {
            per_week[w].push((completed - requested).num_milliseconds() as f64 / 1000.0);
        }
    }
    for w in &mut per_week {
        w.sort_by(f64::total_cmp);
    }

    let first_day = days[0].format("%Y-%m-%d").to_string();
    let readings = ticket_clock_day::Entity::find()
        .filter(ticket_clock_day::Column::Day.gte(first_day))
        .order_by_asc(ticket_clock_day::Column::Day)
        .all(&db.conn)
        .await?;
    let mut open = vec![None; days.len()];
    let mut due_soon = vec![None; days.len()];
    let mut overdue = vec![None; days.len()];
    for r in readings {
        let Ok(day) = NaiveDate::parse_from_str(&r.day, "%Y-%m-%d") else {
            continue;
        };
        if let Some(i) = days.iter().position(|d| *d == day) {
            let n = |v: i32| Some(u64::try_from(v).unwrap_or(0));
            (open[i], due_soon[i], overdue[i]) = (n(r.open), n(r.due_soon), n(r.overdue));
        }
    }

    let failed_at: Vec<DateTime<Utc>> = deletion_request::Entity::find()
        .select_only()
        .column(deletion_request::Column::RequestedAt)
        .filter(deletion_request::Column::Status.eq(DeletionStatus::Failed))
        .filter(deletion_request::Column::RequestedAt.gte(since_days))
        .into_tuple()
        .all(&db.conn)
        .await?;
    let died_at: Vec<DateTime<Utc>> = dead_job::Entity::find()
        .select_only()
        .column(dead_job::Column::DiedAt)
        .filter(dead_job::Column::DiedAt.gte(since_days))
        .into_tuple()
        .all(&db.conn)
        .await?;
    let per_day = |times: &[DateTime<Utc>]| {
        let mut counts = vec![0u64; days.len()];
        for t in times {
            if let Some(i) = index_of(&days, *t) {
                counts[i] += 1;
            }
        }
        counts
    };
    Ok(Reports {
        deletions,
        p50: per_week.iter().map(|w| quantile(w, 0.5)).collect(),
        p95: per_week.iter().map(|w| quantile(w, 0.95)).collect(),
        open,
        due_soon,
        overdue,
        failed: per_day(&failed_at),
        dead: per_day(&died_at),
        days,
        weeks,
    })
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(10.0));
        assert_eq!(quantile(&v, 0.95), Some(19.0));
        assert_eq!(quantile(&[7.0], 0.95), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
