//! The wire contract between the service and its background workers: versioned job payloads,
//! queue names, and the handle that enqueues onto the apalis backend. Payloads carry ids only,
//! never personal data, because they sit in the queue store.

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_sqlite::{Config, SqlitePool, SqliteStorage};
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

#[derive(Debug, thiserror::Error)]
#[error("could not enqueue a {kind} job: {message}")]
pub struct EnqueueError {
    pub kind: &'static str,
    pub message: String,
}

/// Settings shared by every queue of a backend.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    pub batch_size: usize,
    pub heartbeat_interval: std::time::Duration,
    pub missed_heartbeats: usize,
    pub max_attempts: usize,
}

impl QueueOptions {
    pub fn sqlite_config(&self, kind: JobKind) -> Config {
        Config::default()
            .queue(kind.queue())
            .batch_size(self.batch_size)
            .heartbeat_interval(self.heartbeat_interval)
            .missed_heartbeats(self.missed_heartbeats)
    }
}

/// Enqueues deletion jobs. Pushing the same (kind, request) twice enqueues it once: the
/// request id is the idempotency key, so the outbox relay may retry freely.
#[derive(Debug, Clone)]
pub struct JobQueue {
    options: QueueOptions,
    purge: SqliteStorage<PurgeAccount>,
    email: SqliteStorage<SendConfirmation>,
    ledger: SqliteStorage<RecordLedgerEntry>,
}

impl JobQueue {
    pub fn sqlite(pool: &SqlitePool, options: QueueOptions) -> Self {
        Self {
            purge: SqliteStorage::new(pool).with_config(options.sqlite_config(JobKind::Purge)),
            email: SqliteStorage::new(pool).with_config(options.sqlite_config(JobKind::ConfirmationEmail)),
            ledger: SqliteStorage::new(pool).with_config(options.sqlite_config(JobKind::LedgerEntry)),
            options,
        }
    }

    pub fn options(&self) -> &QueueOptions {
        &self.options
    }

    pub async fn enqueue(&self, kind: JobKind, request_id: Uuid) -> Result<(), EnqueueError> {
        let key = request_id.to_string();
        let attempts = self.options.max_attempts;
        let err = |e: apalis::prelude::TaskSinkError<apalis_sqlite::Error>| EnqueueError {
            kind: kind.as_str(),
            message: e.to_string(),
        };
        match kind {
            JobKind::Purge => {
                let task = TaskBuilder::new(PurgeAccount::new(request_id))
                    .idempotency_key(&key)
                    .max_attempts(attempts)
                    .build();
                self.purge.clone().push_task(task).await.map_err(err)
            }
            JobKind::ConfirmationEmail => {
                let task = TaskBuilder::new(SendConfirmation::new(request_id))
                    .idempotency_key(&key)
                    .max_attempts(attempts)
                    .build();
                self.email.clone().push_task(task).await.map_err(err)
            }
            JobKind::LedgerEntry => {
                let task = TaskBuilder::new(RecordLedgerEntry::new(request_id))
                    .idempotency_key(&key)
                    .max_attempts(attempts)
                    .build();
                self.ledger.clone().push_task(task).await.map_err(err)
            }
        }
    }
}

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
