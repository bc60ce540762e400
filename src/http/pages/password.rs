//! Forgot Password and the reset link.

use poem::{
    Response, handler,
    web::{CsrfToken, Data, Query},
};
use serde::Deserialize;

use super::{
    failed, ok,
    views::{ForgotPasswordPage, ResetPasswordPage},
};
use crate::{
    domain::Password,
    error::AppError,
    http::extract::{ClientAddress, CsrfForm},
    services::password_reset,
    state::AppState,
};

#[handler]
pub(super) fn forgot_form(token: &CsrfToken) -> Response {
    ok(&ForgotPasswordPage {
        csrf_token: token.0.clone(),
        sent: false,
        error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct ForgotForm {
    #[serde(default)]
    login: String,
}

#[handler]
pub(super) async fn forgot(
    state: Data<&AppState>,
    address: ClientAddress,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Response {
    let result = async {
        if form.login.trim().is_empty() {
            return Err(AppError::InvalidInput("type your VSee ID or email".into()));
        }
        password_reset::request(state.env(), &state.throttle, &form.login, address.as_str()).await
    }
    .await;
    let page = |sent, error| ForgotPasswordPage {
        csrf_token: token.0.clone(),
        sent,
        error,
    };
    match result {
        Ok(()) => ok(&page(true, None)),
        Err(e) => failed(&e, &page(false, Some(e.to_string()))),
    }
}

#[derive(Deserialize)]
pub(super) struct ResetQuery {
    #[serde(default)]
    token: String,
}

#[handler]
pub(super) fn reset_form(token: &CsrfToken, Query(q): Query<ResetQuery>) -> Response {
    ok(&ResetPasswordPage {
        csrf_token: token.0.clone(),
        token: q.token,
        done: false,
        error: None,
    })
}

#[derive(Deserialize)]
pub(super) struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

#[handler]
pub(super) async fn reset(
    state: Data<&AppState>,
    token: &CsrfToken,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Response {
    let result = async {
        let password = Password::parse(&form.new_password)?;
        password_reset::reset(state.env(), &form.token, &password).await
    }
    .await;
    let page = |done, error| ResetPasswordPage {
        csrf_token: token.0.clone(),
        token: form.token.clone(),
        done,
        error,
    };
    match result {
        Ok(()) => ok(&page(true, None)),
        Err(e) => failed(&e, &page(false, Some(e.to_string()))),
    }
}
