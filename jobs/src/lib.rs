//! The wire contract between the service and its background workers: versioned job payloads,
//! queue names, and the handle that enqueues onto the apalis backend. Payloads carry ids only,
//! never personal data, because they sit in the queue store.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A job payload: versioned, naming one id, knowing its kind and which attempt it is.
pub trait Job: Serialize + for<'de> Deserialize<'de> + Clone + Send + Sync + Unpin + 'static {
    const KIND: JobKind;
    fn new(id: Uuid, attempt: u32) -> Self;
    /// What the job acts on (a deletion request, a notice).
    fn id(&self) -> Uuid;
    /// Which run this is, from 1.
    fn attempt(&self) -> u32;
}

/// Declares a versioned payload naming one id. Version 2 adds the attempt the job runs as:
/// retries are new jobs scheduled by our outbox, so the attempt travels with the job; a
/// version-1 job (queued before the upgrade) runs as attempt 1.
macro_rules! payload {
    ($(#[$doc:meta])* $ty:ident { $id:ident } = $kind:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "v")]
        pub enum $ty {
            #[serde(rename = "1")]
            V1 { $id: Uuid },
            #[serde(rename = "2")]
            V2 { $id: Uuid, attempt: u32 },
        }

        impl Job for $ty {
            const KIND: JobKind = JobKind::$kind;
            fn new($id: Uuid, attempt: u32) -> Self {
                Self::V2 { $id, attempt }
            }
            fn id(&self) -> Uuid {
                match self {
                    Self::V1 { $id } | Self::V2 { $id, .. } => *$id,
                }
            }
            fn attempt(&self) -> u32 {
                match self {
                    Self::V1 { .. } => 1,
                    Self::V2 { attempt, .. } => (*attempt).max(1),
                }
            }
        }
    };
}

/// The registry: every kind of job, once, with its name (in the outbox and the queue's name)
/// and its payload. The kinds, their payloads, their queues on both backends, enqueueing,
/// backlog and backpressure all follow from this list; each kind's handler is registered in
/// one list in `erasure::workers`.
macro_rules! registry {
    ($( $(#[$doc:meta])* $kind:ident = $name:literal: $payload:ident { $id:ident }, )*) => {
        /// Every kind of job, each its own queue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum JobKind {
            $($kind,)*
        }

        impl JobKind {
            pub const ALL: &'static [JobKind] = &[$(Self::$kind,)*];

            /// The name stored in the outbox.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$kind => $name,)*
                }
            }

            /// The apalis queue (job_type) name. Explicit, so a refactor cannot rename a queue.
            pub fn queue(self) -> &'static str {
                match self {
                    $(Self::$kind => concat!("erasure.", $name),)*
                }
            }

            /// The payload of attempt `attempt` of this kind of job for `id`, as the queue
            /// stores it (JSON).
            pub fn payload(self, id: Uuid, attempt: u32) -> serde_json::Value {
                let encoded = match self {
                    $(Self::$kind => serde_json::to_value(<$payload as Job>::new(id, attempt)),)*
                };
                encoded.unwrap_or_default()
            }
        }

        $( payload!($(#[$doc])* $payload { $id } = $kind); )*

    };
}

registry! {
    /// Remove everything the data map lists for the account of one deletion request.
    Purge = "purge": PurgeAccount { request_id },
    /// Send the "your account has been deleted" email of one deletion request.
    ConfirmationEmail = "confirmation_email": SendConfirmation { request_id },
    /// Append the audit-ledger entry of one deletion request.
    LedgerEntry = "ledger_entry": RecordLedgerEntry { request_id },
    /// Send one notice to an account holder (a reset link, a changed email or password).
    Notification = "notification": SendNotification { notification_id },
    /// Tell one downstream processor of one completed deletion (a signed webhook).
    ProcessorNotice = "processor_notice": NotifyProcessor { delivery_id },
    /// Build one takeout archive of an account's data.
    Export = "export": BuildExport { export_id },
    /// Open the next batch of deletions of one bulk run (dormant accounts).
    BulkDeletion = "bulk_deletion": AdvanceBulkRun { run_id },
}

impl JobKind {
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.as_str() == raw)
    }

    /// Whether the job is a step of a deletion request (its id is the request's).
    pub fn is_deletion_step(self) -> bool {
        !matches!(
            self,
            Self::Notification | Self::ProcessorNotice | Self::Export | Self::BulkDeletion
        )
    }
}

mod queue;

pub use queue::{Backend, Backlog, JobQueue, QueueError, QueueOptions};

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
        assert_eq!((back.id(), back.attempt()), (id, 3));
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
        assert_eq!((job.id(), job.attempt()), (Uuid::nil(), 1));
    }

    #[test]
    fn unknown_versions_are_refused() {
        let r: Result<SendConfirmation, _> =
            serde_json::from_str(r#"{"v":"9","request_id":"00000000-0000-0000-0000-000000000000"}"#);
        assert!(r.is_err());
    }

    #[test]
    fn the_queue_stores_the_payload_the_worker_decodes() {
        let id = Uuid::nil();
        let stored = JobKind::Notification.payload(id, 2);
        let job: SendNotification =
            serde_json::from_value(stored).unwrap_or(SendNotification::new(Uuid::max(), 9));
        assert_eq!((job.id(), job.attempt()), (id, 2));
        assert_eq!(JobKind::Purge.queue(), "erasure.purge");
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in JobKind::ALL {
            assert_eq!(JobKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(JobKind::parse("nope"), None);
    }
}
