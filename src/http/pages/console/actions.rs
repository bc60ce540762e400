//! What agents do on a ticket's page: decide it (verify, approve, reject) and work it
//! (assign, note, ask the requester, extend the deadline). Each is a CSRF-checked form that
//! answers with the ticket's page, its notice or the error it met.

use poem::{
    Response, handler,
    web::{CsrfToken, Data, Path},
};
use serde::Deserialize;

use super::{
    super::{error_page, failed, ok},
    ticket_page::ticket_page,
};
use crate::{
    domain::TicketReference,
    error::{AppError, AppResult},
    http::{
        api::auth::Agent,
        extract::{CsrfForm, StaffPage},
    },
    services::{
        staff as staff_service,
        tickets::{self, Approval},
    },
    state::AppState,
};

#[derive(Deserialize)]
pub(super) struct ReasonForm {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub(super) struct NoFields {}

/// The ticket page after a decision: its notice, or the error it met and its status.
async fn after(
    state: &AppState,
    me: &staff_service::StaffSession,
    token: &CsrfToken,
    id: i64,
    outcome: AppResult<(String, Option<String>)>,
) -> Response {
    let page = ticket_page(state, me, token, id).await;
    match (page, outcome) {
        (Ok(mut page), Ok((notice, receipt))) => {
            page.notice = Some(notice);
            page.receipt = receipt;
            ok(&page)
        }
        (Ok(mut page), Err(e)) => {
            page.error = Some(e.to_string());
            failed(&e, &page)
        }
        (Err(e), _) => error_page(&e),
    }
}

#[handler]
pub(super) async fn verify(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Response {
    let outcome = tickets::verify(state.env(), &state.keys, me.staff.id, id, &form.reason)
        .await
        .map(|_| ("Verification recorded.".to_owned(), None));
    after(&state, &me, token, id, outcome).await
}

#[handler]
pub(super) async fn approve(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Response {
    let two_person = state.settings.support.two_person_approval;
    let outcome = tickets::approve(
        state.env(),
        &state.keys,
        me.staff.id,
        id,
        two_person,
        state.grace(),
    )
    .await
    .map(|approval| match approval {
        Approval::Started(receipt) => (
            "Approved: the account's deletion is under way.".to_owned(),
            Some(receipt.receipt.expose().to_owned()),
        ),
        Approval::AwaitingSecond(_) => (
            "Your approval is recorded; a second, different agent must approve too.".to_owned(),
            None,
        ),
    });
    after(&state, &me, token, id, outcome).await
}

#[handler]
pub(super) async fn cancel_deletion(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Response {
    let outcome = tickets::cancel_deletion(state.env(), &state.keys, me.staff.id, id, &form.reason)
        .await
        .map(|_| {
            (
                "Deletion cancelled: the account can log in again.".to_owned(),
                None,
            )
        });
    after(&state, &me, token, id, outcome).await
}

#[handler]
pub(super) async fn reject(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Response {
    let outcome = tickets::reject(state.env(), &state.keys, me.staff.id, id, &form.reason)
        .await
        .map(|_| ("Rejected.".to_owned(), None));
    after(&state, &me, token, id, outcome).await
}

#[derive(Deserialize)]
pub(super) struct AssignForm {
    /// "me", or empty for nobody.
    #[serde(default)]
    to: String,
}

#[handler]
pub(super) async fn assign(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<AssignForm>,
) -> Response {
    let (assignee, notice) = match form.to.as_str() {
        "me" => (Some(me.staff.id), "Assigned to you."),
        _ => (None, "Unassigned."),
    };
    let outcome = tickets::assign(state.env(), &state.keys, me.staff.id, id, assignee)
        .await
        .map(|_| (notice.to_owned(), None));
    after(&state, &me, token, id, outcome).await
}

#[derive(Deserialize)]
pub(super) struct NoteForm {
    #[serde(default)]
    body: String,
}

#[handler]
pub(super) async fn note(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> Response {
    let outcome = tickets::add_note(state.env(), &state.keys, me.staff.id, id, &form.body)
        .await
        .map(|_| ("Note added.".to_owned(), None));
    after(&state, &me, token, id, outcome).await
}

#[handler]
pub(super) async fn ask(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> Response {
    let outcome = tickets::ask(state.env(), &state.keys, me.staff.id, id, &form.body)
        .await
        .map(|_| {
            (
                "Question sent to the requester; their reply will appear here.".to_owned(),
                None,
            )
        });
    after(&state, &me, token, id, outcome).await
}

#[derive(Deserialize)]
pub(super) struct ExtensionForm {
    #[serde(default)]
    days: String,
    #[serde(default)]
    reason: String,
}

#[handler]
pub(super) async fn extend(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ExtensionForm>,
) -> Response {
    let outcome = async {
        let days = form.days.trim().parse::<u32>().map_err(|_| {
            crate::error::AppError::InvalidInput(format!(
                "days is a number from 1 to {}",
                tickets::MAX_EXTENSION_DAYS
            ))
        })?;
        tickets::extend(state.env(), &state.keys, me.staff.id, id, days, &form.reason).await
    }
    .await
    .map(|_| ("Deadline extended; the requester is told why.".to_owned(), None));
    after(&state, &me, token, id, outcome).await
}

#[derive(Deserialize)]
pub(super) struct LinkForm {
    #[serde(default)]
    vsee_id: String,
    #[serde(default)]
    reason: String,
}

#[handler]
pub(super) async fn link(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<LinkForm>,
) -> Response {
    let outcome = tickets::link(
        state.env(),
        &state.keys,
        me.staff.id,
        id,
        &form.vsee_id,
        &form.reason,
    )
    .await
    .map(|_| {
        (
            "Matched; the account's owner is asked to confirm.".to_owned(),
            None,
        )
    });
    after(&state, &me, token, id, outcome).await
}

#[handler]
pub(super) async fn close(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<ReasonForm>,
) -> Response {
    let outcome = tickets::close(state.env(), &state.keys, me.staff.id, id, &form.reason)
        .await
        .map(|_| ("Closed.".to_owned(), None));
    after(&state, &me, token, id, outcome).await
}

#[derive(Deserialize)]
pub(super) struct MergeForm {
    #[serde(default)]
    into: String,
    #[serde(default)]
    reason: String,
}

#[handler]
pub(super) async fn merge(
    state: Data<&AppState>,
    StaffPage(me, ..): StaffPage<Agent>,
    token: &CsrfToken,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<MergeForm>,
) -> Response {
    let outcome = async {
        let into = TicketReference::parse(&form.into).map_err(|e| AppError::InvalidInput(e.to_string()))?;
        tickets::merge(state.env(), &state.keys, me.staff.id, id, &into, &form.reason).await
    }
    .await
    .map(|kept| {
        (
            format!("Merged into {}: its messages are there now.", kept.reference),
            None,
        )
    });
    after(&state, &me, token, id, outcome).await
}
