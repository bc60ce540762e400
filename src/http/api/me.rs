use poem::web::{Data, RemoteAddr, cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, types::MaybeUndefined};

use super::{ApiTags, error::ApiResult};
use crate::{
    domain::{Channel, Email, Password, PersonName},
    error::AppError,
    http::{client_address, session},
    models::account,
    services::{accounts, deletion, sessions},
    state::AppState,
};

pub struct MeApi;

/// The account as its holder sees it.
#[derive(Object)]
pub struct AccountView {
    pub vsee_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// free | paid
    pub plan: String,
    pub offline_notification: OfflineNotification,
}

/// Where offline messages are announced, and whether they are.
#[derive(Object)]
pub struct OfflineNotification {
    pub email: Option<String>,
    pub enabled: bool,
}

impl AccountView {
    pub fn of(a: &account::Model) -> Self {
        Self {
            vsee_id: a.vsee_id.clone(),
            email: a.email.clone(),
            first_name: a.first_name.clone(),
            last_name: a.last_name.clone(),
            plan: a.plan.clone(),
            offline_notification: OfflineNotification {
                email: a.offline_notification_email.clone(),
                enabled: a.offline_notification_enabled,
            },
        }
    }
}

/// Fields to change; absent fields stay as they are. `email` and `password` need
/// `current_password`. All of it is applied, or none.
#[derive(Object)]
pub struct AccountPatch {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `null` clears it.
    pub offline_notification_email: MaybeUndefined<String>,
    pub offline_notification_enabled: Option<bool>,
    pub email: Option<String>,
    /// The new password.
    pub password: Option<String>,
    pub current_password: Option<String>,
}

impl AccountPatch {
    fn parse(&self) -> Result<accounts::AccountChange, AppError> {
        Ok(accounts::AccountChange {
            first_name: self.first_name.as_deref().map(PersonName::parse).transpose()?,
            last_name: self.last_name.as_deref().map(PersonName::parse).transpose()?,
            offline_notification_email: match &self.offline_notification_email {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) if v.trim().is_empty() => Some(None),
                MaybeUndefined::Value(v) => Some(Some(Email::parse(v)?)),
            },
            offline_notification_enabled: self.offline_notification_enabled,
            email: self.email.as_deref().map(Email::parse).transpose()?,
            password: self.password.as_deref().map(Password::parse).transpose()?,
        })
    }
}

#[derive(Object)]
pub struct DeletionConfirmation {
    /// The account's email, typed again. Compared trimmed and case-insensitively.
    pub confirm_email: String,
}

#[derive(Object)]
pub struct DeletionReceipt {
    /// Keep it: GET /api/v1/deletions/{receipt_id} shows progress. Shown once.
    pub receipt_id: String,
    pub status: String,
}

#[derive(Object)]
pub struct Reauthentication {
    pub password: String,
}

#[derive(ApiResponse)]
enum AccountResponse {
    #[oai(status = 200)]
    Ok(Json<AccountView>),
}

#[derive(ApiResponse)]
enum DeletionResponse {
    /// Accepted: the account is locked, every session ended, and the purge queued.
    #[oai(status = 202)]
    Accepted(Json<DeletionReceipt>),
}

#[derive(ApiResponse)]
enum ReauthResponse {
    /// The password was right; the re-authentication window starts again.
    #[oai(status = 204)]
    NoContent,
}

#[OpenApi(tag = "ApiTags::Me")]
impl MeApi {
    /// The logged-in account.
    #[oai(path = "/v1/me", method = "get")]
    async fn get(&self, state: Data<&AppState>, jar: &CookieJar) -> ApiResult<AccountResponse> {
        let current = session::current(&state, jar).await?;
        Ok(AccountResponse::Ok(Json(AccountView::of(&current.account))))
    }

    /// Change names, the offline notification, or (with the current password) the email or
    /// password.
    #[oai(path = "/v1/me", method = "patch")]
    async fn patch(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        body: Json<AccountPatch>,
    ) -> ApiResult<AccountResponse> {
        let current = session::current(&state, jar).await?;
        let change = body.parse()?;
        let account = accounts::update(
            &state.db,
            state.clock.as_ref(),
            current.account.id,
            change,
            body.current_password.as_deref(),
        )
        .await?;
        Ok(AccountResponse::Ok(Json(AccountView::of(&account))))
    }

    /// Prove the password again, e.g. after `reauthentication_required`.
    #[oai(path = "/v1/me/reauthentication", method = "post")]
    async fn reauthenticate(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        remote: &RemoteAddr,
        body: Json<Reauthentication>,
    ) -> ApiResult<ReauthResponse> {
        let current = session::current(&state, jar).await?;
        sessions::reauthenticate(
            &state,
            &current,
            &body.password,
            client_address(remote).as_deref(),
        )
        .await?;
        Ok(ReauthResponse::NoContent)
    }

    /// Delete this account (free accounts). The typed email must be the account's. Paid
    /// accounts get `paid_account` with the support address; a log-in older than the
    /// re-authentication window gets `reauthentication_required`. A refusal changes nothing.
    #[oai(path = "/v1/me/deletion", method = "post")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        body: Json<DeletionConfirmation>,
    ) -> ApiResult<DeletionResponse> {
        let current = session::current(&state, jar).await?;
        let receipt =
            deletion::request_by_account_holder(&state, &current, &body.confirm_email, Channel::Api).await?;
        session::clear(&state, jar);
        Ok(DeletionResponse::Accepted(Json(DeletionReceipt {
            receipt_id: receipt.receipt.expose().to_owned(),
            status: receipt.status.as_str().to_owned(),
        })))
    }
}
