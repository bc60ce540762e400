use poem::web::{Data, cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    auth::{AnyStaff, Staff},
    fields::{EmailText, PasswordText},
};
use crate::{
    http::{error::ApiResult, extract::ClientAddress, session},
    models::staff,
    services::staff as staff_service,
    state::AppState,
};

pub struct StaffApi;

#[derive(Object)]
pub struct StaffLogIn {
    pub email: EmailText,
    pub password: PasswordText,
}

/// A staff member as they see themselves.
#[derive(Object)]
pub struct StaffView {
    pub email: String,
    pub name: String,
    /// agent | auditor | admin
    pub role: String,
}

impl StaffView {
    fn of(s: &staff::Model) -> Self {
        Self {
            email: s.email.clone(),
            name: s.name.clone(),
            role: s.role.as_str().to_owned(),
        }
    }
}

#[derive(ApiResponse)]
enum StaffResponse {
    #[oai(status = 200)]
    Ok(Json<StaffView>),
}

#[derive(ApiResponse)]
enum StaffLogOutResponse {
    /// Logged out (also when there was no session).
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "ApiTags::Staff")]
impl StaffApi {
    /// Log in as staff: sets the `erasure_staff` cookie, apart from account holders' sessions.
    /// Throttled like account holders' log-ins; every failure gets the same answer.
    #[oai(path = "/v1/staff/sessions", method = "post", operation_id = "staffLogIn")]
    async fn log_in(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        address: ClientAddress,
        body: Json<StaffLogIn>,
    ) -> ApiResult<StaffResponse> {
        let (member, token) = staff_service::log_in(
            state.env(),
            address.attempt(&state),
            state.settings.security.staff_session_ttl(),
            body.email.as_str(),
            body.password.as_str(),
        )
        .await?;
        session::set_staff(&state, jar, &token);
        Ok(StaffResponse::Ok(Json(StaffView::of(&member))))
    }

    /// Log out of this staff session.
    #[oai(
        path = "/v1/staff/sessions/current",
        method = "delete",
        operation_id = "staffLogOut"
    )]
    async fn log_out(&self, state: Data<&AppState>, jar: &CookieJar) -> ApiResult<StaffLogOutResponse> {
        session::end_staff(&state, jar).await?;
        Ok(StaffLogOutResponse::NoContent)
    }

    /// The logged-in staff member.
    #[oai(path = "/v1/staff/me", method = "get", operation_id = "staffMe")]
    async fn me(&self, current: Staff<AnyStaff>) -> ApiResult<StaffResponse> {
        Ok(StaffResponse::Ok(Json(StaffView::of(&current.0.staff))))
    }
}
