//! The session cookie, shared by the pages and the API.

use poem::web::cookie::{Cookie, CookieJar, SameSite};

use crate::{
    domain::SecretToken,
    error::{AppError, AppResult},
    services::{
        sessions::{self, COOKIE, CurrentSession},
        staff,
    },
    state::AppState,
};

pub async fn current(state: &AppState, jar: &CookieJar) -> AppResult<CurrentSession> {
    let cookie = jar.get(COOKIE).ok_or(AppError::Unauthenticated)?;
    resolve(state, cookie.value_str()).await
}

/// The live session a cookie value names, or `Unauthenticated`.
pub async fn resolve(state: &AppState, cookie_value: &str) -> AppResult<CurrentSession> {
    sessions::resolve(state.env(), cookie_value)
        .await?
        .ok_or(AppError::Unauthenticated)
}

pub async fn current_optional(state: &AppState, jar: &CookieJar) -> AppResult<Option<CurrentSession>> {
    match current(state, jar).await {
        Ok(s) => Ok(Some(s)),
        Err(AppError::Unauthenticated) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn set(state: &AppState, jar: &CookieJar, token: &SecretToken) {
    let mut cookie = Cookie::new_with_str(COOKIE, token.expose());
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(state.settings.secure_cookies());
    cookie.set_path("/");
    cookie.set_max_age(std::time::Duration::from_secs(
        u64::try_from(state.settings.security.session_ttl_hours).unwrap_or(1) * 3600,
    ));
    jar.add(cookie);
}

/// Ends the session server-side (if any) and tells the browser to drop the cookie.
pub async fn end(state: &AppState, jar: &CookieJar) -> AppResult<()> {
    if let Some(cookie) = jar.get(COOKIE) {
        sessions::end(&state.db, cookie.value_str()).await?;
    }
    clear(state, jar);
    Ok(())
}

pub fn clear(state: &AppState, jar: &CookieJar) {
    let mut cookie = Cookie::named(COOKIE);
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(state.settings.secure_cookies());
    cookie.make_removal();
    jar.add(cookie);
}

/// The staff session cookie: like the account holders', but `SameSite=Strict` (the console is
/// never reached by a link from elsewhere) and as long-lived as a staff session.
pub fn set_staff(state: &AppState, jar: &CookieJar, token: &SecretToken) {
    let mut cookie = Cookie::new_with_str(staff::COOKIE, token.expose());
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_secure(state.settings.secure_cookies());
    cookie.set_path("/");
    let ttl = state.settings.security.staff_session_ttl().num_seconds();
    cookie.set_max_age(std::time::Duration::from_secs(u64::try_from(ttl).unwrap_or(3600)));
    jar.add(cookie);
}

/// Ends the staff session server-side (if any) and tells the browser to drop its cookie.
pub async fn end_staff(state: &AppState, jar: &CookieJar) -> AppResult<()> {
    if let Some(cookie) = jar.get(staff::COOKIE) {
        staff::end(&state.db, cookie.value_str()).await?;
    }
    let mut cookie = Cookie::named(staff::COOKIE);
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_secure(state.settings.secure_cookies());
    cookie.make_removal();
    jar.add(cookie);
    Ok(())
}
