//! The queue and one ticket, for agents (and admins): what they see and the decisions they
//! make, through the same services as the API.

use chrono::{DateTime, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use poem::{
    Response, handler,
    web::{CsrfToken, Data, Path, Query},
};
use serde::Deserialize;

use super::{
    super::{error_page, failed, ok},
    views::{
        Choice, HistoryLine, MatchedAccount, NoteView, PreviewRow, QueueFilterView, QueuePage, QueueRow,
        ReplyView, TicketPage,
    },
};
use crate::{
    domain::{AccountStatus, TicketStatus},
    error::{AppError, AppResult},
    http::{api::auth::Agent, extract::StaffPage},
    models::ticket,
    services::{accounts, intake, purge_preview, staff as staff_service, tickets},
    state::AppState,
};

const PAGE_SIZE: u64 = 50;
const STATUSES: &[(&str, &str)] = &[
    ("", "any"),
    ("open", "open"),
    ("approved", "approved"),
    ("rejected", "rejected"),
    ("closed", "closed"),
];
const VERIFIED: &[(&str, &str)] = &[("", "any"), ("true", "verified"), ("false", "not verified")];
const ASSIGNEES: &[(&str, &str)] = &[("", "anyone"), ("me", "me"), ("none", "nobody")];

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn row(t: &ticket::Model, now: DateTime<Utc>) -> QueueRow {
    QueueRow {
        id: t.id,
        reference: t.reference.clone(),
        status: t.status.as_str().to_owned(),
        verified: t.verified_at.is_some(),
        sender: t.sender.clone(),
        subject: t.subject.clone(),
        received_at: when(t.received_at),
        due_at: when(t.due_at),
        overdue: t.status == TicketStatus::Open && t.due_at < now,
        assignee: t.assignee_id.map(|id| format!("staff #{id}")).unwrap_or_default(),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct QueueQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    verified: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    page: u64,
}

impl QueueQuery {
    fn filter(&self, me: i64) -> AppResult<tickets::TicketFilter> {
        let assignee = match self.assignee.trim() {
            "" => None,
            "me" => Some(tickets::Assignee::Staff(me)),
            "none" => Some(tickets::Assignee::Nobody),
            _ => return Err(AppError::InvalidInput("assignee is me, none or empty".into())),
        };
        let status = match self.status.trim() {
            "" => None,
            s => Some(TicketStatus::parse(s)?),
        };
        let verified = match self.verified.trim() {
            "" => None,
            "true" => Some(true),
            "false" => Some(false),
            _ => return Err(AppError::InvalidInput("verified is true, false or empty".into())),
        };
        if self.q.chars().count() > 200 || self.page > 20_000 {
            return Err(AppError::InvalidInput(
                "the search is at most 200 characters, the page at most 20,000".into(),
            ));
        }
        Ok(tickets::TicketFilter {
            assignee,
            status,
            verified,
            overdue: (self.overdue == "true").then_some(true),
            q: Some(self.q.clone()).filter(|q| !q.trim().is_empty()),
            // One more than shown: whether there is a next page.
            limit: PAGE_SIZE + 1,
            offset: self.page * PAGE_SIZE,
        })
    }

    /// This query on another page.
    fn on_page(&self, page: u64) -> String {
        let enc = |v: &str| utf8_percent_encode(v, NON_ALPHANUMERIC).to_string();
        format!(
            "status={}&verified={}&overdue={}&q={}&assignee={}&page={page}",
            enc(&self.status),
            enc(&self.verified),
            enc(&self.overdue),
            enc(&self.q),
            enc(&self.assignee)
        )
    }
}

#[handler]
pub(super) async fn queue(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    query: Option<Query<QueueQuery>>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let result = async {
        let filter = query.filter(me.staff.id)?;
        let found = tickets::list(state.env(), &filter).await?;
        let counts = tickets::deadline_counts(state.env(), chrono::Duration::days(7)).await?;
        Ok::<_, AppError>((found, counts))
    }
    .await;
    let now = state.clock.now();
    let mut page = QueuePage {
        csrf_token: token.0.clone(),
        staff_name: me.staff.name.clone(),
        filter: QueueFilterView {
            status_options: Choice::list(STATUSES, query.status.trim()),
            verified_options: Choice::list(VERIFIED, query.verified.trim()),
            assignee_options: Choice::list(ASSIGNEES, query.assignee.trim()),
            overdue: query.overdue == "true",
            q: query.q.clone(),
        },
        rows: Vec::new(),
        overdue: 0,
        due_soon: 0,
        previous: None,
        next: None,
    };
    match result {
        Ok((found, (_, overdue, due_soon))) => {
            let more = found.len() as u64 > PAGE_SIZE;
            page.rows = found
                .iter()
                .take(PAGE_SIZE as usize)
                .map(|t| row(t, now))
                .collect();
            page.overdue = overdue;
            page.due_soon = due_soon;
            page.previous = (query.page > 0).then(|| query.on_page(query.page - 1));
            page.next = more.then(|| query.on_page(query.page + 1));
            ok(&page)
        }
        Err(e) => failed(&e, &page),
    }
}

/// The ticket page, with `notice`/`error` from what just happened to it.
pub(super) async fn ticket_page(
    state: &AppState,
    me: &staff_service::StaffSession,
    token: &CsrfToken,
    id: i64,
) -> AppResult<TicketPage> {
    let env = state.env();
    let found = tickets::find(env, id).await?;
    let account = match found.account_id {
        Some(account_id) => accounts::find(env.db, account_id).await?,
        None => None,
    };
    let preview = match &account {
        Some(a) if found.status == TicketStatus::Open => purge_preview::count(env, &state.purge_plan, a.id)
            .await?
            .into_iter()
            .map(|c| PreviewRow {
                store: c.store,
                action: c.action.to_owned(),
                rows: c.rows,
            })
            .collect(),
        _ => Vec::new(),
    };
    let verification = match (found.verified_at, found.verified_by) {
        (None, _) => None,
        (Some(_), Some(by)) => Some(format!(
            "by {}: {}",
            staff_name(state, by).await?,
            found.verification_reason.as_deref().unwrap_or_default()
        )),
        (Some(_), None) => found.verification_reason.clone(),
    };
    let history = history(state, &found).await?;
    let mut notes = Vec::new();
    for n in tickets::notes(env, found.id).await? {
        notes.push(NoteView {
            by: staff_name(state, n.staff_id).await?,
            kind: n.kind,
            body: n.body,
            at: when(n.created_at),
        });
    }
    let assignee = match found.assignee_id {
        Some(id) => Some(staff_name(state, id).await?),
        None => None,
    };
    let awaiting_second = match found.first_approved_by {
        Some(id) if found.status == TicketStatus::Open => Some(staff_name(state, id).await?),
        _ => None,
    };
    let replies = intake::replies_of(env, found.id)
        .await?
        .into_iter()
        .map(|r| ReplyView {
            sender: r.sender,
            subject: r.subject,
            body: r.body,
            received_at: when(r.received_at),
        })
        .collect();
    Ok(TicketPage {
        csrf_token: token.0.clone(),
        staff_name: me.staff.name.clone(),
        ticket: row(&found, state.clock.now()),
        door: found.door.as_str().to_owned(),
        body: found.body.clone(),
        replies,
        notes,
        assignee,
        assigned_to_me: found.assignee_id == Some(me.staff.id),
        extension: found.extension_reason.clone(),
        can_extend: found.status == TicketStatus::Open
            && found.extended_at.is_none()
            && found.due_at > state.clock.now(),
        awaiting_second,
        verification,
        account: account.map(|a| MatchedAccount {
            id: a.id,
            vsee_id: a.vsee_id.clone(),
            plan: a.plan.as_str().to_owned(),
            status: match a.status {
                AccountStatus::Active => "active",
                AccountStatus::Deleting => "being deleted",
            }
            .to_owned(),
            created_at: when(a.created_at),
        }),
        preview,
        history,
        open: found.status == TicketStatus::Open,
        notice: None,
        receipt: None,
        error: None,
    })
}

/// Staff are named with their id, so two of the same name are told apart.
async fn staff_name(state: &AppState, id: i64) -> AppResult<String> {
    Ok(match staff_service::find(&state.db, id).await? {
        Some(member) => format!("{} (staff #{id})", member.name),
        None => format!("staff #{id}"),
    })
}

async fn history(state: &AppState, t: &ticket::Model) -> AppResult<Vec<HistoryLine>> {
    let mut lines = vec![HistoryLine {
        at: when(t.received_at),
        what: format!("received by {}", t.door.as_str()),
    }];
    if let Some(at) = t.verified_at {
        let who = match t.verified_by {
            Some(by) => format!("verified by {}", staff_name(state, by).await?),
            None => "verified".to_owned(),
        };
        let why = t.verification_reason.as_deref().unwrap_or_default();
        lines.push(HistoryLine {
            at: when(at),
            what: format!("{who}: {why}"),
        });
    }
    if let (Some(at), Some(by)) = (t.first_approved_at, t.first_approved_by) {
        lines.push(HistoryLine {
            at: when(at),
            what: format!("first approval by {}", staff_name(state, by).await?),
        });
    }
    if let (Some(at), Some(by)) = (t.extended_at, t.extended_by) {
        lines.push(HistoryLine {
            at: when(at),
            what: format!(
                "deadline extended to {} by {}: {}",
                when(t.due_at),
                staff_name(state, by).await?,
                t.extension_reason.as_deref().unwrap_or_default()
            ),
        });
    }
    if let (Some(at), Some(by)) = (t.decided_at, t.decided_by) {
        let why = t
            .decision_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        lines.push(HistoryLine {
            at: when(at),
            what: format!("{} by {}{why}", t.status.as_str(), staff_name(state, by).await?),
        });
    }
    Ok(lines)
}

#[handler]
pub(super) async fn show(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
) -> Response {
    match ticket_page(&state, &me, token, id).await {
        Ok(page) => ok(&page),
        Err(e) => error_page(&e),
    }
}
