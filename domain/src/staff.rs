//! The staff who work the back office: support agents, auditors, administrators.

use crate::ParseError;

/// What a staff member may do. An administrator holds every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "storage",
    derive(crate::storage::EnumIter, crate::storage::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "String(crate::storage::StringLen::N(16))")
)]
pub enum StaffRole {
    /// Decides paid terminations.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "agent"))]
    Agent,
    /// Reviews the deletion ledger.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "auditor"))]
    Auditor,
    /// Manages staff; may also act as an agent and an auditor.
    #[cfg_attr(feature = "storage", sea_orm(string_value = "admin"))]
    Admin,
}

impl StaffRole {
    pub const ALL: [Self; 3] = [Self::Agent, Self::Auditor, Self::Admin];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw.trim().to_ascii_lowercase())
            .ok_or_else(|| ParseError("a staff role is agent, auditor or admin".into()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }

    /// Whether a member with this role may act as `needed`.
    pub fn grants(self, needed: Self) -> bool {
        self == needed || self == Self::Admin
    }
}

#[cfg(test)]
mod tests {
    use super::StaffRole::*;
    use super::*;

    #[test]
    fn administrators_hold_every_role_and_no_one_else_does() {
        for role in StaffRole::ALL {
            assert!(Admin.grants(role));
            assert!(role.grants(role));
        }
        assert!(!Agent.grants(Auditor) && !Auditor.grants(Agent) && !Agent.grants(Admin));
        assert_eq!(StaffRole::parse(" Auditor ").unwrap(), Auditor);
        assert!(StaffRole::parse("root").is_err());
    }
}
