//! Who may call an operation, as types. An operation that takes `SessionCookie` cannot run
//! without an account holder's live session; one that takes `Staff<Agent>` (or `Auditor`,
//! `Admin`, `AnyStaff`) cannot run without a live staff session whose role grants it. Both
//! are security schemes in the spec, so it says which operations need which cookie.

use std::marker::PhantomData;

use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme, auth::ApiKey, registry::Registry,
};

use crate::{
    domain::StaffRole,
    error::AppError,
    http::{error::ApiError, session},
    services::{
        sessions::CurrentSession,
        staff::{self, StaffSession},
    },
    state::AppState,
};

fn refuse(e: AppError) -> poem::Error {
    poem::Error::from_response(poem::IntoResponse::into_response(ApiError::from(e)))
}

fn app_state(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| refuse(AppError::internal(anyhow::anyhow!("application state missing"))))
}

/// The session cookie a log-in sets (`erasure_session`). An operation that takes it cannot
/// run without a live session: it answers `401 unauthenticated` first.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "erasure_session",
    key_in = "cookie",
    checker = "live_session"
)]
pub struct SessionCookie(pub CurrentSession);

async fn live_session(req: &Request, cookie: ApiKey) -> poem::Result<CurrentSession> {
    session::resolve(app_state(req)?, &cookie.key)
        .await
        .map_err(refuse)
}

/// The staff session cookie a staff log-in sets (`erasure_staff`): a live session of an
/// enabled staff member, whatever the role. `Staff<R>` adds the role.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "erasure_staff",
    key_in = "cookie",
    checker = "live_staff_session"
)]
pub struct StaffCookie(pub StaffSession);

async fn live_staff_session(req: &Request, cookie: ApiKey) -> poem::Result<StaffSession> {
    let state = app_state(req)?;
    staff::resolve(state.env(), &cookie.key)
        .await
        .map_err(refuse)?
        .ok_or_else(|| refuse(AppError::Unauthenticated))
}

/// What a staff operation demands.
pub trait Role: Send + Sync + 'static {
    fn allows(role: StaffRole) -> bool;
}

/// Support agents (and administrators).
pub struct Agent;
/// Auditors (and administrators).
pub struct Auditor;
/// Administrators only.
pub struct Admin;
/// Any enabled staff member.
pub struct AnyStaff;

impl Role for Agent {
    fn allows(role: StaffRole) -> bool {
        role.grants(StaffRole::Agent)
    }
}
impl Role for Auditor {
    fn allows(role: StaffRole) -> bool {
        role.grants(StaffRole::Auditor)
    }
}
impl Role for Admin {
    fn allows(role: StaffRole) -> bool {
        role == StaffRole::Admin
    }
}
impl Role for AnyStaff {
    fn allows(_: StaffRole) -> bool {
        true
    }
}

/// A live staff session whose role `R` allows: `401 unauthenticated` without one,
/// `403 forbidden_role` with the wrong role.
pub struct Staff<R: Role>(pub StaffSession, PhantomData<R>);

impl<'a, R: Role> ApiExtractor<'a> for Staff<R> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        StaffCookie::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        StaffCookie::security_schemes()
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let StaffCookie(session) = StaffCookie::from_request(request, body, param_opts).await?;
        if !R::allows(session.staff.role) {
            return Err(refuse(AppError::ForbiddenRole));
        }
        Ok(Self(session, PhantomData))
    }
}
