//! Logging in and out, and signing up.

use poem::{
    Response, handler,
    web::{CsrfToken, Data, cookie::CookieJar},
};
use serde::Deserialize;

use super::{
    failed, ok, see_other,
    views::{LoginPage, SignupPage},
};
use crate::{
    http::{
        extract::{ClientAddress, CsrfForm},
        session,
    },
    services::{
        accounts::{self, NewAccount},
        sessions,
    },
    state::AppState,
};

#[handler]
pub(super) async fn home(state: Data<&AppState>, jar: &CookieJar) -> Response {
    match session::current_optional(&state, jar).await {
        Ok(Some(_)) => see_other("/account/profile"),
        Ok(None) => see_other("/login"),
        Err(e) => super::error_page(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    vsee_id: String,
    #[serde(default)]
    password: String,
}

#[handler]
pub(super) fn login_form(token: &CsrfToken) -> Response {
    ok(&LoginPage {
        csrf_token: token.0.clone(),
        vsee_id: String::new(),
        error: None,
        notice: None,
    })
}

#[handler]
pub(super) async fn login(
    state: Data<&AppState>,
    jar: &CookieJar,
    address: ClientAddress,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Response {
    let attempt = address.attempt(&state);
    match sessions::log_in(
        state.env(),
        attempt,
        state.session_ttl(),
        &form.vsee_id,
        &form.password,
    )
    .await
    {
        Ok((_, session_token)) => {
            session::set(&state, jar, &session_token);
            see_other("/account/profile")
        }
        Err(e) => failed(
            &e,
            &LoginPage {
                csrf_token: token.0.clone(),
                vsee_id: form.vsee_id.clone(),
                error: Some(e.to_string()),
                notice: None,
            },
        ),
    }
}

#[derive(Deserialize, Default)]
pub(super) struct SignupForm {
    #[serde(default)]
    vsee_id: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

fn signup_page(token: &CsrfToken, form: &SignupForm, error: Option<String>) -> SignupPage {
    SignupPage {
        csrf_token: token.0.clone(),
        vsee_id: form.vsee_id.clone(),
        email: form.email.clone(),
        first_name: form.first_name.clone(),
        last_name: form.last_name.clone(),
        error,
    }
}

#[handler]
pub(super) fn signup_form(token: &CsrfToken) -> Response {
    ok(&signup_page(token, &SignupForm::default(), None))
}

#[handler]
pub(super) async fn signup(
    state: Data<&AppState>,
    jar: &CookieJar,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<SignupForm>,
) -> Response {
    let result = async {
        let new = NewAccount::parse_free(
            &form.vsee_id,
            &form.email,
            &form.password,
            &form.first_name,
            &form.last_name,
        )?;
        let account = accounts::register(state.env(), &state.keys, new).await?;
        sessions::start(&state.db, state.clock.as_ref(), account.id, state.session_ttl()).await
    }
    .await;
    match result {
        Ok(session_token) => {
            session::set(&state, jar, &session_token);
            see_other("/account/profile")
        }
        Err(e) => failed(&e, &signup_page(token, &form, Some(e.to_string()))),
    }
}

#[derive(Deserialize)]
pub(super) struct Nothing {}

#[handler]
pub(super) async fn logout(state: Data<&AppState>, jar: &CookieJar, _form: CsrfForm<Nothing>) -> Response {
    match session::end(&state, jar).await {
        Ok(()) => see_other("/login"),
        Err(e) => super::error_page(&e),
    }
}
