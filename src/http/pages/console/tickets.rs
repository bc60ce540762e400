//! The queue, for agents (and admins): sorted by due date, filtered and searched, through the
//! same services as the API.

use chrono::{DateTime, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use poem::{
    Response, handler,
    web::{CsrfToken, Data, Query},
};
use serde::Deserialize;

use super::{
    super::{failed, ok},
    views::{Choice, DeadDelivery, Nav, QueueFilterView, QueuePage, QueueRow},
};
use crate::{
    domain::TicketStatus,
    error::{AppError, AppResult},
    http::{api::auth::Agent, extract::StaffPage},
    models::ticket,
    services::{
        processors::{self, DeliveryState},
        tickets,
    },
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

pub(super) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub(super) fn row(t: &ticket::Model, now: DateTime<Utc>) -> QueueRow {
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
        let counts =
            tickets::deadline_counts(state.env(), chrono::Duration::days(tickets::DUE_SOON_DAYS)).await?;
        let day = tickets::latest_day(state.env()).await?;
        let dead = processors::deliveries(&state.db, Some(DeliveryState::Dead), 20).await?;
        Ok::<_, AppError>((found, counts, day, dead))
    }
    .await;
    let now = state.clock.now();
    let mut page = QueuePage {
        csrf_token: token.0.clone(),
        staff_name: me.staff.name.clone(),
        nav: Nav::of(me.staff.role),
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
        clock: None,
        previous: None,
        next: None,
        dead_deliveries: Vec::new(),
    };
    match result {
        Ok((found, (_, overdue, due_soon), day, dead)) => {
            page.dead_deliveries = dead
                .into_iter()
                .map(|d| DeadDelivery {
                    processor: d.processor,
                    request_id: d.request_id,
                    attempts: d.attempts,
                    error: d.last_error.unwrap_or_default(),
                    since: d.dead_at.map(when).unwrap_or_default(),
                })
                .collect();
            page.clock = day.map(|d| {
                format!(
                    "Daily reading of {} (taken {}): {} open, {} overdue, {} due within 7 days",
                    d.day,
                    when(d.computed_at),
                    d.open,
                    d.overdue,
                    d.due_soon
                )
            });
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
