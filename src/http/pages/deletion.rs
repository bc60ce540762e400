//! DELETE MY ACCOUNT: the warning page, the confirmation, and the status page a receipt
//! links to.

use poem::{
    Response, handler,
    http::StatusCode,
    web::{CsrfToken, Data, Path, cookie::CookieJar},
};
use serde::Deserialize;

use super::{
    failed, ok,
    views::{DeleteWarningPage, DeletedPage, DeletionCancelPage, DeletionStatusPage, StepView},
};
use crate::{
    domain::{Channel, DeletionStatus, Plan},
    error::AppError,
    http::{
        extract::{ClientAddress, CsrfForm, LoggedIn},
        self_service, session,
    },
    services::{
        accounts,
        deletion::{self, grace},
        sessions,
    },
    state::AppState,
};

fn needs_password(state: &AppState, current: &sessions::CurrentSession) -> bool {
    current.login_is_older_than(state.clock.now(), state.reauth_window())
}

#[handler]
pub(super) async fn warning(
    state: Data<&AppState>,
    LoggedIn(current): LoggedIn,
    token: &CsrfToken,
) -> Response {
    if accounts::plan_of(&current.account) == Plan::Paid {
        return super::termination::show(&state, &current, token, StatusCode::OK).await;
    }
    ok(&DeleteWarningPage {
        csrf_token: token.0.clone(),
        needs_password: needs_password(&state, &current),
        error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    #[serde(default)]
    email: String,
    password: Option<String>,
}

#[handler]
pub(super) async fn confirm(
    state: Data<&AppState>,
    jar: &CookieJar,
    LoggedIn(current): LoggedIn,
    address: ClientAddress,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Response {
    let result = async {
        let mut current = current.clone();
        if let Some(password) = form.password.as_deref().filter(|p| !p.is_empty()) {
            // Proven for this request only: if the deletion is refused, nothing is recorded.
            sessions::check_password(state.env(), address.attempt(&state), &current, password).await?;
            current.session.authenticated_at = state.clock.now();
        }
        deletion::request_by_account_holder(
            state.env(),
            &state.keys,
            self_service(&state),
            &current,
            &form.email,
            Channel::Web,
        )
        .await
    }
    .await;
    match result {
        Ok(receipt) => {
            session::clear(&state, jar);
            ok(&DeletedPage {
                receipt_id: receipt.receipt.expose().to_owned(),
                purge_after: receipt.purge_after.map(display_time),
            })
        }
        Err(AppError::PaidAccount { .. }) => {
            super::termination::show(&state, &current, token, StatusCode::FORBIDDEN).await
        }
        Err(e) => failed(
            &e,
            &DeleteWarningPage {
                csrf_token: token.0.clone(),
                needs_password: matches!(
                    e,
                    AppError::ReauthenticationRequired
                        | AppError::InvalidCredentials
                        | AppError::RateLimited { .. }
                ) || needs_password(&state, &current),
                error: Some(e.to_string()),
            },
        ),
    }
}

fn display_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[handler]
pub(super) async fn status(state: Data<&AppState>, Path(receipt): Path<String>) -> Response {
    let fmt = display_time;
    match deletion::by_receipt(&state.db, &receipt).await {
        Ok(view) => ok(&DeletionStatusPage {
            status: view.status.as_str().to_owned(),
            requested_at: fmt(view.requested_at),
            completed_at: view.completed_at.map(fmt),
            steps: view
                .steps
                .iter()
                .map(|s| StepView {
                    name: s.name.replace('_', " "),
                    status: s.status.to_owned(),
                    at: s.at.map(fmt),
                })
                .collect(),
            proof_url: (view.status == crate::domain::DeletionStatus::Completed)
                .then(|| format!("/api/v1/deletions/{receipt}/proof")),
            purge_after: view.purge_after.map(fmt),
            cancelled_at: view.cancelled_at.map(fmt),
        }),
        Err(e) => super::error_page(&e),
    }
}

/// The page behind the emailed cancel link: the date and a button while it can be cancelled.
#[handler]
pub(super) async fn cancel_form(
    state: Data<&AppState>,
    Path(link): Path<String>,
    token: &CsrfToken,
) -> Response {
    match grace::by_cancel_link(&state.db.conn, state.clock.now(), &link).await {
        Ok(scheduled) => ok(&cancel_page(&scheduled, token, link, None)),
        Err(e) => super::error_page(&e),
    }
}

#[handler]
pub(super) async fn cancel(
    state: Data<&AppState>,
    Path(link): Path<String>,
    token: &CsrfToken,
    CsrfForm(_): CsrfForm<serde_json::Value>,
) -> Response {
    match grace::cancel_by_link(state.env(), &state.keys, &link).await {
        Ok(cancelled) => ok(&cancel_page(&cancelled, token, link, None)),
        Err(e @ (AppError::GracePeriodOver | AppError::Conflict(_))) => {
            match grace::by_cancel_link(&state.db.conn, state.clock.now(), &link).await {
                Ok(now) => failed(&e, &cancel_page(&now, token, link, Some(e.to_string()))),
                Err(e) => super::error_page(&e),
            }
        }
        Err(e) => super::error_page(&e),
    }
}

fn cancel_page(
    scheduled: &grace::Scheduled,
    token: &CsrfToken,
    link: String,
    error: Option<String>,
) -> DeletionCancelPage {
    DeletionCancelPage {
        csrf_token: token.0.clone(),
        token: link,
        purge_after: display_time(scheduled.purge_after),
        state: if scheduled.cancellable {
            "scheduled"
        } else if scheduled.status == DeletionStatus::Cancelled {
            "cancelled"
        } else {
            "started"
        },
        error,
    }
}
