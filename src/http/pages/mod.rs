//! The user pages: the help article's screens, server-rendered. Every form carries a CSRF
//! token checked by the handler (poem's middleware only issues it).

mod views;

use askama::Template;
use poem::{
    IntoResponse, Response, Route, get, handler,
    http::StatusCode,
    web::{CsrfToken, CsrfVerifier, Data, Form, Html, Path, Query, Redirect, RemoteAddr, cookie::CookieJar},
};
use serde::Deserialize;

use crate::{
    domain::{Channel, Email, Password, PersonName, Plan},
    error::{AppError, AppResult},
    http::{
        api::error::{log_cause, status_of},
        client_address, session,
    },
    services::{
        accounts::{self, AccountChange, NewAccount},
        deletion, password_reset, sessions,
    },
    state::AppState,
};
use views::*;

pub fn routes() -> Route {
    Route::new()
        .at("/", get(home))
        .at("/login", get(login_form).post(login))
        .at("/signup", get(signup_form).post(signup))
        .at("/logout", poem::post(logout))
        .at("/account/profile", get(profile).post(update_profile))
        .at("/account/email", poem::post(change_email))
        .at("/account/password", poem::post(change_password))
        .at("/account/delete", get(delete_form).post(delete_account))
        .at("/deletions/:receipt", get(deletion_status))
        .at("/forgot-password", get(forgot_form).post(forgot))
        .at("/reset-password", get(reset_form).post(reset))
}

fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).with_status(status).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn ok<T: Template>(page: &T) -> Response {
    render(StatusCode::OK, page)
}

fn error_page(err: &AppError) -> Response {
    log_cause(err);
    let title = match err {
        AppError::NotFound => "Not found",
        AppError::CsrfInvalid => "Please try again",
        _ => "Something went wrong",
    };
    render(
        status_of(err),
        &ErrorPage {
            title: title.into(),
            message: err.to_string(),
        },
    )
}

fn see_other(to: &str) -> Response {
    Redirect::see_other(to).into_response()
}

fn check_csrf(verifier: &CsrfVerifier, token: &str) -> AppResult<()> {
    if verifier.is_valid(token) {
        Ok(())
    } else {
        Err(AppError::CsrfInvalid)
    }
}

/// Runs a page handler that needs a session; without one, the login page.
async fn logged_in(state: &AppState, jar: &CookieJar) -> Result<sessions::CurrentSession, Response> {
    match session::current(state, jar).await {
        Ok(s) => Ok(s),
        Err(AppError::Unauthenticated) => Err(see_other("/login")),
        Err(e) => Err(error_page(&e)),
    }
}

#[handler]
async fn home(state: Data<&AppState>, jar: &CookieJar) -> Response {
    match session::current_optional(&state, jar).await {
        Ok(Some(_)) => see_other("/account/profile"),
        Ok(None) => see_other("/login"),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    vsee_id: String,
    #[serde(default)]
    password: String,
}

#[handler]
fn login_form(token: &CsrfToken) -> Response {
    ok(&LoginPage {
        csrf_token: token.0.clone(),
        vsee_id: String::new(),
        error: None,
        notice: None,
    })
}

#[handler]
async fn login(
    state: Data<&AppState>,
    jar: &CookieJar,
    remote: &RemoteAddr,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(form): Form<LoginForm>,
) -> Response {
    let result = async {
        check_csrf(verifier, &form.csrf_token)?;
        sessions::log_in(
            &state,
            &form.vsee_id,
            &form.password,
            client_address(remote).as_deref(),
        )
        .await
    }
    .await;
    match result {
        Ok((_, session_token)) => {
            session::set(&state, jar, &session_token);
            see_other("/account/profile")
        }
        Err(e) => {
            log_cause(&e);
            render(
                status_of(&e),
                &LoginPage {
                    csrf_token: token.0.clone(),
                    vsee_id: form.vsee_id.clone(),
                    error: Some(e.to_string()),
                    notice: None,
                },
            )
        }
    }
}

#[derive(Deserialize, Default)]
struct SignupForm {
    #[serde(default)]
    csrf_token: String,
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
fn signup_form(token: &CsrfToken) -> Response {
    ok(&signup_page(token, &SignupForm::default(), None))
}

#[handler]
async fn signup(
    state: Data<&AppState>,
    jar: &CookieJar,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(form): Form<SignupForm>,
) -> Response {
    let result = async {
        check_csrf(verifier, &form.csrf_token)?;
        let new = NewAccount::parse_free(
            &form.vsee_id,
            &form.email,
            &form.password,
            &form.first_name,
            &form.last_name,
        )?;
        let account = accounts::create(&state.db, state.clock.as_ref(), new).await?;
        sessions::start(&state.db, state.clock.as_ref(), account.id, state.session_ttl()).await
    }
    .await;
    match result {
        Ok(session_token) => {
            session::set(&state, jar, &session_token);
            see_other("/account/profile")
        }
        Err(e) => {
            log_cause(&e);
            render(status_of(&e), &signup_page(token, &form, Some(e.to_string())))
        }
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

#[handler]
async fn logout(
    state: Data<&AppState>,
    jar: &CookieJar,
    verifier: &CsrfVerifier,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(e) = check_csrf(verifier, &form.csrf_token) {
        return error_page(&e);
    }
    match session::end(&state, jar).await {
        Ok(()) => see_other("/login"),
        Err(e) => error_page(&e),
    }
}

#[derive(Deserialize)]
struct Notice {
    saved: Option<String>,
}

fn profile_page(
    token: &CsrfToken,
    account: &crate::models::account::Model,
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
        notice,
        error,
    }
}

#[handler]
async fn profile(
    state: Data<&AppState>,
    jar: &CookieJar,
    token: &CsrfToken,
    Query(q): Query<Notice>,
) -> Response {
    let current = match logged_in(&state, jar).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let notice = q.saved.map(|what| match what.as_str() {
        "email" => "Your email has been changed.".to_owned(),
        "password" => "Your password has been changed.".to_owned(),
        _ => "Your profile has been saved.".to_owned(),
    });
    ok(&profile_page(token, &current.account, notice, None))
}

#[derive(Deserialize)]
struct ProfileForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    offline_notification_email: String,
    /// Browsers send a checked box as "on" and omit an unchecked one.
    offline_notification_enabled: Option<String>,
}

#[derive(Deserialize)]
struct CredentialForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    email: Option<String>,
    new_password: Option<String>,
}

/// Applies a change from a profile form: redirect on success, the profile with the error
/// otherwise.
async fn apply_change(
    state: &AppState,
    jar: &CookieJar,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    csrf_token: &str,
    saved: &str,
    change: impl FnOnce() -> AppResult<(AccountChange, Option<String>)>,
) -> Response {
    let current = match logged_in(state, jar).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = async {
        check_csrf(verifier, csrf_token)?;
        let (change, password) = change()?;
        accounts::update(
            &state.db,
            state.clock.as_ref(),
            current.account.id,
            change,
            password.as_deref(),
        )
        .await
    }
    .await;
    match result {
        Ok(_) => see_other(&format!("/account/profile?saved={saved}")),
        Err(e) => {
            log_cause(&e);
            render(
                status_of(&e),
                &profile_page(token, &current.account, None, Some(e.to_string())),
            )
        }
    }
}

#[handler]
async fn update_profile(
    state: Data<&AppState>,
    jar: &CookieJar,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(form): Form<ProfileForm>,
) -> Response {
    apply_change(&state, jar, token, verifier, &form.csrf_token, "profile", || {
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
            None,
        ))
    })
    .await
}

#[handler]
async fn change_email(
    state: Data<&AppState>,
    jar: &CookieJar,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(form): Form<CredentialForm>,
) -> Response {
    apply_change(&state, jar, token, verifier, &form.csrf_token, "email", || {
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
async fn change_password(
    state: Data<&AppState>,
    jar: &CookieJar,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(form): Form<CredentialForm>,
) -> Response {
    apply_change(&state, jar, token, verifier, &form.csrf_token, "password", || {
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

fn needs_password(state: &AppState, current: &sessions::CurrentSession) -> bool {
    current.login_is_older_than(state.clock.now(), state.reauth_window())
}

#[handler]
async fn delete_form(state: Data<&AppState>, jar: &CookieJar, token: &CsrfToken) -> Response {
    let current = match logged_in(&state, jar).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if accounts::plan_of(&current.account) == Plan::Paid {
        return ok(&PaidAccountPage {
            support_email: state.settings.support.email.clone(),
        });
    }
    ok(&DeleteWarningPage {
        csrf_token: token.0.clone(),
        needs_password: needs_password(&state, &current),
        error: None,
    })
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    password: Option<String>,
}

#[handler]
async fn delete_account(
    state: Data<&AppState>,
    jar: &CookieJar,
    remote: &RemoteAddr,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(form): Form<DeleteForm>,
) -> Response {
    let current = match logged_in(&state, jar).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let result = async {
        check_csrf(verifier, &form.csrf_token)?;
        let mut current = current.clone();
        if let Some(password) = form.password.as_deref().filter(|p| !p.is_empty()) {
            // Proven for this request only: if the deletion is refused, nothing is recorded.
            sessions::check_password(&state, &current, password, client_address(remote).as_deref()).await?;
            current.session.authenticated_at = state.clock.now();
        }
        deletion::request_by_account_holder(&state, &current, &form.email, Channel::Web).await
    }
    .await;
    match result {
        Ok(receipt) => {
            session::clear(&state, jar);
            ok(&DeletedPage {
                receipt_id: receipt.receipt.expose().to_owned(),
            })
        }
        Err(AppError::PaidAccount { support_email }) => {
            render(StatusCode::FORBIDDEN, &PaidAccountPage { support_email })
        }
        Err(e) => {
            log_cause(&e);
            render(
                status_of(&e),
                &DeleteWarningPage {
                    csrf_token: token.0.clone(),
                    needs_password: matches!(
                        e,
                        AppError::ReauthenticationRequired | AppError::InvalidCredentials
                    ) || needs_password(&state, &current),
                    error: Some(e.to_string()),
                },
            )
        }
    }
}

#[handler]
async fn deletion_status(state: Data<&AppState>, Path(receipt): Path<String>) -> Response {
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    match deletion::by_receipt(&state, &receipt).await {
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
        }),
        Err(e) => error_page(&e),
    }
}

#[handler]
fn forgot_form(token: &CsrfToken) -> Response {
    ok(&ForgotPasswordPage {
        csrf_token: token.0.clone(),
        sent: false,
        error: None,
    })
}

#[derive(Deserialize)]
struct ForgotForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    login: String,
}

#[handler]
async fn forgot(
    state: Data<&AppState>,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(form): Form<ForgotForm>,
) -> Response {
    let result = async {
        check_csrf(verifier, &form.csrf_token)?;
        if form.login.trim().is_empty() {
            return Err(AppError::InvalidInput("type your VSee ID or email".into()));
        }
        password_reset::request(&state, &form.login).await
    }
    .await;
    match result {
        Ok(()) => ok(&ForgotPasswordPage {
            csrf_token: token.0.clone(),
            sent: true,
            error: None,
        }),
        Err(e) => {
            log_cause(&e);
            render(
                status_of(&e),
                &ForgotPasswordPage {
                    csrf_token: token.0.clone(),
                    sent: false,
                    error: Some(e.to_string()),
                },
            )
        }
    }
}

#[derive(Deserialize)]
struct ResetQuery {
    #[serde(default)]
    token: String,
}

#[handler]
fn reset_form(token: &CsrfToken, Query(q): Query<ResetQuery>) -> Response {
    ok(&ResetPasswordPage {
        csrf_token: token.0.clone(),
        token: q.token,
        done: false,
        error: None,
    })
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

#[handler]
async fn reset(
    state: Data<&AppState>,
    token: &CsrfToken,
    verifier: &CsrfVerifier,
    Form(form): Form<ResetForm>,
) -> Response {
    let result = async {
        check_csrf(verifier, &form.csrf_token)?;
        let password = Password::parse(&form.new_password)?;
        password_reset::reset(&state, &form.token, &password).await
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
        Err(e) => {
            log_cause(&e);
            render(status_of(&e), &page(false, Some(e.to_string())))
        }
    }
}
