//! The Account Profile page and its edit forms.

use poem::{
    Response, handler,
    web::{CsrfToken, Data, Query},
};
use serde::Deserialize;

use super::{
    failed, ok, see_other,
    views::{ProfilePage, TicketView},
};
use crate::{
    domain::{Email, Password, PersonName},
    error::AppResult,
    http::extract::{ClientAddress, CsrfForm, LoggedIn},
    models::account,
    services::{
        profile::{self, AccountChange},
        tickets,
    },
    state::AppState,
};

fn profile_page(
    state: &AppState,
    token: &CsrfToken,
    account: &account::Model,
    notice: Option<String>,
    error: Option<String>,
) -> ProfilePage {
    ProfilePage {
        csrf_token: token.0.clone(),
        vsee_id: account.vsee_id.clone(),
        email: account.email.clone(),
        first_name: account.first_name.clone(),
        last_name: account.last_name.clone(),
        offline_notification_email: account.offline_notification_email.clone().unwrap_or_default(),
        offline_notification_enabled: account.offline_notification_enabled,
        reauth_minutes: state.settings.security.reauth_window_minutes,
        termination: None,
        notice,
        error,
    }
}

#[derive(Deserialize)]
pub(super) struct Notice {
    saved: Option<String>,
}

#[handler]
pub(super) async fn show(
    state: Data<&AppState>,
    LoggedIn(current): LoggedIn,
    token: &CsrfToken,
    Query(q): Query<Notice>,
) -> Response {
    let notice = q.saved.map(|what| match what.as_str() {
        "email" => "Your email has been changed.".to_owned(),
        "password" => "Your password has been changed.".to_owned(),
        _ => "Your profile has been saved.".to_owned(),
    });
    let mut page = profile_page(&state, token, &current.account, notice, None);
    match tickets::latest_for_account(state.env(), current.account.id).await {
        Ok(latest) => page.termination = latest.as_ref().map(TicketView::of),
        Err(e) => return super::error_page(&e),
    }
    ok(&page)
}

#[derive(Deserialize)]
pub(super) struct ProfileForm {
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    offline_notification_email: String,
    /// Browsers send a checked box as "on" and omit an unchecked one.
    offline_notification_enabled: Option<String>,
    current_password: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CredentialForm {
    #[serde(default)]
    current_password: String,
    email: Option<String>,
    new_password: Option<String>,
}

/// Applies a change from a profile form: redirect on success, the profile with the error
/// otherwise.
async fn apply(
    state: &AppState,
    LoggedIn(current): LoggedIn,
    address: &ClientAddress,
    token: &CsrfToken,
    saved: &str,
    change: impl FnOnce() -> AppResult<(AccountChange, Option<String>)>,
) -> Response {
    let result = async {
        let (change, password) = change()?;
        profile::update(
            state.env(),
            &state.keys,
            address.attempt(state),
            state.reauth_window(),
            &current,
            change,
            password.as_deref(),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("/account/profile?saved={saved}")),
        Err(e) => failed(
            &e,
            &profile_page(state, token, &current.account, None, Some(e.to_string())),
        ),
    }
}

#[handler]
pub(super) async fn update(
    state: Data<&AppState>,
    current: LoggedIn,
    address: ClientAddress,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> Response {
    apply(&state, current, &address, token, "profile", || {
        let email = form.offline_notification_email.trim();
        Ok((
            AccountChange {
                first_name: Some(PersonName::parse(&form.first_name)?),
                last_name: Some(PersonName::parse(&form.last_name)?),
                offline_notification_email: Some(if email.is_empty() {
                    None
                } else {
                    Some(Email::parse(email)?)
                }),
                offline_notification_enabled: Some(form.offline_notification_enabled.is_some()),
                ..Default::default()
            },
            form.current_password.clone(),
        ))
    })
    .await
}

#[handler]
pub(super) async fn change_email(
    state: Data<&AppState>,
    current: LoggedIn,
    address: ClientAddress,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<CredentialForm>,
) -> Response {
    apply(&state, current, &address, token, "email", || {
        let email = Email::parse(form.email.as_deref().unwrap_or_default())?;
        Ok((
            AccountChange {
                email: Some(email),
                ..Default::default()
            },
            Some(form.current_password.clone()),
        ))
    })
    .await
}

#[handler]
pub(super) async fn change_password(
    state: Data<&AppState>,
    current: LoggedIn,
    address: ClientAddress,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<CredentialForm>,
) -> Response {
    apply(&state, current, &address, token, "password", || {
        let password = Password::parse(form.new_password.as_deref().unwrap_or_default())?;
        Ok((
            AccountChange {
                password: Some(password),
                ..Default::default()
            },
            Some(form.current_password.clone()),
        ))
    })
    .await
}
