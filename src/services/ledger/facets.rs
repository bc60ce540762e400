//! The facets an auditor filters the ledger by (channel, actor kind, outcome), read off a
//! signed body. They are repeated in indexed columns; the body alone is signed.

use serde_json::Value;

use super::events::{EntryBody, StoredBody};

/// What an auditor filters the ledger by, read off a body: the channel a deletion came by,
/// who acted (account holder, agent, staff), and how a deletion or ticket ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub channel: Option<String>,
    pub actor_kind: Option<String>,
    pub outcome: Option<String>,
}

impl StoredBody {
    pub fn facets(&self) -> Facets {
        match self {
            Self::V2(b) => b.facets(),
            Self::V1(b) => Facets {
                channel: Some(b.channel.clone()),
                actor_kind: Some(b.actor.clone()),
                outcome: Some(deletion_outcome(b.confirmation_not_sent.is_some()).to_owned()),
            },
        }
    }
}

impl EntryBody {
    pub fn facets(&self) -> Facets {
        let deletion = self.event == "account_deleted";
        let about_a_deletion = deletion || self.event == "deletion_cancelled";
        Facets {
            channel: about_a_deletion
                .then(|| self.data.get("channel").and_then(Value::as_str))
                .flatten()
                .map(str::to_owned),
            actor_kind: Some(self.actor.kind.clone()),
            outcome: if deletion {
                let unsent = self
                    .data
                    .get("confirmation_not_sent")
                    .is_some_and(|v| !v.is_null());
                Some(deletion_outcome(unsent).to_owned())
            } else if self.event == "deletion_cancelled" {
                Some("cancelled".to_owned())
            } else {
                ticket_outcome(&self.event).map(str::to_owned)
            },
        }
    }
}

/// The outcomes the ledger's filter offers.
pub const OUTCOMES: [&str; 7] = [
    "completed",
    "completed_without_email",
    "cancelled",
    "approved",
    "rejected",
    "closed",
    "merged",
];

fn deletion_outcome(confirmation_not_sent: bool) -> &'static str {
    if confirmation_not_sent {
        "completed_without_email"
    } else {
        "completed"
    }
}

fn ticket_outcome(event: &str) -> Option<&'static str> {
    match event {
        "ticket_approved" => Some("approved"),
        "ticket_rejected" => Some("rejected"),
        "ticket_closed" => Some("closed"),
        "ticket_merged" => Some("merged"),
        _ => None,
    }
}
