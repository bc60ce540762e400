//! One ticket as an agent sees it: the message as text, the matched account, what DNS said of
//! the sender, what the purge would remove, notes, and the history, with every agent named
//! from one query.

use std::collections::HashMap;

use poem::{
    Response, handler,
    web::{CsrfToken, Data, Path},
};

use super::{
    super::{error_page, ok},
    tickets::{row, when},
    views::{
        GraceView, HistoryLine, MatchedAccount, Nav, NoteView, PreviewRow, ReplyView, SenderChecksView,
        TicketPage,
    },
};
use crate::{
    domain::{AccountStatus, DeletionStatus, Plan, TicketStatus},
    error::AppResult,
    http::{api::auth::Agent, extract::StaffPage},
    models::{account, ticket},
    services::{accounts, deletion, intake, purge_preview, sessions, staff as staff_service, tickets},
    state::AppState,
};

/// Agents named with their id, so two of the same name are told apart.
struct StaffNames(HashMap<i64, String>);

impl StaffNames {
    async fn load(state: &AppState, ids: impl IntoIterator<Item = i64>) -> AppResult<Self> {
        let mut ids: Vec<i64> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let found = staff_service::by_ids(&state.db, &ids).await?;
        Ok(Self(found.into_iter().map(|(id, m)| (id, m.name)).collect()))
    }

    fn of(&self, id: i64) -> String {
        match self.0.get(&id) {
            Some(name) => format!("{name} (staff #{id})"),
            None => format!("staff #{id}"),
        }
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
    let now = state.clock.now();
    let found = tickets::find(env, id).await?;
    let account = match found.account_id {
        Some(account_id) => accounts::find(env, account_id).await?,
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
    let notes = tickets::notes(env, found.id).await?;
    let names = StaffNames::load(
        state,
        [
            found.verified_by,
            found.assignee_id,
            found.first_approved_by,
            found.extended_by,
            found.decided_by,
        ]
        .into_iter()
        .flatten()
        .chain(notes.iter().map(|n| n.staff_id)),
    )
    .await?;
    let verification = match (found.verified_at, found.verified_by) {
        (None, _) => None,
        (Some(_), Some(by)) => Some(format!(
            "by {}: {}",
            names.of(by),
            found.verification_reason.as_deref().unwrap_or_default()
        )),
        (Some(_), None) => found.verification_reason.clone(),
    };
    let merged_into = match found.merged_into_id {
        Some(kept) => Some(tickets::find(env, kept).await?.reference),
        None => None,
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
    let grace = match found.deletion_request_id.as_deref().map(uuid::Uuid::parse_str) {
        Some(Ok(request_id)) => grace_view(&names, &deletion::find(env.db, request_id).await?, now),
        _ => None,
    };
    let matched = match account {
        Some(a) => Some(matched_account(state, &a).await?),
        None => None,
    };
    Ok(TicketPage {
        csrf_token: token.0.clone(),
        staff_name: me.staff.name.clone(),
        nav: Nav::of(me.staff.role),
        ticket: row(&found, now),
        door: found.door.as_str().to_owned(),
        body: found.body.clone(),
        replies,
        notes: notes
            .into_iter()
            .map(|n| NoteView {
                by: names.of(n.staff_id),
                kind: n.kind,
                body: n.body,
                at: when(n.created_at),
            })
            .collect(),
        assignee: found.assignee_id.map(|id| names.of(id)),
        assigned_to_me: found.assignee_id == Some(me.staff.id),
        extension: found.extension_reason.clone(),
        can_extend: found.status == TicketStatus::Open && found.extended_at.is_none() && found.due_at > now,
        awaiting_second: match found.first_approved_by {
            Some(id) if found.status == TicketStatus::Open => Some(names.of(id)),
            _ => None,
        },
        verification,
        sender_checks: SenderChecksView::of(&found),
        merged_into,
        account: matched,
        preview,
        history: history(&names, &found),
        open: found.status == TicketStatus::Open,
        notice: None,
        receipt: None,
        grace,
        error: None,
    })
}

fn grace_view(
    names: &StaffNames,
    r: &crate::models::deletion_request::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<GraceView> {
    let purge_after = r.purge_after?;
    let by = match r.cancelled_by.as_deref().and_then(|b| b.strip_prefix("agent:")) {
        Some(id) => id
            .parse()
            .map_or_else(|_| format!("staff #{id}"), |id| names.of(id)),
        None => "the account holder, from the emailed link".to_owned(),
    };
    Some(GraceView {
        purge_after: when(purge_after),
        cancellable: r.status == DeletionStatus::Scheduled && now < purge_after,
        cancelled: r.cancelled_at.map(|at| match &r.cancel_reason {
            Some(why) => format!("{} by {by}: {why}", when(at)),
            None => format!("{} by {by}", when(at)),
        }),
    })
}

async fn matched_account(state: &AppState, a: &account::Model) -> AppResult<MatchedAccount> {
    let last_login = sessions::last_login(&state.db, a.id).await?;
    Ok(MatchedAccount {
        id: a.id,
        vsee_id: a.vsee_id.clone(),
        plan: a.plan.as_str().to_owned(),
        status: match a.status {
            AccountStatus::Active => "active",
            AccountStatus::Deleting => "being deleted",
        }
        .to_owned(),
        created_at: when(a.created_at),
        last_login: last_login.map_or_else(|| "no session kept".to_owned(), when),
        subscription: match (a.plan, a.subscription_cancelled_at) {
            (Plan::Free, _) => "none (free plan)".to_owned(),
            (_, Some(at)) => format!("cancelled {}: billing stopped", when(at)),
            (_, None) => "active: billed until a termination is approved".to_owned(),
        },
    })
}

fn history(names: &StaffNames, t: &ticket::Model) -> Vec<HistoryLine> {
    let mut lines = vec![HistoryLine {
        at: when(t.received_at),
        what: format!("received by {}", t.door.as_str()),
    }];
    if let Some(at) = t.verified_at {
        let who = match t.verified_by {
            Some(by) => format!("verified by {}", names.of(by)),
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
            what: format!("first approval by {}", names.of(by)),
        });
    }
    if let (Some(at), Some(by)) = (t.extended_at, t.extended_by) {
        lines.push(HistoryLine {
            at: when(at),
            what: format!(
                "deadline extended to {} by {}: {}",
                when(t.due_at),
                names.of(by),
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
            what: format!("{} by {}{why}", t.status.as_str(), names.of(by)),
        });
    }
    lines
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
