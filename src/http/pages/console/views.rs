//! Askama view models of the staff console. Templates live in `admin-ui/templates`; every
//! value is HTML-escaped, and a ticket's message is shown as text, never as markup.

/// `GET /staff/login`.
#[derive(Debug, askama::Template)]
#[template(path = "staff_login.html")]
pub struct StaffLoginPage {
    pub csrf_token: String,
    pub email: String,
    pub error: Option<String>,
}

/// The console's links, by what the staff member's role may open.
#[derive(Debug, Clone, Copy)]
pub struct Nav {
    pub agent: bool,
    pub auditor: bool,
    pub admin: bool,
}

impl Nav {
    pub fn of(role: crate::domain::StaffRole) -> Self {
        use crate::domain::StaffRole;
        Self {
            agent: role.grants(StaffRole::Agent),
            auditor: role.grants(StaffRole::Auditor),
            admin: role == StaffRole::Admin,
        }
    }
}

/// The queue (`GET /staff/tickets`): sorted by due date, filtered and searched.
#[derive(Debug, askama::Template)]
#[template(path = "staff_tickets.html")]
pub struct QueuePage {
    pub csrf_token: String,
    pub staff_name: String,
    pub nav: Nav,
    pub filter: QueueFilterView,
    pub rows: Vec<QueueRow>,
    /// Open tickets past due / due within a week, over the whole queue.
    pub overdue: u64,
    pub due_soon: u64,
    /// The daily job's latest reading, when it has run.
    pub clock: Option<String>,
    /// The query string of the previous and next pages, when there are such pages.
    pub previous: Option<String>,
    pub next: Option<String>,
    /// Processors' notices of deletions whose last attempt failed (GDPR Art. 19): agents
    /// and admins act on them.
    pub dead_deliveries: Vec<DeadDelivery>,
}

/// The filters as the form shows them again.
#[derive(Debug, Clone, Default)]
pub struct QueueFilterView {
    pub status_options: Vec<Choice>,
    pub verified_options: Vec<Choice>,
    pub assignee_options: Vec<Choice>,
    pub overdue: bool,
    pub q: String,
}

/// One option of a select.
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

impl Choice {
    /// `(value, label)` pairs, the one whose value is `current` selected.
    pub fn list(pairs: &[(&'static str, &'static str)], current: &str) -> Vec<Self> {
        pairs
            .iter()
            .map(|&(value, label)| Self {
                value,
                label,
                selected: value == current,
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct QueueRow {
    pub id: i64,
    pub reference: String,
    pub status: String,
    pub verified: bool,
    pub sender: String,
    pub subject: String,
    pub received_at: String,
    pub due_at: String,
    pub overdue: bool,
    /// "staff #id", or empty.
    pub assignee: String,
}

/// One ticket (`GET /staff/tickets/{id}`), with what an agent decides on.
#[derive(Debug, askama::Template)]
#[template(path = "staff_ticket.html")]
pub struct TicketPage {
    pub csrf_token: String,
    pub staff_name: String,
    pub nav: Nav,
    pub ticket: QueueRow,
    pub door: String,
    pub body: String,
    pub replies: Vec<ReplyView>,
    pub notes: Vec<NoteView>,
    /// Who works it, named.
    pub assignee: Option<String>,
    pub assigned_to_me: bool,
    /// Why the deadline was extended, once it was.
    pub extension: Option<String>,
    pub can_extend: bool,
    /// With the two-person rule: who approved first, awaiting a second agent.
    pub awaiting_second: Option<String>,
    /// How it was verified, when it was.
    pub verification: Option<String>,
    /// DKIM, SPF and DMARC as checked on arrival (none for the in-app door).
    pub sender_checks: Option<SenderChecksView>,
    /// The reference of the ticket this duplicate was merged into.
    pub merged_into: Option<String>,
    pub account: Option<MatchedAccount>,
    /// Rows the purge would remove or unlink, per store of the data map.
    pub preview: Vec<PreviewRow>,
    pub history: Vec<HistoryLine>,
    pub open: bool,
    pub notice: Option<String>,
    /// A deletion receipt to link to, after an approval.
    pub receipt: Option<String>,
    /// The deletion the approval started, while it is in its grace period or was cancelled.
    pub grace: Option<GraceView>,
    pub error: Option<String>,
}

/// An approved ticket's deletion under a grace period.
#[derive(Debug, Clone)]
pub struct GraceView {
    pub purge_after: String,
    pub cancellable: bool,
    /// When, by whom and why it was cancelled.
    pub cancelled: Option<String>,
}

#[derive(Debug, Clone)]
pub struct MatchedAccount {
    pub id: i64,
    pub vsee_id: String,
    pub plan: String,
    pub status: String,
    pub created_at: String,
    pub last_login: String,
    /// Whether billing runs, or when it stopped.
    pub subscription: String,
}

#[derive(Debug, Clone)]
pub struct SenderChecksView {
    pub dkim: String,
    pub spf: String,
    pub dmarc: String,
    /// `pass` on all three: still not proof of the account's owner.
    pub all_pass: bool,
}

impl SenderChecksView {
    pub fn of(t: &crate::models::ticket::Model) -> Option<Self> {
        let (dkim, spf, dmarc) = (t.dkim?, t.spf?, t.dmarc?);
        let dkim_text = match &t.dkim_domain {
            Some(domain) => format!("{} (signed by {domain})", dkim.as_str()),
            None => dkim.as_str().to_owned(),
        };
        use crate::domain::AuthVerdict::Pass;
        Some(Self {
            dkim: dkim_text,
            spf: spf.as_str().to_owned(),
            dmarc: dmarc.as_str().to_owned(),
            all_pass: dkim == Pass && spf == Pass && dmarc == Pass,
        })
    }
}

#[derive(Debug, Clone)]
pub struct PreviewRow {
    pub store: String,
    pub action: String,
    pub rows: i64,
}

#[derive(Debug, Clone)]
pub struct HistoryLine {
    pub at: String,
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct ReplyView {
    pub sender: String,
    pub subject: String,
    pub body: String,
    pub received_at: String,
}

#[derive(Debug, Clone)]
pub struct NoteView {
    pub by: String,
    /// note | question
    pub kind: String,
    pub body: String,
    pub at: String,
}

/// `/staff/accounts` (administrators): bulk deletion of dormant accounts, and lifting a
/// re-registration cool-off.
#[derive(Debug, askama::Template)]
#[template(path = "staff_accounts.html")]
pub struct AccountsPage {
    pub csrf_token: String,
    pub staff_name: String,
    pub nav: Nav,
    /// The date asked about (YYYY-MM-DD), empty before one is.
    pub inactive_since: String,
    pub preview: Option<BulkPreviewView>,
    pub runs: Vec<BulkRunView>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BulkPreviewView {
    pub inactive_since: String,
    pub count: u64,
    /// The first 20, by id.
    pub rows: Vec<DormantRow>,
}

#[derive(Debug, Clone)]
pub struct DormantRow {
    pub id: i64,
    pub vsee_id: String,
    pub created_at: String,
    pub last_login: String,
}

#[derive(Debug, Clone)]
pub struct BulkRunView {
    pub started_at: String,
    pub inactive_since: String,
    pub staff_id: i64,
    pub requested: i64,
    pub skipped: i64,
    pub finished: bool,
}

/// A processor's notice that died, as the queue page lists it.
#[derive(Debug, Clone)]
pub struct DeadDelivery {
    pub processor: String,
    pub request_id: String,
    pub attempts: i32,
    pub error: String,
    pub since: String,
}
