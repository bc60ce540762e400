//! What a handler demands of a request, as types: a handler that takes `LoggedIn` cannot run
//! without a live session, one that takes `CsrfForm<T>` cannot run on a cross-site or forged
//! form, one that takes `StaffPage<R>` cannot run for anyone but staff holding role `R`, and
//! `ClientAddress` is the only way to learn who is asking.

use poem::{
    FromRequest, Request, RequestBody, Response,
    web::{CsrfVerifier, Form, cookie::CookieJar},
};
use serde::{Deserialize, de::DeserializeOwned};

use std::marker::PhantomData;

use crate::{
    error::AppError,
    http::{api::auth::Role, pages, session},
    services::{
        sessions::{Attempt, CurrentSession},
        staff::{self, StaffSession},
    },
    state::AppState,
};

fn app_state(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>().ok_or_else(|| {
        poem::Error::from_string(
            "application state missing",
            poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        )
    })
}

/// The client's address, for throttling: the peer's, or, when `server.client_address_header`
/// names a header set by a trusted proxy, that header's (its last entry: the one the proxy
/// appended). Never a header the configuration does not name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

impl ClientAddress {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A password attempt from this client, throttled by the application's throttle.
    pub fn attempt<'a>(&'a self, state: &'a AppState) -> Attempt<'a> {
        Attempt {
            throttle: &state.throttle,
            address: &self.0,
        }
    }

    fn of(req: &Request, header: &str) -> Self {
        let from_header = (!header.is_empty())
            .then(|| req.headers().get(header))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
        let address =
            from_header.or_else(|| req.remote_addr().as_socket_addr().map(std::net::SocketAddr::ip));
        Self(address.map_or_else(|| "unknown".to_owned(), |a| a.to_string()))
    }
}

impl<'a> FromRequest<'a> for ClientAddress {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = app_state(req)?;
        Ok(Self::of(req, &state.settings.server.client_address_header))
    }
}

/// A page handler's live session. Without one the browser is sent to the log-in page.
#[derive(Debug, Clone)]
pub struct LoggedIn(pub CurrentSession);

impl<'a> FromRequest<'a> for LoggedIn {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = app_state(req)?;
        let jar = <&CookieJar>::from_request(req, body).await?;
        match session::current(state, jar).await {
            Ok(current) => Ok(Self(current)),
            Err(AppError::Unauthenticated) => Err(poem::Error::from_response(pages::see_other("/login"))),
            Err(e) => Err(poem::Error::from_response(pages::error_page(&e))),
        }
    }
}

#[derive(Deserialize)]
struct WithToken<T> {
    #[serde(default)]
    csrf_token: String,
    #[serde(flatten)]
    fields: T,
}

/// A form posted by one of our own pages: the request comes from our origin (`Origin` and
/// `Sec-Fetch-Site`, when the browser sends them) and carries the CSRF token the page was
/// given. Anything else is refused with a 403 page before the handler runs.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

impl<'a, T: DeserializeOwned> FromRequest<'a> for CsrfForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = app_state(req)?;
        let refuse = |e: AppError| poem::Error::from_response(pages::error_page(&e));
        if !same_origin(req, &state.settings.server.public_url) {
            return Err(refuse(AppError::CsrfInvalid));
        }
        let verifier = <&CsrfVerifier>::from_request(req, body).await?;
        let Form(form) = Form::<WithToken<T>>::from_request(req, body)
            .await
            .map_err(|e| refuse(AppError::InvalidInput(format!("the form could not be read: {e}"))))?;
        if !verifier.is_valid(&form.csrf_token) {
            return Err(refuse(AppError::CsrfInvalid));
        }
        Ok(Self(form.fields))
    }
}

/// Whether a state-changing request comes from our own pages. Browsers say where a request
/// comes from in `Sec-Fetch-Site` (which no page can set), else in `Origin`; a request that
/// carries neither (an old browser, a script) is left to the CSRF token. `Sec-Fetch-Site`
/// decides when present: under our `Referrer-Policy: no-referrer`, Chromium sends
/// `Origin: null` with same-origin form posts.
fn same_origin(req: &Request, public_url: &str) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = header("origin") else {
        return true;
    };
    let ours = public_url.trim_end_matches('/');
    if origin.eq_ignore_ascii_case(ours) {
        return true;
    }
    // The origin the browser was actually talking to (a test server on another port, a
    // second host name): the Host it sent.
    let host = header("host").unwrap_or_default();
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| !host.is_empty() && authority.eq_ignore_ascii_case(host))
}

/// A response a page handler returns early with: a redirect or an error page.
pub type PageResult<T> = Result<T, Response>;

/// A console page for a live staff session whose role `R` allows: without one, the browser
/// is sent to `/staff/login`; with the wrong role, a 403 page.
pub struct StaffPage<R: Role>(pub StaffSession, pub PhantomData<R>);

impl<'a, R: Role> FromRequest<'a> for StaffPage<R> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = app_state(req)?;
        let jar = <&CookieJar>::from_request(req, body).await?;
        let to_login = || poem::Error::from_response(pages::see_other("/staff/login"));
        let Some(cookie) = jar.get(staff::COOKIE) else {
            return Err(to_login());
        };
        match staff::resolve(state.env(), cookie.value_str()).await {
            Ok(Some(session)) if R::allows(session.staff.role) => Ok(Self(session, PhantomData)),
            Ok(Some(_)) => Err(poem::Error::from_response(pages::error_page(
                &AppError::ForbiddenRole,
            ))),
            Ok(None) => Err(to_login()),
            Err(e) => Err(poem::Error::from_response(pages::error_page(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder();
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.finish()
    }

    #[test]
    fn cross_site_forms_are_refused() {
        let public = "https://erasure.example";
        assert!(same_origin(&request(&[]), public));
        assert!(same_origin(
            &request(&[("origin", "https://erasure.example")]),
            public
        ));
        assert!(same_origin(
            &request(&[("origin", "http://127.0.0.1:4000"), ("host", "127.0.0.1:4000")]),
            public
        ));
        assert!(!same_origin(
            &request(&[("origin", "https://evil.example")]),
            public
        ));
        assert!(!same_origin(&request(&[("origin", "null")]), public));
        // What Chromium sends for a form of ours under `Referrer-Policy: no-referrer`.
        assert!(same_origin(
            &request(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
            public
        ));
        assert!(!same_origin(
            &request(&[
                ("origin", "https://erasure.example"),
                ("sec-fetch-site", "cross-site")
            ]),
            public
        ));
        assert!(!same_origin(
            &request(&[("sec-fetch-site", "cross-site")]),
            public
        ));
        assert!(!same_origin(&request(&[("sec-fetch-site", "same-site")]), public));
        assert!(same_origin(
            &request(&[("sec-fetch-site", "same-origin")]),
            public
        ));
    }

    #[test]
    fn only_the_configured_header_names_the_client() {
        let req = request(&[
            ("x-forwarded-for", "203.0.113.9, 198.51.100.7"),
            ("x-real-ip", "192.0.2.1"),
        ]);
        assert_eq!(ClientAddress::of(&req, "X-Forwarded-For").0, "198.51.100.7");
        assert_eq!(ClientAddress::of(&req, "x-real-ip").0, "192.0.2.1");
        // Not configured: the header is ignored (no peer in a built request).
        assert_eq!(ClientAddress::of(&req, "").0, "unknown");
        let forged = request(&[("x-forwarded-for", "not an address")]);
        assert_eq!(ClientAddress::of(&forged, "x-forwarded-for").0, "unknown");
    }
}
