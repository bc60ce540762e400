//! Reads of the ledger by staff, as events: auditors audit each other.

use std::collections::BTreeMap;

/// What a staff member read of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAction {
    /// Listed entries, with filters.
    Searched,
    /// Asked "was this person deleted?".
    LookedUp,
    /// Took an export.
    Exported,
    /// Opened one entry.
    Viewed,
}

impl ReadAction {
    pub fn event(self) -> &'static str {
        match self {
            Self::Searched => "ledger_searched",
            Self::LookedUp => "ledger_looked_up",
            Self::Exported => "ledger_exported",
            Self::Viewed => "ledger_entry_viewed",
        }
    }
}

/// A read, by whom, and what was asked: filter values, an entry's number, or the pseudonym a
/// lookup computed — never the identifier typed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRead {
    /// A fresh id: the entry's key.
    pub id: String,
    pub action: ReadAction,
    pub staff_id: i64,
    pub query: BTreeMap<String, String>,
    /// How many entries it returned (an export: none counted up front).
    pub results: Option<u64>,
}
