//! What the ledger records, as typed events, and the body each one signs. Building a body is
//! a pure function of the event and its place in the chain, so the same event always signs the
//! same bytes, and a test can check a body without a database.
//!
//! Bodies are versioned. Version 2 (this one) is an envelope every event shares (sequence,
//! event, key, subjects, actor, time, link) and the event's own `data`. Version 1 bodies,
//! written before events were typed, are read as they are: history is never rewritten.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    domain::{Actor, Channel},
    transparency::receipt::Retained,
};

pub use super::facets::{Facets, OUTCOMES};
pub use super::lifecycle::{DeletionCancelled, ProcessorAcknowledged, ReuseBlockLifted};
pub use super::reads::{ReadAction, StaffRead};

/// Everything the ledger records: deletions, and what happened to the tickets that ask for
/// them. Staff sign-ins and auditor reads will join as variants, each with its own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    /// An account's data was erased.
    AccountDeleted(AccountDeleted),
    /// A ticket was verified, approved (or its first approval recorded), rejected or extended.
    Ticket(TicketEvent),
    /// A staff member read the ledger: auditors audit each other.
    StaffRead(StaffRead),
    /// A scheduled deletion was cancelled within its grace period.
    DeletionCancelled(DeletionCancelled),
    /// An admin let a deleted account's identifier sign up again before its cool-off ended.
    ReuseBlockLifted(ReuseBlockLifted),
    /// A downstream processor acknowledged its notice of a deletion (GDPR Art. 19).
    ProcessorAcknowledged(ProcessorAcknowledged),
}

/// A read names no subject.
static NO_SUBJECTS: Subjects = Subjects {
    vsee_id: String::new(),
    email: None,
};

/// What happened to a ticket. Each happens at most once per ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketAction {
    /// By the account's owner (actor: the account holder) or an agent with a reason.
    Verified,
    /// The first of two approvals, under the two-person rule.
    ApprovalRecorded,
    /// The deletion started.
    Approved,
    Rejected,
    Extended,
    /// An agent matched an unmatched ticket to an account.
    Linked,
    /// An agent closed it without a decision (spam, a duplicate, no answer).
    Closed,
    /// An agent closed it as a duplicate of another ticket, which kept its messages.
    Merged,
    /// Assigned to an agent, or to nobody.
    Assigned,
    /// An internal note was written (its text stays with the ticket).
    Noted,
    /// The requester was asked for more information.
    Asked,
}

impl TicketAction {
    /// Whether it may happen more than once on a ticket.
    pub fn repeatable(self) -> bool {
        matches!(self, Self::Assigned | Self::Noted | Self::Asked)
    }

    pub fn event(self) -> &'static str {
        match self {
            Self::Verified => "ticket_verified",
            Self::ApprovalRecorded => "ticket_approval_recorded",
            Self::Approved => "ticket_approved",
            Self::Rejected => "ticket_rejected",
            Self::Extended => "ticket_extended",
            Self::Linked => "ticket_linked",
            Self::Closed => "ticket_closed",
            Self::Merged => "ticket_merged",
            Self::Assigned => "ticket_assigned",
            Self::Noted => "ticket_noted",
            Self::Asked => "ticket_asked",
        }
    }
}

/// A ticket's event. Its reasons are not copied here: they are free text an agent wrote, and
/// may name people; the ticket keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent {
    pub action: TicketAction,
    /// The ticket's reference (T-…): the entry's key.
    pub reference: String,
    /// The matched account's pseudonyms; the sender's email pseudonym when none matched (with
    /// an empty VSee ID pseudonym).
    pub subjects: Subjects,
    /// Agents by their staff id; the account holder when they confirmed themselves.
    pub actor: Actor,
    /// The deletion an approval started.
    pub request_id: Option<String>,
    pub due_at: DateTime<Utc>,
}

/// The pseudonyms (keyed HMACs) of a subject's identifiers: the ledger never holds one in
/// clear, and a lookup by any of them finds the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    pub vsee_id: String,
    /// Requests made before the email's pseudonym was kept have none.
    pub email: Option<String>,
}

impl Subjects {
    pub fn all(&self) -> Vec<&str> {
        std::iter::once(self.vsee_id.as_str())
            .filter(|p| !p.is_empty())
            .chain(self.email.as_deref())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDeleted {
    pub request_id: String,
    pub subjects: Subjects,
    /// Staff are named by a pseudonymous staff id, never in clear.
    pub actor: Actor,
    pub channel: Channel,
    pub requested_at: DateTime<Utc>,
    /// When the purge began (entries before it was recorded have none).
    pub purge_started_at: Option<DateTime<Utc>>,
    pub purged_at: Option<DateTime<Utc>>,
    pub confirmation_sent_at: Option<DateTime<Utc>>,
    /// Why the confirmation could not be sent, when it could not.
    pub confirmation_not_sent: Option<String>,
    pub rows_removed: BTreeMap<String, i64>,
    /// What was kept on purpose, why and until when (the data map's declarations).
    pub retained: Vec<Retained>,
}

pub const BODY_VERSION: u32 = 2;

/// The signed body, version 2. Field order is fixed by the struct; maps are sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    pub v: u32,
    pub seq: i64,
    pub event: String,
    /// What the event is about, unique per event kind (a deletion's request id).
    pub key: String,
    /// Pseudonyms by identifier kind.
    pub subjects: BTreeMap<String, String>,
    pub actor: ActorRecord,
    pub recorded_at: String,
    pub prev_hash: String,
    pub data: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorRecord {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A version-1 body, as written before events were typed: deletions only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBodyV1 {
    pub seq: i64,
    pub event: String,
    pub request_id: String,
    pub subject: String,
    pub actor: String,
    pub channel: String,
    pub requested_at: String,
    pub purged_at: Option<String>,
    pub confirmation_sent_at: Option<String>,
    pub recorded_at: String,
    pub rows_removed: BTreeMap<String, i64>,
    pub prev_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_not_sent: Option<String>,
}

/// Any body the ledger holds.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredBody {
    V2(EntryBody),
    V1(EntryBodyV1),
}

impl StoredBody {
    pub fn parse(text: &str) -> Result<Self, String> {
        // The common case in one pass (verify reads every body): a current body straight into
        // its struct. Anything else takes the path that names what is wrong.
        if let Ok(body) = serde_json::from_str::<EntryBody>(text)
            && body.v == BODY_VERSION
        {
            return Ok(Self::V2(body));
        }
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match value.get("v") {
            Some(v) if v == &json!(BODY_VERSION) => serde_json::from_value(value).map(Self::V2),
            Some(v) => return Err(format!("unknown body version {v}")),
            None => serde_json::from_value(value).map(Self::V1),
        }
        .map_err(|e| e.to_string())
    }

    /// (sequence, event, key, primary subject, previous hash): what the indexed columns repeat.
    pub fn indexed(&self) -> (i64, &str, &str, &str, &str) {
        match self {
            Self::V2(b) => (
                b.seq,
                &b.event,
                &b.key,
                b.subjects.get("vsee_id").map_or("", String::as_str),
                &b.prev_hash,
            ),
            Self::V1(b) => (b.seq, &b.event, &b.request_id, &b.subject, &b.prev_hash),
        }
    }
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl AuditEvent {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AccountDeleted(_) => "account_deleted",
            Self::Ticket(e) => e.action.event(),
            Self::StaffRead(e) => e.action.event(),
            Self::DeletionCancelled(_) => "deletion_cancelled",
            Self::ReuseBlockLifted(_) => "reuse_block_lifted",
            Self::ProcessorAcknowledged(_) => "processor_acknowledged",
        }
    }

    /// The key: what the event is about, unique per kind.
    pub fn key(&self) -> &str {
        match self {
            Self::AccountDeleted(e) => &e.request_id,
            Self::Ticket(e) => &e.reference,
            Self::StaffRead(e) => &e.id,
            Self::DeletionCancelled(e) => &e.request_id,
            Self::ReuseBlockLifted(e) => &e.key,
            Self::ProcessorAcknowledged(e) => &e.delivery_id,
        }
    }

    pub fn subjects(&self) -> &Subjects {
        match self {
            Self::AccountDeleted(e) => &e.subjects,
            Self::Ticket(e) => &e.subjects,
            Self::StaffRead(_) => &NO_SUBJECTS,
            Self::DeletionCancelled(e) => &e.subjects,
            Self::ReuseBlockLifted(e) => &e.subjects,
            Self::ProcessorAcknowledged(e) => &e.subjects,
        }
    }

    /// The body this event signs as entry `seq` after `prev_hash`, recorded at `recorded_at`.
    pub fn body(&self, seq: i64, prev_hash: &str, recorded_at: DateTime<Utc>) -> EntryBody {
        let subjects = self.subjects();
        let mut named = BTreeMap::new();
        if !subjects.vsee_id.is_empty() {
            named.insert("vsee_id".to_owned(), subjects.vsee_id.clone());
        }
        if let Some(email) = &subjects.email {
            named.insert("email".to_owned(), email.clone());
        }
        let (actor, data) = match self {
            Self::AccountDeleted(e) => {
                let mut data = json!({
                    "channel": e.channel.as_str(),
                    "requested_at": timestamp(e.requested_at),
                    "purged_at": e.purged_at.map(timestamp),
                    "confirmation_sent_at": e.confirmation_sent_at.map(timestamp),
                    "confirmation_not_sent": e.confirmation_not_sent,
                    "rows_removed": e.rows_removed,
                });
                // Absent rather than empty: bodies signed before retention was declared read
                // the same as one with nothing kept.
                if !e.retained.is_empty() {
                    data["retained"] = json!(e.retained);
                }
                if let Some(started) = e.purge_started_at {
                    data["purge_started_at"] = json!(timestamp(started));
                }
                (actor_record(&e.actor), data)
            }
            Self::Ticket(e) => (
                actor_record(&e.actor),
                json!({
                    "due_at": timestamp(e.due_at),
                    "request_id": e.request_id,
                }),
            ),
            Self::StaffRead(e) => (
                ActorRecord {
                    kind: "staff".to_owned(),
                    id: Some(e.staff_id.to_string()),
                },
                json!({
                    "query": e.query,
                    "results": e.results,
                }),
            ),
            Self::DeletionCancelled(e) => (
                actor_record(&e.actor),
                json!({
                    "channel": e.channel.as_str(),
                    "requested_at": timestamp(e.requested_at),
                    "purge_after": timestamp(e.purge_after),
                }),
            ),
            Self::ReuseBlockLifted(e) => (
                ActorRecord {
                    kind: "staff".to_owned(),
                    id: Some(e.staff_id.to_string()),
                },
                json!({ "until": timestamp(e.until), "reason": e.reason }),
            ),
            Self::ProcessorAcknowledged(e) => (
                ActorRecord {
                    kind: "processor".to_owned(),
                    id: Some(e.processor.clone()),
                },
                json!({
                    "request_id": e.request_id,
                    "processor": e.processor,
                    "status": e.status,
                }),
            ),
        };
        EntryBody {
            v: BODY_VERSION,
            seq,
            event: self.kind().to_owned(),
            key: self.key().to_owned(),
            subjects: named,
            actor,
            recorded_at: timestamp(recorded_at),
            prev_hash: prev_hash.to_owned(),
            data,
        }
    }
}

fn actor_record(actor: &Actor) -> ActorRecord {
    let (kind, id) = actor.parts();
    ActorRecord {
        kind: match kind {
            crate::domain::ActorKind::AccountHolder => "account_holder".to_owned(),
            crate::domain::ActorKind::Agent => "agent".to_owned(),
            crate::domain::ActorKind::Admin => "admin".to_owned(),
            crate::domain::ActorKind::System => "system".to_owned(),
        },
        id: id.map(|id| id.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_event_names_its_ticket_and_agent_and_no_reason() {
        let at = DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .unwrap()
            .to_utc();
        let event = AuditEvent::Ticket(TicketEvent {
            action: TicketAction::Approved,
            reference: "T-7K2M9QXA".into(),
            subjects: Subjects {
                vsee_id: "p-vsee".into(),
                email: Some("p-email".into()),
            },
            actor: Actor::Agent(4),
            request_id: Some("r9".into()),
            due_at: at,
        });
        let json = serde_json::to_string(&event.body(3, "h", at)).unwrap();
        assert_eq!(
            json,
            r#"{"v":2,"seq":3,"event":"ticket_approved","key":"T-7K2M9QXA","subjects":{"email":"p-email","vsee_id":"p-vsee"},"actor":{"kind":"agent","id":"4"},"recorded_at":"2026-11-29T10:00:00.000000Z","prev_hash":"h","data":{"due_at":"2026-11-29T10:00:00.000000Z","request_id":"r9"}}"#
        );
    }

    fn deletion() -> AuditEvent {
        let at = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .to_utc();
        AuditEvent::AccountDeleted(AccountDeleted {
            request_id: "r1".into(),
            subjects: Subjects {
                vsee_id: "p-vsee".into(),
                email: Some("p-email".into()),
            },
            actor: Actor::AccountHolder,
            channel: Channel::Api,
            requested_at: at,
            purge_started_at: None,
            purged_at: Some(at),
            confirmation_sent_at: None,
            confirmation_not_sent: Some("undeliverable".into()),
            rows_removed: BTreeMap::from([("messages".into(), 3)]),
            retained: Vec::new(),
        })
    }

    #[test]
    fn a_body_is_a_pure_function_of_the_event_and_its_place() {
        let at = DateTime::parse_from_rfc3339("2026-11-28T11:00:00Z")
            .unwrap()
            .to_utc();
        let body = deletion().body(7, "abc", at);
        assert_eq!(body, deletion().body(7, "abc", at));
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"v":2,"seq":7,"event":"account_deleted","key":"r1","subjects":{"email":"p-email","vsee_id":"p-vsee"},"actor":{"kind":"account_holder"},"recorded_at":"2026-11-28T11:00:00.000000Z","prev_hash":"abc","data":{"channel":"api","confirmation_not_sent":"undeliverable","confirmation_sent_at":null,"purged_at":"2026-11-28T10:00:00.000000Z","requested_at":"2026-11-28T10:00:00.000000Z","rows_removed":{"messages":3}}}"#
        );
        let parsed = StoredBody::parse(&json).unwrap();
        assert_eq!(parsed.indexed(), (7, "account_deleted", "r1", "p-vsee", "abc"));
    }

    #[test]
    fn version_1_bodies_still_read() {
        let v1 = r#"{"seq":1,"event":"account_deleted","request_id":"r0","subject":"p","actor":"account_holder","channel":"web","requested_at":"t","purged_at":null,"confirmation_sent_at":null,"recorded_at":"t","rows_removed":{},"prev_hash":"0"}"#;
        let parsed = StoredBody::parse(v1).unwrap();
        assert_eq!(parsed.indexed(), (1, "account_deleted", "r0", "p", "0"));
        assert!(StoredBody::parse(r#"{"v":9}"#).is_err());
    }
}
