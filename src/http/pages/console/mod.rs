//! The staff console (askama + htmx 2, no JS build step): log-in, the ticket queue, one ticket
//! and the decisions on it. Every page takes `StaffPage<R>`, every form is a `CsrfForm`; the
//! pages work without JavaScript, and htmx only saves reloads (the queue's filters).

mod actions;
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
        .at("/staff", get(to_queue))
        .at("/staff/login", get(login_form).post(login))
        .at("/staff/logout", poem::post(logout))
        .at("/staff/tickets", get(tickets::queue))
        .at("/staff/tickets/:id", get(ticket_page::show))
        .at("/staff/tickets/:id/verification", poem::post(actions::verify))
        .at("/staff/tickets/:id/approval", poem::post(actions::approve))
        .at("/staff/tickets/:id/rejection", poem::post(actions::reject))
        .at("/staff/tickets/:id/assignment", poem::post(actions::assign))
        .at("/staff/tickets/:id/notes", poem::post(actions::note))
        .at("/staff/tickets/:id/questions", poem::post(actions::ask))
        .at("/staff/tickets/:id/extension", poem::post(actions::extend))
        .at("/staff/tickets/:id/account", poem::post(actions::link))
        .at("/staff/tickets/:id/closure", poem::post(actions::close))
        .at("/staff/tickets/:id/merge", poem::post(actions::merge))
}

#[handler]
fn to_queue() -> Response {
    see_other("/staff/tickets")
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
        Ok((_, session_token)) => {
            session::set_staff(&state, jar, &session_token);
            see_other("/staff/tickets")
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
