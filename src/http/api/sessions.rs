use poem::web::{Data, cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    fields::{PasswordText, VseeIdText},
    me::AccountView,
};
use crate::{
    http::{error::ApiResult, extract::ClientAddress, session},
    services::sessions,
    state::AppState,
};

pub struct SessionsApi;

#[derive(Object)]
pub struct LogIn {
    pub vsee_id: VseeIdText,
    pub password: PasswordText,
}

#[derive(ApiResponse)]
enum LogInResponse {
    /// Logged in; the session cookie is set.
    #[oai(status = 200)]
    Ok(Json<AccountView>),
}

#[derive(ApiResponse)]
enum LogOutResponse {
    /// Logged out (also when there was no session).
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Log in with a VSee ID and password. Wrong credentials get the same answer whether or
    /// not the ID exists. After repeated failures from one client, that client must wait
    /// (`429` with `Retry-After`, doubling with each further failure); other clients, the
    /// owner's included, are not affected.
    #[oai(path = "/v1/sessions", method = "post", operation_id = "logIn")]
    async fn log_in(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        address: ClientAddress,
        body: Json<LogIn>,
    ) -> ApiResult<LogInResponse> {
        let (account, token) = sessions::log_in(
            state.env(),
            address.attempt(&state),
            state.session_ttl(),
            body.vsee_id.as_str(),
            body.password.as_str(),
        )
        .await?;
        session::set(&state, jar, &token);
        Ok(LogInResponse::Ok(Json(AccountView::of(&account))))
    }

    /// Log out of this session.
    #[oai(path = "/v1/sessions/current", method = "delete", operation_id = "logOut")]
    async fn log_out(&self, state: Data<&AppState>, jar: &CookieJar) -> ApiResult<LogOutResponse> {
        session::end(&state, jar).await?;
        Ok(LogOutResponse::NoContent)
    }
}
