//! `/staff/accounts` (administrators): bulk deletion of dormant accounts, previewed before it
//! runs (as Django admin does before "delete selected") and followed while the workers carry
//! it out; and lifting one re-registration cool-off.

use chrono::{NaiveDate, Utc};
use poem::{
    Response, handler,
    web::{CsrfToken, Data, Query},
};
use serde::Deserialize;

use super::{
    super::{error_page, failed, ok},
    views::{AccountsPage, BulkPreviewView, BulkRunView, DormantRow, Nav},
};
use crate::{
    error::{AppError, AppResult},
    http::{
        api::auth::Admin,
        extract::{CsrfForm, StaffPage},
    },
    services::{bulk, reuse, staff::StaffSession},
    state::AppState,
};

fn day(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn since_of(raw: &str) -> AppResult<chrono::DateTime<Utc>> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| AppError::InvalidInput("the date is YYYY-MM-DD".into()))
}

async fn page(
    state: &AppState,
    me: &StaffSession,
    token: &CsrfToken,
    inactive_since: &str,
) -> AppResult<AccountsPage> {
    let preview = if inactive_since.trim().is_empty() {
        None
    } else {
        let since = since_of(inactive_since)?;
        let found = bulk::preview(state.env(), since, 20).await?;
        Some(BulkPreviewView {
            inactive_since: day(since),
            count: found.count,
            rows: found
                .sample
                .iter()
                .map(|a| DormantRow {
                    id: a.id,
                    vsee_id: a.vsee_id.clone(),
                    created_at: day(a.created_at),
                    last_login: a.last_login_at.map_or_else(|| "never recorded".to_owned(), day),
                })
                .collect(),
        })
    };
    let runs = bulk::runs(&state.db.conn, 20)
        .await?
        .into_iter()
        .map(|r| BulkRunView {
            started_at: r.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            inactive_since: day(r.inactive_since),
            staff_id: r.staff_id,
            requested: r.requested,
            skipped: r.skipped,
            finished: r.finished_at.is_some(),
        })
        .collect();
    Ok(AccountsPage {
        csrf_token: token.0.clone(),
        staff_name: me.staff.name.clone(),
        nav: Nav::of(me.staff.role),
        inactive_since: inactive_since.trim().to_owned(),
        preview,
        runs,
        notice: None,
        error: None,
    })
}

#[derive(Deserialize, Default)]
pub(super) struct AccountsQuery {
    #[serde(default)]
    inactive_since: String,
}

#[handler]
pub(super) async fn show(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Admin>,
    token: &CsrfToken,
    Query(q): Query<AccountsQuery>,
) -> Response {
    match page(&state, &me, token, &q.inactive_since).await {
        Ok(p) => ok(&p),
        Err(e) => match page(&state, &me, token, "").await {
            Ok(mut p) => {
                p.error = Some(e.to_string());
                failed(&e, &p)
            }
            Err(e) => error_page(&e),
        },
    }
}

#[derive(Deserialize)]
pub(super) struct BulkForm {
    #[serde(default)]
    inactive_since: String,
    /// The number of accounts, typed again.
    #[serde(default)]
    confirm: String,
}

#[handler]
pub(super) async fn start_bulk(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Admin>,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<BulkForm>,
) -> Response {
    let outcome = async {
        let since = since_of(&form.inactive_since)?;
        let count = bulk::preview(state.env(), since, 0).await?.count;
        if form.confirm.trim() != count.to_string() {
            return Err(AppError::InvalidInput(format!(
                "type the number of accounts, {count}, to confirm"
            )));
        }
        bulk::start(state.env(), me.staff.id, since, true).await?;
        Ok(count)
    }
    .await;
    after(&state, &me, token, &form.inactive_since, outcome.map(|count| {
        format!("Started: {count} deletion(s), each with its own request, receipt and ledger entry. Progress shows below.")
    }))
    .await
}

#[derive(Deserialize)]
pub(super) struct LiftForm {
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    reason: String,
}

#[handler]
pub(super) async fn lift_block(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Admin>,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<LiftForm>,
) -> Response {
    let outcome = reuse::lift(
        state.env(),
        &state.keys,
        me.staff.id,
        &form.identifier,
        &form.reason,
    )
    .await
    .map(|lifted| {
        format!(
            "Lifted: it can sign up again (the cool-off ran until {}).",
            day(lifted.until)
        )
    });
    after(&state, &me, token, "", outcome).await
}

async fn after(
    state: &AppState,
    me: &StaffSession,
    token: &CsrfToken,
    inactive_since: &str,
    outcome: AppResult<String>,
) -> Response {
    let shown = if outcome.is_ok() { "" } else { inactive_since };
    match (page(state, me, token, shown).await, outcome) {
        (Ok(mut p), Ok(notice)) => {
            p.notice = Some(notice);
            ok(&p)
        }
        (Ok(mut p), Err(e)) => {
            p.error = Some(e.to_string());
            failed(&e, &p)
        }
        (Err(e), _) => error_page(&e),
    }
}
