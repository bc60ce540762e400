//! The link a ticket's confirmation email carries: GET shows what would be confirmed and a
//! button, and changes nothing (mail scanners open links); POST confirms.

use poem::{
    Response, handler,
    web::{CsrfToken, Data, Path},
};
use serde::Deserialize;

use super::{
    failed, ok,
    views::{TicketVerifyPage, TicketView},
};
use crate::{error::AppError, http::extract::CsrfForm, models::ticket, services::tickets, state::AppState};

fn page(csrf: &CsrfToken, token: String, ticket: &ticket::Model, state: &'static str) -> TicketVerifyPage {
    TicketVerifyPage {
        csrf_token: csrf.0.clone(),
        token,
        ticket: TicketView::of(ticket),
        state,
        error: None,
    }
}

fn state_of(ticket: &ticket::Model, now: chrono::DateTime<chrono::Utc>) -> &'static str {
    if ticket.verified_at.is_some() {
        "confirmed"
    } else if tickets::link_is_live(ticket, now) {
        "to_confirm"
    } else {
        "expired"
    }
}

#[handler]
pub(super) async fn show(state: Data<&AppState>, csrf: &CsrfToken, Path(token): Path<String>) -> Response {
    match tickets::by_link(state.env(), &token).await {
        Ok(ticket) => ok(&page(csrf, token, &ticket, state_of(&ticket, state.clock.now()))),
        Err(e) => super::error_page(&e),
    }
}

/// The form carries nothing but its CSRF token.
#[derive(Deserialize)]
pub(super) struct ConfirmForm {}

#[handler]
pub(super) async fn confirm(
    state: Data<&AppState>,
    csrf: &CsrfToken,
    Path(token): Path<String>,
    CsrfForm(ConfirmForm {}): CsrfForm<ConfirmForm>,
) -> Response {
    match tickets::confirm_by_owner(state.env(), &state.keys, &token).await {
        Ok(ticket) => ok(&page(csrf, token, &ticket, "confirmed")),
        Err(e @ AppError::Conflict(_)) => match tickets::by_link(state.env(), &token).await {
            Ok(ticket) => failed(&e, &page(csrf, token, &ticket, "expired")),
            Err(other) => super::error_page(&other),
        },
        Err(e) => super::error_page(&e),
    }
}
