//! The events of a deletion's life besides the deletion itself: undone within its grace
//! period, an identifier's cool-off lifted, a downstream processor's acknowledgement. Their
//! bodies are built with every other event's, in `events`.

use chrono::{DateTime, Utc};

use super::events::Subjects;
use crate::domain::{Actor, Channel};

/// A deletion undone before its purge: by the account holder (from the emailed link) or by an
/// agent (whose reason stays with the request, as ticket reasons stay with the ticket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletionCancelled {
    pub request_id: String,
    pub subjects: Subjects,
    pub actor: Actor,
    pub channel: Channel,
    pub requested_at: DateTime<Utc>,
    /// When the purge would have started.
    pub purge_after: DateTime<Utc>,
}

/// One identifier's cool-off ended early. The subject is the blocked pseudonym. The admin's
/// reason is signed in: nothing else keeps it (the form says not to name anyone in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReuseBlockLifted {
    /// Unique per lift (a fresh id: keys are at most 36 characters).
    pub key: String,
    pub subjects: Subjects,
    pub staff_id: i64,
    /// When the block would have ended.
    pub until: DateTime<Utc>,
    pub reason: String,
}

/// A processor answered its signed notice of a completed deletion with a 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorAcknowledged {
    /// The delivery's id (the webhook's `id`): the entry's key.
    pub delivery_id: String,
    pub request_id: String,
    pub processor: String,
    /// The deletion's subjects, so a lookup of the person finds who was told.
    pub subjects: Subjects,
    pub status: u16,
}
