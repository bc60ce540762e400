use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{ApiTags, error::ApiResult, me::AccountView};
use crate::{
    error::AppError,
    services::accounts::{self, NewAccount},
    state::AppState,
};

pub struct AccountsApi;

/// A new free account.
#[derive(Object)]
pub struct SignUp {
    /// 3–32 characters: letters, digits, '.', '-', '_'.
    pub vsee_id: String,
    pub email: String,
    /// 8–128 characters.
    pub password: String,
    #[oai(default)]
    pub first_name: String,
    #[oai(default)]
    pub last_name: String,
}

#[derive(ApiResponse)]
enum SignUpResponse {
    /// The account exists; log in to use it.
    #[oai(status = 201)]
    Created(Json<AccountView>),
}

#[OpenApi(tag = "ApiTags::Accounts")]
impl AccountsApi {
    /// Sign up for a free account.
    #[oai(path = "/v1/accounts", method = "post")]
    async fn sign_up(&self, state: Data<&AppState>, body: Json<SignUp>) -> ApiResult<SignUpResponse> {
        let new = NewAccount::parse_free(
            &body.vsee_id,
            &body.email,
            &body.password,
            &body.first_name,
            &body.last_name,
        )
        .map_err(AppError::from)?;
        let account = accounts::create(&state.db, state.clock.as_ref(), new).await?;
        tracing::info!(account_id = account.id, "account created");
        Ok(SignUpResponse::Created(Json(AccountView::of(&account))))
    }
}
