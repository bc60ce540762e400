//! Changing an account's profile and credentials (ASVS V2.1.6, V3.3).
//!
//! The rules:
//! - a new password needs the current one;
//! - a new email or offline-notification address needs a log-in within the re-authentication
//!   window, or the current password;
//! - a wrong current password counts as a failed log-in (throttled the same way);
//! - a new password ends every other session and every reset link;
//! - each such change emails a notice: a new email to the old address, the others to the
//!   account's address;
//! - the change, its session and link revocations and its notices are one transaction: all of
//!   it happens, or none.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

use crate::{
    domain::{Email, Password, PersonName},
    env::Env,
    error::{AppError, AppResult},
    models::account,
    services::{
        accounts,
        notifications::{self, NoticeKind},
        password_reset, sessions,
        sessions::{Attempt, CurrentSession},
    },
    vault::KeyOwner,
};

/// A change to an account's profile or credentials; absent fields stay as they are.
#[derive(Debug, Default)]
pub struct AccountChange {
    pub first_name: Option<PersonName>,
    pub last_name: Option<PersonName>,
    /// `Some(None)` clears the address.
    pub offline_notification_email: Option<Option<Email>>,
    pub offline_notification_enabled: Option<bool>,
    pub email: Option<Email>,
    pub password: Option<Password>,
}

/// What a change touches beyond plain profile fields.
struct Sensitive {
    email: bool,
    notification_email: bool,
    password: bool,
}

impl AccountChange {
    fn sensitive(&self, account: &account::Model) -> Sensitive {
        Sensitive {
            email: self.email.as_ref().is_some_and(|e| e.as_str() != account.email),
            notification_email: self.offline_notification_email.as_ref().is_some_and(|e| {
                e.as_ref().map(Email::as_str) != account.offline_notification_email.as_deref()
            }),
            password: self.password.is_some(),
        }
    }
}

/// Applies `change` for the holder of `current`; `reauth_window` is how recent a log-in must
/// be to change an address without the password.
pub async fn update(
    env: Env<'_>,
    keys: &crate::keys::Keys,
    attempt: Attempt<'_>,
    reauth_window: chrono::Duration,
    current: &CurrentSession,
    change: AccountChange,
    current_password: Option<&str>,
) -> AppResult<account::Model> {
    let account = &current.account;
    let sensitive = change.sensitive(account);
    let given = current_password.filter(|p| !p.is_empty());
    if sensitive.password && given.is_none() {
        return Err(AppError::InvalidInput(
            "changing the password needs the current password".into(),
        ));
    }
    if sensitive.email || sensitive.notification_email || sensitive.password {
        match given {
            Some(password) => sessions::check_password(env, attempt, current, password).await?,
            None if current.login_is_older_than(env.now(), reauth_window) => {
                return Err(AppError::ReauthenticationRequired);
            }
            None => {}
        }
    }
    if let Some(email) = &change.email
        && sensitive.email
    {
        if accounts::row_by_email(env, email).await?.is_some() {
            return Err(AppError::Conflict(
                "an account with that email already exists".into(),
            ));
        }
        crate::services::reuse::refuse_if_cooling_off(env.db, keys, env.now(), None, Some(email)).await?;
    }
    let new_hash = match &change.password {
        Some(p) => Some(accounts::hash_password(p).await?),
        None => None,
    };

    let now = env.now();
    let tx = env.db.begin_write().await?;
    let mut updated = account.clone();
    if let Some(n) = change.first_name {
        updated.first_name = n.as_str().to_owned();
    }
    if let Some(n) = change.last_name {
        updated.last_name = n.as_str().to_owned();
    }
    if let Some(e) = change.offline_notification_email {
        updated.offline_notification_email = e.map(|e| e.as_str().to_owned());
    }
    if let Some(on) = change.offline_notification_enabled {
        updated.offline_notification_enabled = on;
    }
    if let Some(e) = &change.email {
        updated.email = e.as_str().to_owned();
    }
    if let Some(h) = new_hash {
        updated.password_hash = h;
    }
    updated.updated_at = now;
    account::Entity::update_many()
        .col_expr(
            account::Column::OfflineNotificationEnabled,
            Expr::value(updated.offline_notification_enabled),
        )
        .col_expr(
            account::Column::PasswordHash,
            Expr::value(updated.password_hash.clone()),
        )
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account.id))
        .exec(&tx)
        .await?;
    let key = env
        .vault
        .create_key(&tx, &KeyOwner::Account(account.id), now)
        .await?;
    // A concurrent change to the same email loses on the unique index: AppError maps it to 409.
    accounts::sealed::write(&tx, env.vault, &key, &updated).await?;
    if sensitive.email {
        notifications::add(
            &tx,
            NoticeKind::EmailChanged,
            Some(account.id),
            Some(&key.seal(notifications::OLD_ADDRESS, &account.email)),
            now,
        )
        .await?;
    }
    if sensitive.notification_email {
        notifications::add(
            &tx,
            NoticeKind::NotificationEmailChanged,
            Some(account.id),
            None,
            now,
        )
        .await?;
    }
    if sensitive.password {
        sessions::end_others(&tx, account.id, &current.session.id).await?;
        password_reset::end_links(&tx, account.id).await?;
        notifications::add(&tx, NoticeKind::PasswordChanged, Some(account.id), None, now).await?;
    }
    tx.commit().await?;
    if sensitive.email || sensitive.notification_email || sensitive.password {
        env.wake_relay();
        tracing::info!(account_id = account.id, "credentials changed");
    }
    Ok(updated)
}
