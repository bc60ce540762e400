use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::{
    ApiTags,
    fields::{EmailText, NameText, NewPasswordText, Optional, VseeIdText},
    me::AccountView,
};
use crate::{
    error::AppError,
    http::error::ApiResult,
    services::accounts::{self, NewAccount},
    state::AppState,
};

pub struct AccountsApi;

/// A new free account.
#[derive(Object)]
pub struct SignUp {
    pub vsee_id: VseeIdText,
    pub email: EmailText,
    pub password: NewPasswordText,
    /// May be left out (empty).
    pub first_name: Optional<NameText>,
    /// May be left out (empty).
    pub last_name: Optional<NameText>,
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
    #[oai(path = "/v1/accounts", method = "post", operation_id = "signUp")]
    async fn sign_up(&self, state: Data<&AppState>, body: Json<SignUp>) -> ApiResult<SignUpResponse> {
        let new = NewAccount::parse_free(
            body.vsee_id.as_str(),
            body.email.as_str(),
            body.password.as_str(),
            body.first_name.as_ref().map_or("", NameText::as_str),
            body.last_name.as_ref().map_or("", NameText::as_str),
        )
        .map_err(AppError::from)?;
        let account = accounts::register(state.env(), &state.keys, new).await?;
        tracing::info!(account_id = account.id, "account created");
        Ok(SignUpResponse::Created(Json(AccountView::of(&account))))
    }
}
