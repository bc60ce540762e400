//! The wire contract between the service and its background workers: versioned job payloads,
//! queue names, and the handle that enqueues onto the apalis backend. Payloads carry ids only,
//! never personal data, because they sit in the queue store.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The three steps of a deletion, each its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    Purge,
    ConfirmationEmail,
    LedgerEntry,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [Self::Purge, Self::ConfirmationEmail, Self::LedgerEntry];

    /// The name stored in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purge => "purge",
            Self::ConfirmationEmail => "confirmation_email",
            Self::LedgerEntry => "ledger_entry",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The apalis queue (job_type) name. Explicit, so a refactor cannot rename a queue.
    pub fn queue(self) -> &'static str {
        match self {
            Self::Purge => "erasure.purge",
            Self::ConfirmationEmail => "erasure.confirmation_email",
            Self::LedgerEntry => "erasure.ledger_entry",
        }
    }
}

/// Remove everything the data map lists for the account of one deletion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum PurgeAccount {
    #[serde(rename = "1")]
    V1 { request_id: Uuid },
}

/// Send the "your account has been deleted" email of one deletion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum SendConfirmation {
    #[serde(rename = "1")]
    V1 { request_id: Uuid },
}

/// Append the audit-ledger entry of one deletion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum RecordLedgerEntry {
    #[serde(rename = "1")]
    V1 { request_id: Uuid },
}

macro_rules! request_id_of {
    ($($ty:ident),*) => {$(
        impl $ty {
            pub fn new(request_id: Uuid) -> Self {
                Self::V1 { request_id }
            }
            pub fn request_id(&self) -> Uuid {
                match self {
                    Self::V1 { request_id } => *request_id,
                }
            }
        }
    )*};
}
request_id_of!(PurgeAccount, SendConfirmation, RecordLedgerEntry);

mod queue;

pub use queue::{Backend, Backlog, JobQueue, QueueError, QueueOptions, RedisQueues, SqliteQueues};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_a_stable_versioned_wire_form() {
        let id = Uuid::nil();
        let json = serde_json::to_string(&PurgeAccount::new(id)).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"v":"1","request_id":"00000000-0000-0000-0000-000000000000"}"#
        );
        let back: PurgeAccount = serde_json::from_str(&json).unwrap_or(PurgeAccount::new(Uuid::max()));
        assert_eq!(back.request_id(), id);
    }

    #[test]
    fn unknown_versions_are_refused() {
        let r: Result<SendConfirmation, _> =
            serde_json::from_str(r#"{"v":"9","request_id":"00000000-0000-0000-0000-000000000000"}"#);
        assert!(r.is_err());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(JobKind::parse("nope"), None);
    }
}
