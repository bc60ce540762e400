//! The user pages: the help article's screens, server-rendered, one file per area. Forms are
//! `CsrfForm`s and logged-in pages take `LoggedIn` (see `http::extract`), so no handler can
//! forget either check.

mod auth;
mod console;
mod deletion;
mod password;
mod profile;
mod takeout;
mod termination;
mod tickets;
pub(crate) mod views;

use askama::Template;
use poem::{
    EndpointExt, IntoResponse, Response, Route, get,
    http::{StatusCode, header},
    web::{Html, Redirect},
};

use crate::{
    error::AppError,
    http::error::{classify, log_cause, retry_after},
};
use views::ErrorPage;

/// The pages that hold a form, or read a session: behind the CSRF layer, which gives each
/// such page a token and its cookie.
pub fn routes() -> Route {
    console::routes(Route::new())
        .at("/", get(auth::home))
        .at("/login", get(auth::login_form).post(auth::login))
        .at("/signup", get(auth::signup_form).post(auth::signup))
        .at("/logout", poem::post(auth::logout))
        .at("/account/profile", get(profile::show).post(profile::update))
        .at("/account/email", poem::post(profile::change_email))
        .at("/account/password", poem::post(profile::change_password))
        .at("/account/delete", get(deletion::warning).post(deletion::confirm))
        .at("/account/export", get(takeout::show).post(takeout::start))
        .at("/account/export/:id/download", get(takeout::download))
        .at("/account/termination-request", poem::post(termination::request))
        .at(
            "/deletion/cancel/:token",
            get(deletion::cancel_form).post(deletion::cancel),
        )
        .at(
            "/tickets/verify/:token",
            get(tickets::show).post(tickets::confirm),
        )
        .at(
            "/forgot-password",
            get(password::forgot_form).post(password::forgot),
        )
        .at("/reset-password", get(password::reset_form).post(password::reset))
}

/// Where a deletion's status page is mounted. It holds no form and reads no session: anyone
/// with the receipt may poll it, so it sets no cookie and makes no CSRF token (`app` mounts it
/// outside the CSRF layer).
pub const RECEIPT_STATUS: &str = "/deletions/:receipt";

/// The deletion status page, public by its receipt.
pub fn receipt_status() -> impl poem::Endpoint<Output = Response> {
    get(deletion::status).catch_all_error(fallback)
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

/// A page showing `err` in place (the form again, with the error above it): the error's
/// status, and `Retry-After` when it has one.
fn failed<T: Template>(err: &AppError, page: &T) -> Response {
    log_cause(err);
    let mut response = render(classify(err).0, page);
    if let Some(secs) = retry_after(err) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, poem::http::HeaderValue::from(secs));
    }
    response
}

/// The generic error page.
pub(crate) fn error_page(err: &AppError) -> Response {
    let title = match err {
        AppError::NotFound => "Not found",
        AppError::CsrfInvalid => "Please try again",
        AppError::RateLimited { .. } => "Too many attempts",
        _ => "Something went wrong",
    };
    failed(
        err,
        &ErrorPage {
            title: title.into(),
            message: err.to_string(),
        },
    )
}

/// Errors raised before a page handler ran (an extractor's refusal, an unknown path, a wrong
/// method) as pages, so they carry the pages' headers too.
pub(crate) async fn fallback(err: poem::Error) -> Response {
    if !err.has_source() {
        return err.into_response();
    }
    let status = err.status();
    let app_error = match status {
        StatusCode::NOT_FOUND => AppError::NotFound,
        s if s.is_server_error() => AppError::internal(anyhow::anyhow!("{err}")),
        _ => AppError::InvalidInput(crate::http::error::public_reason(&err.to_string())),
    };
    let mut response = error_page(&app_error);
    response.set_status(status);
    response
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::see_other(to).into_response()
}
