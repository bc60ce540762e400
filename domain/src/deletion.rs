use std::fmt;

use super::ParseError;

/// Where a deletion request stands. The only moves are
/// pending → purging → purged → completed, and any non-final state → failed (a step's job
/// died). A failed request moves on when its dead job is run again: to purging (the purge),
/// or back to purged (the confirmation or the ledger entry, once the purge had finished).
/// With a grace period the request starts `scheduled` instead of pending: it becomes purging
/// when its time is up, or `cancelled` (final) if its holder or an agent undoes it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum DeletionStatus {
    #[cfg_attr(feature = "storage", sea_orm(string_value = "pending"))]
    Pending,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "purging"))]
    Purging,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "purged"))]
    Purged,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "completed"))]
    Completed,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "failed"))]
    Failed,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "scheduled"))]
    Scheduled,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "cancelled"))]
    Cancelled,
}

impl DeletionStatus {
    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Ok(match raw {
            "pending" => Self::Pending,
            "purging" => Self::Purging,
            "purged" => Self::Purged,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "scheduled" => Self::Scheduled,
            "cancelled" => Self::Cancelled,
            other => return Err(ParseError(format!("unknown deletion status {other:?}"))),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Purging => "purging",
            Self::Purged => "purged",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Scheduled => "scheduled",
            Self::Cancelled => "cancelled",
        }
    }

    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Purging,
        Self::Purged,
        Self::Completed,
        Self::Failed,
        Self::Scheduled,
        Self::Cancelled,
    ];

    /// Whether nothing more happens to the request.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }

    /// The statuses that may move to `next`: what a compare-and-set filters on.
    pub fn that_can_become(next: Self) -> Vec<Self> {
        Self::ALL.into_iter().filter(|s| s.can_become(next)).collect()
    }

    pub fn can_become(self, next: Self) -> bool {
        use DeletionStatus::*;
        matches!(
            (self, next),
            (Pending | Scheduled, Purging)
                | (Scheduled, Cancelled)
                | (Purging, Purging)
                | (Purging, Purged)
                | (Purged, Completed)
                | (Pending | Purging | Purged, Failed)
                | (Failed, Purging | Purged)
        )
    }
}

/// Who asked for a deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The account holder, logged in.
    AccountHolder,
    /// A support agent, by staff id.
    Agent(i64),
    /// An administrator acting on many accounts at once (bulk deletion), by staff id.
    Admin(i64),
    /// The service itself: the restore guard deleting again an account a restored backup
    /// brought back.
    System,
}

/// What kind of actor, as stored beside the actor's id (none for the account holder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum ActorKind {
    #[cfg_attr(feature = "storage", sea_orm(string_value = "account_holder"))]
    AccountHolder,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "agent"))]
    Agent,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "admin"))]
    Admin,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "system"))]
    System,
}

impl Actor {
    /// The actor as stored: its kind and, for staff, its id.
    pub fn parts(&self) -> (ActorKind, Option<i64>) {
        match self {
            Self::AccountHolder => (ActorKind::AccountHolder, None),
            Self::Agent(id) => (ActorKind::Agent, Some(*id)),
            Self::Admin(id) => (ActorKind::Admin, Some(*id)),
            Self::System => (ActorKind::System, None),
        }
    }

    /// The actor from its stored parts; None when they do not fit together.
    pub fn from_parts(kind: ActorKind, id: Option<i64>) -> Option<Self> {
        match (kind, id) {
            (ActorKind::AccountHolder, None) => Some(Self::AccountHolder),
            (ActorKind::Agent, Some(id)) => Some(Self::Agent(id)),
            (ActorKind::Admin, Some(id)) => Some(Self::Admin(id)),
            (ActorKind::System, None) => Some(Self::System),
            _ => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccountHolder => f.write_str("account_holder"),
            Self::Agent(id) => write!(f, "agent:{id}"),
            Self::Admin(id) => write!(f, "admin:{id}"),
            Self::System => f.write_str("system"),
        }
    }
}

/// Which door the request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum Channel {
    #[cfg_attr(feature = "storage", sea_orm(string_value = "web"))]
    Web,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "api"))]
    Api,
    #[cfg_attr(feature = "storage", sea_orm(string_value = "support"))]
    Support,
    /// An administrator's bulk deletion (dormant accounts).
    #[cfg_attr(feature = "storage", sea_orm(string_value = "bulk"))]
    Bulk,
    /// Deleted again after a restored backup brought the account back.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "restore-guard"))]
    RestoreGuard,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Api => "api",
            Self::Support => "support",
            Self::Bulk => "bulk",
            Self::RestoreGuard => "restore-guard",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeletionStatus::*;
    use super::*;

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in DeletionStatus::ALL {
            assert_eq!(DeletionStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(DeletionStatus::parse("done").is_err());
    }

    #[test]
    fn only_a_scheduled_deletion_can_be_cancelled_and_a_cancelled_one_stays_so() {
        assert_eq!(DeletionStatus::that_can_become(Cancelled), [Scheduled]);
        for s in DeletionStatus::ALL {
            assert!(!Cancelled.can_become(s));
        }
        assert!(Cancelled.is_final() && Completed.is_final() && !Scheduled.is_final());
    }

    #[test]
    fn completed_is_final() {
        for s in [Pending, Purging, Purged, Completed, Failed] {
            assert!(!Completed.can_become(s));
        }
        assert!(!Pending.can_become(Completed));
        assert!(Purging.can_become(Purging), "a crashed purge resumes");
        assert_eq!(DeletionStatus::that_can_become(Purged), [Purging, Failed]);
        assert_eq!(
            DeletionStatus::that_can_become(Purging),
            [Pending, Purging, Failed, Scheduled]
        );
        assert!(
            Failed.can_become(Purged),
            "a dead confirmation or ledger job run again"
        );
    }
}
