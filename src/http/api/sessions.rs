use poem::web::{Data, RemoteAddr, cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{ApiTags, error::ApiResult, me::AccountView};
use crate::{
    http::{client_address, session},
    services::sessions,
    state::AppState,
};

pub struct SessionsApi;

#[derive(Object)]
pub struct LogIn {
    pub vsee_id: String,
    pub password: String,
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
    /// not the ID exists; repeated failures are rate-limited.
    #[oai(path = "/v1/sessions", method = "post")]
    async fn log_in(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        remote: &RemoteAddr,
        body: Json<LogIn>,
    ) -> ApiResult<LogInResponse> {
        let address = client_address(remote);
        let (account, token) =
            sessions::log_in(&state, &body.vsee_id, &body.password, address.as_deref()).await?;
        session::set(&state, jar, &token);
        Ok(LogInResponse::Ok(Json(AccountView::of(&account))))
    }

    /// Log out of this session.
    #[oai(path = "/v1/sessions/current", method = "delete")]
    async fn log_out(&self, state: Data<&AppState>, jar: &CookieJar) -> ApiResult<LogOutResponse> {
        session::end(&state, jar).await?;
        Ok(LogOutResponse::NoContent)
    }
}
