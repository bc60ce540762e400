use poem::web::{Data, cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json, types::MaybeUndefined};

use super::{
    ApiTags, SessionCookie,
    fields::{EmailText, NameText, NewPasswordText, Optional, PasswordText},
};
use crate::{
    domain::{Channel, Email, Password, PersonName},
    error::AppError,
    http::{error::ApiResult, extract::ClientAddress, self_service, session},
    models::account,
    services::{
        deletion,
        profile::{self, AccountChange},
        sessions,
    },
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
    /// `null` when no address is set.
    #[oai(nullable)]
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
            plan: a.plan.as_str().to_owned(),
            offline_notification: OfflineNotification {
                email: a.offline_notification_email.clone(),
                enabled: a.offline_notification_enabled,
            },
        }
    }
}

/// Fields to change; absent fields stay as they are. A new `password` needs
/// `current_password`; a new `email` or `offline_notification_email` needs a log-in within
/// the re-authentication window or `current_password`. All of it is applied, or none.
#[derive(Object)]
pub struct AccountPatch {
    pub first_name: Optional<NameText>,
    pub last_name: Optional<NameText>,
    /// `null` clears it.
    #[oai(nullable)]
    pub offline_notification_email: MaybeUndefined<EmailText>,
    pub offline_notification_enabled: Optional<bool>,
    pub email: Optional<EmailText>,
    /// The new password.
    pub password: Optional<NewPasswordText>,
    pub current_password: Optional<PasswordText>,
}

impl AccountPatch {
    fn parse(&self) -> Result<AccountChange, AppError> {
        Ok(AccountChange {
            first_name: self
                .first_name
                .as_ref()
                .map(|n| PersonName::parse(n.as_str()))
                .transpose()?,
            last_name: self
                .last_name
                .as_ref()
                .map(|n| PersonName::parse(n.as_str()))
                .transpose()?,
            offline_notification_email: match &self.offline_notification_email {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(v) => Some(Some(Email::parse(v.as_str())?)),
            },
            offline_notification_enabled: self.offline_notification_enabled.0,
            email: self
                .email
                .as_ref()
                .map(|e| Email::parse(e.as_str()))
                .transpose()?,
            password: self
                .password
                .as_ref()
                .map(|p| Password::parse(p.as_str()))
                .transpose()?,
        })
    }
}

#[derive(Object)]
pub struct DeletionConfirmation {
    /// The account's email, typed again. Compared after the same normalisation as the
    /// address itself (trimmed, case-folded).
    pub confirm_email: EmailText,
}

#[derive(Object)]
pub struct DeletionReceipt {
    /// Keep it: GET /api/v1/deletions/{receipt_id} shows progress. Shown once.
    pub receipt_id: String,
    /// `pending`, or `scheduled` under a grace period.
    pub status: String,
    /// With a grace period (`deletion.grace_hours`): when the purge starts unless cancelled
    /// from the emailed link; `null` when it starts at once.
    #[oai(nullable)]
    pub purge_after: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Object)]
pub struct Reauthentication {
    pub password: PasswordText,
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
    #[oai(path = "/v1/me", method = "get", operation_id = "getMe")]
    async fn get(&self, SessionCookie(current): SessionCookie) -> ApiResult<AccountResponse> {
        Ok(AccountResponse::Ok(Json(AccountView::of(&current.account))))
    }

    /// Change names, the offline notification, or the email or password (see the rules on
    /// the body). A change of email or password is announced by email.
    #[oai(path = "/v1/me", method = "patch", operation_id = "updateMe")]
    async fn patch(
        &self,
        state: Data<&AppState>,
        SessionCookie(current): SessionCookie,
        address: ClientAddress,
        body: Json<AccountPatch>,
    ) -> ApiResult<AccountResponse> {
        let change = body.parse()?;
        let password = body.current_password.as_ref().map(PasswordText::as_str);
        let account = profile::update(
            state.env(),
            &state.keys,
            address.attempt(&state),
            state.reauth_window(),
            &current,
            change,
            password,
        )
        .await?;
        Ok(AccountResponse::Ok(Json(AccountView::of(&account))))
    }

    /// Prove the password again, e.g. after `reauthentication_required`.
    #[oai(
        path = "/v1/me/reauthentication",
        method = "post",
        operation_id = "reauthenticate"
    )]
    async fn reauthenticate(
        &self,
        state: Data<&AppState>,
        SessionCookie(current): SessionCookie,
        address: ClientAddress,
        body: Json<Reauthentication>,
    ) -> ApiResult<ReauthResponse> {
        sessions::reauthenticate(
            state.env(),
            address.attempt(&state),
            &current,
            body.password.as_str(),
        )
        .await?;
        Ok(ReauthResponse::NoContent)
    }

    /// Delete this account (free accounts). The typed email must be the account's. Paid
    /// accounts get `paid_account` with the support address; a log-in older than the
    /// re-authentication window gets `reauthentication_required`. A refusal changes nothing.
    #[oai(path = "/v1/me/deletion", method = "post", operation_id = "deleteMe")]
    async fn delete(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        SessionCookie(current): SessionCookie,
        body: Json<DeletionConfirmation>,
    ) -> ApiResult<DeletionResponse> {
        let receipt = deletion::request_by_account_holder(
            state.env(),
            &state.keys,
            self_service(&state),
            &current,
            body.confirm_email.as_str(),
            Channel::Api,
        )
        .await?;
        session::clear(&state, jar);
        Ok(DeletionResponse::Accepted(Json(DeletionReceipt {
            receipt_id: receipt.receipt.expose().to_owned(),
            status: receipt.status.as_str().to_owned(),
            purge_after: receipt.purge_after,
        })))
    }
}
