//! What agents, admins and auditors read of the deliveries: each one's state, and how each
//! processor stands (a processor that never acknowledges is what the reports must show).

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::{
    db::Database,
    error::{AppError, AppResult},
    models::processor_delivery,
};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not acknowledged yet; its job is trying (or waiting out a backoff).
    Waiting,
    Acknowledged,
    /// Its last attempt failed; waits for `erasure jobs retry`.
    Dead,
}

impl DeliveryState {
    pub const ALL: [Self; 3] = [Self::Waiting, Self::Acknowledged, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Acknowledged => "acknowledged",
            Self::Dead => "dead",
        }
    }

    pub fn parse(raw: &str) -> AppResult<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| AppError::InvalidInput("state is waiting, acknowledged or dead".into()))
    }

    pub fn of(d: &processor_delivery::Model) -> Self {
        match (d.acknowledged_at, d.dead_at) {
            (Some(_), _) => Self::Acknowledged,
            (None, Some(_)) => Self::Dead,
            (None, None) => Self::Waiting,
        }
    }
}

pub type Delivery = processor_delivery::Model;

/// Deliveries in `state` (all without one), newest first, at most `limit`.
pub async fn deliveries(db: &Database, state: Option<DeliveryState>, limit: u64) -> AppResult<Vec<Delivery>> {
    use processor_delivery::Column as C;
    let mut query = processor_delivery::Entity::find();
    query = match state {
        None => query,
        Some(DeliveryState::Acknowledged) => query.filter(C::AcknowledgedAt.is_not_null()),
        Some(DeliveryState::Dead) => query
            .filter(C::AcknowledgedAt.is_null())
            .filter(C::DeadAt.is_not_null()),
        Some(DeliveryState::Waiting) => query
            .filter(C::AcknowledgedAt.is_null())
            .filter(C::DeadAt.is_null()),
    };
    Ok(query
        .order_by_desc(C::CreatedAt)
        .order_by_desc(C::Id)
        .limit(limit)
        .all(&db.conn)
        .await?)
}

/// How one processor answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub processor: String,
    pub offered: u64,
    pub acknowledged: u64,
    pub dead: u64,
    /// The oldest notice it has not acknowledged.
    pub waiting_since: Option<DateTime<Utc>>,
    /// Whether it is still configured.
    pub configured: bool,
}

impl Standing {
    /// Offered notices and never once acknowledged.
    pub fn never_acknowledged(&self) -> bool {
        self.offered > 0 && self.acknowledged == 0
    }
}

/// Every processor configured or ever offered a notice, by name.
pub async fn standing(db: &Database, configured: &[String]) -> AppResult<Vec<Standing>> {
    use processor_delivery::Column as C;
    let mut names: Vec<String> = processor_delivery::Entity::find()
        .select_only()
        .column(C::Processor)
        .distinct()
        .into_tuple()
        .all(&db.conn)
        .await?;
    names.extend(configured.iter().cloned());
    names.sort();
    names.dedup();
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        let of = || processor_delivery::Entity::find().filter(C::Processor.eq(&name));
        let offered = of().count(&db.conn).await?;
        let acknowledged = of()
            .filter(C::AcknowledgedAt.is_not_null())
            .count(&db.conn)
            .await?;
        let dead = of()
            .filter(C::AcknowledgedAt.is_null())
            .filter(C::DeadAt.is_not_null())
            .count(&db.conn)
            .await?;
        let oldest = of()
            .filter(C::AcknowledgedAt.is_null())
            .order_by_asc(C::CreatedAt)
            .one(&db.conn)
            .await?;
        found.push(Standing {
            configured: configured.contains(&name),
            processor: name,
            offered,
            acknowledged,
            dead,
            waiting_since: oldest.map(|d| d.created_at),
        });
    }
    Ok(found)
}
