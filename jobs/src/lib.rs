//! The wire contract between the service and its background workers: versioned job payloads,
//! queue names, and the handle that enqueues onto the apalis backend. Payloads carry ids only,
//! never personal data, because they sit in the queue store.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The three steps of a deletion, each its own queue, and the notices to account holders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    Purge,
    ConfirmationEmail,
    LedgerEntry,
    Notification,
}

impl JobKind {
    pub const ALL: [JobKind; 4] = [
        Self::Purge,
        Self::ConfirmationEmail,
        Self::LedgerEntry,
        Self::Notification,
    ];

    /// The name stored in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purge => "purge",
            Self::ConfirmationEmail => "confirmation_email",
            Self::LedgerEntry => "ledger_entry",
            Self::Notification => "notification",
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
            Self::Notification => "erasure.notification",
        }
    }

    /// Whether the job is a step of a deletion request (its id is the request's).
    pub fn is_deletion_step(self) -> bool {
        !matches!(self, Self::Notification)
    }
}

/// Declares a versioned payload naming one id. Version 2 adds the attempt the job runs as:
/// retries are new jobs scheduled by our outbox, so the attempt travels with the job; a
/// version-1 job (queued before the upgrade) runs as attempt 1.
macro_rules! payload {
    ($(#[$doc:meta])* $ty:ident { $id:ident }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "v")]
        pub enum $ty {
            #[serde(rename = "1")]
            V1 { $id: Uuid },
            #[serde(rename = "2")]
            V2 { $id: Uuid, attempt: u32 },
        }

        impl $ty {
            pub fn new($id: Uuid, attempt: u32) -> Self {
                Self::V2 { $id, attempt }
            }
            pub fn $id(&self) -> Uuid {
                match self {
                    Self::V1 { $id } | Self::V2 { $id, .. } => *$id,
                }
            }
            /// Which run this is, from 1.
            pub fn attempt(&self) -> u32 {
                match self {
                    Self::V1 { .. } => 1,
                    Self::V2 { attempt, .. } => (*attempt).max(1),
                }
            }
        }
    };
}

payload!(
    /// Remove everything the data map lists for the account of one deletion request.
    PurgeAccount { request_id }
);
payload!(
    /// Send the "your account has been deleted" email of one deletion request.
    SendConfirmation { request_id }
);
payload!(
    /// Append the audit-ledger entry of one deletion request.
    RecordLedgerEntry { request_id }
);
payload!(
    /// Send one notice to an account holder (a reset link, a changed email or password).
    SendNotification { notification_id }
);

mod queue;

pub use queue::{Backend, Backlog, JobQueue, QueueError, QueueOptions, RedisQueues, SqliteQueues};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_a_stable_versioned_wire_form() {
        let id = Uuid::nil();
        let json = serde_json::to_string(&PurgeAccount::new(id, 3)).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"v":"2","request_id":"00000000-0000-0000-0000-000000000000","attempt":3}"#
        );
        let back: PurgeAccount = serde_json::from_str(&json).unwrap_or(PurgeAccount::new(Uuid::max(), 9));
        assert_eq!((back.request_id(), back.attempt()), (id, 3));
        let notice = serde_json::to_string(&SendNotification::new(id, 1)).unwrap_or_default();
        assert_eq!(
            notice,
            r#"{"v":"2","notification_id":"00000000-0000-0000-0000-000000000000","attempt":1}"#
        );
    }

    #[test]
    fn version_1_jobs_still_decode_as_first_attempts() {
        let v1 = r#"{"v":"1","request_id":"00000000-0000-0000-0000-000000000000"}"#;
        let job: RecordLedgerEntry =
            serde_json::from_str(v1).unwrap_or(RecordLedgerEntry::new(Uuid::max(), 9));
        assert_eq!((job.request_id(), job.attempt()), (Uuid::nil(), 1));
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
