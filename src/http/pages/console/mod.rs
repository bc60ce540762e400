//! The staff console (askama + htmx 2, no JS build step): log-in, the ticket queue, one ticket
//! and the decisions on it; the auditor's ledger, entry, lookup and reports pages. Every page
//! takes `StaffPage<R>`, every form is a `CsrfForm`; the pages work without JavaScript, and
//! htmx only saves reloads (the filters).

mod accounts;
mod actions;
mod charts;
mod ledger;
mod ledger_views;
mod reports;
mod ticket_page;
mod tickets;
mod views;

use poem::{
    Response, Route, get, handler,
    web::{CsrfToken, Data, cookie::CookieJar},
};
use serde::Deserialize;

use super::{failed, ok, see_other};
use crate::{
    http::{
        extract::{ClientAddress, CsrfForm},
        session,
    },
    services::staff as staff_service,
    state::AppState,
};
use views::StaffLoginPage;

pub(super) fn routes(route: Route) -> Route {
    route
        .at("/staff", get(start))
        .at("/staff/login", get(login_form).post(login))
        .at("/staff/logout", poem::post(logout))
        .at("/staff/tickets", get(tickets::queue))
        .at("/staff/tickets/:id", get(ticket_page::show))
        .at("/staff/tickets/:id/verification", poem::post(actions::verify))
        .at("/staff/tickets/:id/approval", poem::post(actions::approve))
        .at("/staff/tickets/:id/rejection", poem::post(actions::reject))
        .at(
            "/staff/tickets/:id/deletion-cancellation",
            poem::post(actions::cancel_deletion),
        )
        .at("/staff/tickets/:id/assignment", poem::post(actions::assign))
        .at("/staff/tickets/:id/notes", poem::post(actions::note))
        .at("/staff/tickets/:id/questions", poem::post(actions::ask))
        .at("/staff/tickets/:id/extension", poem::post(actions::extend))
        .at("/staff/tickets/:id/account", poem::post(actions::link))
        .at("/staff/tickets/:id/closure", poem::post(actions::close))
        .at("/staff/tickets/:id/merge", poem::post(actions::merge))
        .at("/staff/ledger", get(ledger::list))
        .at("/staff/ledger/:seq", get(ledger::entry))
        .at("/staff/lookup", get(ledger::lookup_form).post(ledger::lookup))
        .at("/staff/reports", get(reports::show))
        .at("/staff/accounts", get(accounts::show))
        .at("/staff/accounts/bulk-deletions", poem::post(accounts::start_bulk))
        .at(
            "/staff/accounts/reuse-blocks/lift",
            poem::post(accounts::lift_block),
        )
}

/// Where a staff member starts: agents (and admins) at the queue, auditors at the ledger.
fn home(role: crate::domain::StaffRole) -> &'static str {
    if role.grants(crate::domain::StaffRole::Agent) {
        "/staff/tickets"
    } else {
        "/staff/ledger"
    }
}

#[handler]
async fn start(state: Data<&AppState>, jar: &CookieJar) -> Response {
    let session = match jar.get(staff_service::COOKIE) {
        Some(cookie) => staff_service::resolve(state.env(), cookie.value_str())
            .await
            .ok()
            .flatten(),
        None => None,
    };
    match session {
        Some(s) => see_other(home(s.staff.role)),
        None => see_other("/staff/login"),
    }
}

#[handler]
fn login_form(token: &CsrfToken) -> Response {
    ok(&StaffLoginPage {
        csrf_token: token.0.clone(),
        email: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[handler]
async fn login(
    state: Data<&AppState>,
    jar: &CookieJar,
    address: ClientAddress,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Response {
    let result = staff_service::log_in(
        state.env(),
        address.attempt(&state),
        state.settings.security.staff_session_ttl(),
        &form.email,
        &form.password,
    )
    .await;
    match result {
        Ok((staff, session_token)) => {
            session::set_staff(&state, jar, &session_token);
            see_other(home(staff.role))
        }
        Err(e) => failed(
            &e,
            &StaffLoginPage {
                csrf_token: token.0.clone(),
                email: form.email.clone(),
                error: Some(e.to_string()),
            },
        ),
    }
}

/// The form carries nothing but its CSRF token.
#[derive(Deserialize)]
struct NoFields {}

#[handler]
async fn logout(
    state: Data<&AppState>,
    jar: &CookieJar,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Response {
    match session::end_staff(&state, jar).await {
        Ok(()) => see_other("/staff/login"),
        Err(e) => super::error_page(&e),
    }
}
