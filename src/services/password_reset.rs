//! Forgot Password: a one-time, expiring link by email. The answer to a request is the same
//! whether or not an account matched.

use chrono::Duration;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};

use crate::{
    domain::{Email, Password, SecretToken, VseeId},
    error::{AppError, AppResult},
    models::{account, password_reset},
    services::{accounts, mail, sessions},
    state::AppState,
};

pub async fn request(state: &AppState, login: &str) -> AppResult<()> {
    let account = if login.contains('@') {
        match Email::parse(login) {
            Ok(e) => accounts::find_by_email(&state.db, &e).await?,
            Err(_) => None,
        }
    } else {
        match VseeId::parse(login) {
            Ok(id) => accounts::find_by_vsee_id(&state.db, &id).await?,
            Err(_) => None,
        }
    };
    let Some(account) = account.filter(|a| a.status == account::STATUS_ACTIVE) else {
        return Ok(());
    };
    let minutes = state.settings.security.password_reset_ttl_minutes;
    let token = SecretToken::generate();
    let now = state.clock.now();
    password_reset::ActiveModel {
        id: Set(token.hash().0),
        account_id: Set(account.id),
        created_at: Set(now),
        expires_at: Set(now + Duration::minutes(minutes)),
        used_at: Set(None),
    }
    .insert(&state.db.conn)
    .await?;
    let link = format!(
        "{}/reset-password?token={}",
        state.settings.server.public_url.trim_end_matches('/'),
        token.expose()
    );
    let message =
        mail::password_reset(&state.settings, &account.email, &link, minutes).map_err(AppError::internal)?;
    let name = format!("password-reset-{}", &token.hash().0[..16]);
    if let Err(e) = state.mailer.send(message, &name).await {
        // Same answer to the user either way; operators see the failure.
        tracing::error!(account_id = account.id, error = %e, "password reset email failed");
    }
    Ok(())
}

pub async fn reset(state: &AppState, raw_token: &str, new_password: &Password) -> AppResult<()> {
    let invalid =
        || AppError::InvalidInput("this reset link is invalid, used or expired; ask for a new one".into());
    let token = SecretToken::parse(raw_token).ok_or_else(invalid)?;
    let now = state.clock.now();
    let reset = password_reset::Entity::find_by_id(token.hash().0)
        .one(&state.db.conn)
        .await?
        .filter(|r| r.used_at.is_none() && r.expires_at > now)
        .ok_or_else(invalid)?;
    // Claim the link first: of two concurrent uses, one wins.
    let claimed = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::Id.eq(&reset.id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(&state.db.conn)
        .await?
        .rows_affected;
    if claimed != 1 {
        return Err(invalid());
    }
    let account = accounts::find(&state.db, reset.account_id)
        .await?
        .filter(|a| a.status == account::STATUS_ACTIVE)
        .ok_or_else(invalid)?;
    let account_id = account.id;
    accounts::set_password(&state.db, state.clock.as_ref(), account, new_password).await?;
    // A reset means the old password may be known to someone else: log every device out.
    sessions::end_all(&state.db.conn, account_id).await?;
    Ok(())
}
