//! An entry's story for the auditor's entry page: what the deletion's own entry states
//! (requested, purged with rows per store, the confirmation email, completed) and what the
//! entries about the same subject or ticket add (verified, approved by, …), in time order.

use serde_json::Value;

use crate::models::ledger_entry;

/// One step: when, what, and the entry that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// RFC 3339 (as the body records it).
    pub at: String,
    pub what: String,
    pub seq: i64,
}

fn text<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get("data")
        .and_then(|d| d.get(name))
        .or_else(|| body.get(name))
        .and_then(Value::as_str)
}

fn actor(body: &Value) -> String {
    match body.get("actor") {
        Some(Value::Object(a)) => {
            let kind = a.get("kind").and_then(Value::as_str).unwrap_or("someone");
            match a.get("id").and_then(Value::as_str) {
                Some(id) => format!("{kind} {id}"),
                None => kind.replace('_', " "),
            }
        }
        Some(Value::String(kind)) => kind.replace('_', " "),
        _ => "someone".into(),
    }
}

/// The steps `entries` record, oldest first.
pub fn of(entries: &[ledger_entry::Model]) -> Vec<Step> {
    let mut steps = Vec::new();
    for entry in entries {
        let Ok(body) = serde_json::from_str::<Value>(&entry.body) else {
            continue;
        };
        let recorded = text(&body, "recorded_at").unwrap_or_default().to_owned();
        let mut step = |at: Option<&str>, what: String| {
            if let Some(at) = at {
                steps.push(Step {
                    at: at.to_owned(),
                    what,
                    seq: entry.seq,
                });
            }
        };
        if entry.event == "account_deleted" {
            let channel = text(&body, "channel").unwrap_or("?");
            step(
                text(&body, "requested_at"),
                format!("deletion requested by {} ({channel})", actor(&body)),
            );
            let rows = body
                .get("data")
                .and_then(|d| d.get("rows_removed"))
                .or_else(|| body.get("rows_removed"))
                .and_then(Value::as_object)
                .map(|stores| {
                    stores
                        .iter()
                        .map(|(store, n)| format!("{store} {n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            step(text(&body, "purge_started_at"), "purge started".into());
            step(text(&body, "purged_at"), format!("purge finished: {rows}"));
            match (
                text(&body, "confirmation_sent_at"),
                text(&body, "confirmation_not_sent"),
            ) {
                (Some(at), _) => step(Some(at), "confirmation email sent".into()),
                (None, Some(why)) => step(Some(&recorded), format!("confirmation email not sent: {why}")),
                (None, None) => {}
            }
            step(Some(&recorded), "completed: ledger entry written".into());
        } else {
            let what = entry.event.replace('_', " ");
            step(Some(&recorded), format!("{what} by {}", actor(&body)));
        }
    }
    steps.sort_by(|a, b| a.at.cmp(&b.at).then(a.seq.cmp(&b.seq)));
    steps
}
