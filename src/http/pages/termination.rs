//! Paid accounts at DELETE MY ACCOUNT: why self-service is not offered, and the "Request
//! termination" form that sends support a verified request (or the request already made).

use chrono::{DateTime, Utc};
use poem::{
    Response, handler,
    http::StatusCode,
    web::{CsrfToken, Data},
};
use serde::Deserialize;

use super::{
    failed, render, see_other,
    views::{PaidAccountPage, TicketView},
};
use crate::{
    domain::TicketStatus,
    error::{AppError, AppResult},
    http::extract::{ClientAddress, CsrfForm, LoggedIn},
    models::ticket,
    services::{
        sessions::{self, CurrentSession},
        tickets::{self, AppDoor},
    },
    state::AppState,
};

pub(super) fn day(t: DateTime<Utc>) -> String {
    t.format("%-d %B %Y").to_string()
}

impl TicketView {
    pub(super) fn of(t: &ticket::Model) -> Self {
        Self {
            reference: t.reference.clone(),
            status: t.status.as_str().to_owned(),
            received_at: day(t.received_at),
            due_at: day(t.due_at),
        }
    }
}

/// The page, with the account's newest request and `error` above the form.
pub(super) async fn paid_page(
    state: &AppState,
    current: &CurrentSession,
    csrf: &CsrfToken,
    needs_password: bool,
    error: Option<String>,
) -> AppResult<PaidAccountPage> {
    let latest = tickets::latest_for_account(state.env(), current.account.id).await?;
    Ok(PaidAccountPage {
        support_email: state.settings.support.email.clone(),
        csrf_token: csrf.0.clone(),
        needs_password,
        can_request: latest.as_ref().is_none_or(|t| t.status != TicketStatus::Open),
        request: latest.as_ref().map(TicketView::of),
        error,
    })
}

#[derive(Deserialize)]
pub(super) struct TerminationForm {
    #[serde(default)]
    email: String,
    password: Option<String>,
}

#[handler]
pub(super) async fn request(
    state: Data<&AppState>,
    LoggedIn(current): LoggedIn,
    address: ClientAddress,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<TerminationForm>,
) -> Response {
    let result = async {
        let mut current = current.clone();
        if let Some(password) = form.password.as_deref().filter(|p| !p.is_empty()) {
            // Proven for this request only, as for a deletion.
            sessions::check_password(state.env(), address.attempt(&state), &current, password).await?;
            current.session.authenticated_at = state.clock.now();
        }
        let rules = AppDoor {
            response_days: state.settings.support.response_days,
            reauth_window: state.reauth_window(),
        };
        tickets::request_in_app(state.env(), rules, &current, &form.email).await
    }
    .await;
    let err = match result {
        // The page shows the request now open.
        Ok(_) => return see_other("/account/delete"),
        Err(e) => e,
    };
    let needs_password = matches!(
        err,
        AppError::ReauthenticationRequired | AppError::InvalidCredentials | AppError::RateLimited { .. }
    ) || current.login_is_older_than(state.clock.now(), state.reauth_window());
    match paid_page(&state, &current, token, needs_password, Some(err.to_string())).await {
        Ok(page) => failed(&err, &page),
        Err(e) => super::error_page(&e),
    }
}

/// The page for a paid account, or the generic error page when it cannot be read.
pub(super) async fn show(
    state: &AppState,
    current: &CurrentSession,
    csrf: &CsrfToken,
    status: StatusCode,
) -> Response {
    let needs_password = current.login_is_older_than(state.clock.now(), state.reauth_window());
    match paid_page(state, current, csrf, needs_password, None).await {
        Ok(page) => render(status, &page),
        Err(e) => super::error_page(&e),
    }
}
