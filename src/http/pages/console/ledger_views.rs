//! Askama view models of the auditor's pages: the ledger, one entry, the lookup, the reports.

use super::views::{Choice, Nav};
use crate::models::ledger_entry;

/// `GET /staff/ledger`: entries newest first, filtered, a keyset page at a time.
#[derive(Debug, askama::Template)]
#[template(path = "staff_ledger.html")]
pub struct LedgerPage {
    pub csrf_token: String,
    pub staff_name: String,
    pub nav: Nav,
    pub from: String,
    pub to: String,
    pub event_options: Vec<Choice>,
    pub channel_options: Vec<Choice>,
    pub actor_options: Vec<Choice>,
    pub outcome_options: Vec<Choice>,
    pub rows: Vec<LedgerRow>,
    /// The query string of the next (older) page, when there is one.
    pub next: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub seq: i64,
    pub recorded_at: String,
    pub event: String,
    pub key: String,
    pub channel: String,
    pub actor_kind: String,
    pub outcome: String,
}

impl LedgerRow {
    pub fn of(e: &ledger_entry::Model) -> Self {
        Self {
            seq: e.seq,
            recorded_at: e.recorded_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            event: e.event.clone(),
            key: e.request_id.clone(),
            channel: e.channel.clone().unwrap_or_default(),
            actor_kind: e.actor_kind.clone().unwrap_or_default(),
            outcome: e.outcome.clone().unwrap_or_default(),
        }
    }
}

/// `GET /staff/ledger/{seq}`: one entry, its proof material and its subject's timeline.
#[derive(Debug, askama::Template)]
#[template(path = "staff_ledger_entry.html")]
pub struct LedgerEntryPage {
    pub csrf_token: String,
    pub staff_name: String,
    pub nav: Nav,
    pub row: LedgerRow,
    pub subject: String,
    pub prev_hash: String,
    pub hash: String,
    pub leaf_hash: String,
    /// When the body was pruned (past the retention period), if it was.
    pub pruned_at: Option<String>,
    /// The signed body, indented for reading.
    pub body: String,
    pub timeline: Vec<TimelineRow>,
}

#[derive(Debug, Clone)]
pub struct TimelineRow {
    pub at: String,
    pub what: String,
    pub seq: i64,
}

/// `GET|POST /staff/lookup`: "was this person deleted?". The identifier typed in is never
/// shown back, stored or logged.
#[derive(Debug, askama::Template)]
#[template(path = "staff_lookup.html")]
pub struct LookupPage {
    pub csrf_token: String,
    pub staff_name: String,
    pub nav: Nav,
    /// After a lookup: how the identifier was read, and what was found.
    pub answer: Option<LookupAnswer>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LookupAnswer {
    /// "email address" | "VSee ID"
    pub kind: &'static str,
    pub deleted: bool,
    pub rows: Vec<LedgerRow>,
}

/// `GET /staff/reports`: the charts, each with its numbers.
#[derive(Debug, askama::Template)]
#[template(path = "staff_reports.html")]
pub struct ReportsPage {
    pub csrf_token: String,
    pub staff_name: String,
    pub nav: Nav,
    pub charts: Vec<ChartView>,
    /// How each downstream processor answers its notices.
    pub processors: Vec<ProcessorRow>,
}

#[derive(Debug, Clone)]
pub struct ProcessorRow {
    pub name: String,
    pub configured: bool,
    pub offered: u64,
    pub acknowledged: u64,
    pub dead: u64,
    pub never_acknowledged: bool,
    pub waiting_since: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChartView {
    pub title: String,
    /// Drawn by plotters from numbers only: no text from users reaches it.
    pub svg: String,
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}
