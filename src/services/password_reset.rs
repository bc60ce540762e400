//! Forgot Password: a one-time, expiring link by email.
//!
//! Asking for a link runs the same statements whether or not an account matched (one lookup,
//! one notice row, one outbox row), so neither the answer nor its timing tells whether the
//! account exists; the notice job finds out, and sends nothing when none did. Only the newest
//! link of an account works, and using one, or changing the password, ends all of them.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

use crate::{
    domain::{AccountStatus, Email, Password, SecretToken, VseeId},
    env::Env,
    error::{AppError, AppResult},
    models::password_reset,
    services::{
        accounts,
        notifications::{self, NoticeKind},
        sessions,
    },
    throttle::Throttle,
};

/// Asks for a reset link for `login` (a VSee ID or an email), from `address`. Throttled per
/// login and per address.
pub async fn request(env: Env<'_>, throttle: &Throttle, login: &str, address: &str) -> AppResult<()> {
    let now = env.now();
    throttle.reset_requested(env.db, login, address, now).await?;
    let account = if login.contains('@') {
        match Email::parse(login) {
            Ok(e) => accounts::row_by_email(env, &e).await?,
            Err(_) => None,
        }
    } else {
        match VseeId::parse(login) {
            Ok(id) => accounts::row_by_vsee_id(env, &id).await?,
            Err(_) => None,
        }
    };
    let account_id = account
        .filter(|a| a.status == AccountStatus::Active)
        .map(|a| a.id);
    let tx = env.db.begin_write().await?;
    notifications::add(&tx, NoticeKind::PasswordReset, account_id, None, now).await?;
    tx.commit().await?;
    env.wake_relay();
    Ok(())
}

pub async fn reset(env: Env<'_>, raw_token: &str, new_password: &Password) -> AppResult<()> {
    let invalid =
        || AppError::InvalidInput("this reset link is invalid, used or expired; ask for a new one".into());
    let token = SecretToken::parse(raw_token).ok_or_else(invalid)?;
    let now = env.now();
    let reset = password_reset::Entity::find_by_id(token.hash().0)
        .one(&env.db.conn)
        .await?
        .filter(|r| r.used_at.is_none() && r.expires_at > now)
        .ok_or_else(invalid)?;
    // Claim the link first: of two concurrent uses, one wins.
    let claimed = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::Id.eq(&reset.id))
        .filter(password_reset::Column::UsedAt.is_null())
        .exec(&env.db.conn)
        .await?
        .rows_affected;
    if claimed != 1 {
        return Err(invalid());
    }
    let account = accounts::find(env, reset.account_id)
        .await?
        .filter(|a| a.status == AccountStatus::Active)
        .ok_or_else(invalid)?;
    let hash = accounts::hash_password(new_password).await?;
    let tx = env.db.begin_write().await?;
    accounts::set_password_hash(&tx, account.id, hash, now).await?;
    // A reset means the old password may be known to someone else: log every device out,
    // end every other link, and tell the holder.
    sessions::end_all(&tx, account.id).await?;
    end_links(&tx, account.id).await?;
    notifications::add(&tx, NoticeKind::PasswordChanged, Some(account.id), None, now).await?;
    tx.commit().await?;
    env.wake_relay();
    Ok(())
}

/// Ends every reset link of an account (its password changed).
pub async fn end_links<C: sea_orm::ConnectionTrait>(conn: &C, account_id: i64) -> AppResult<()> {
    password_reset::Entity::delete_many()
        .filter(password_reset::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?;
    Ok(())
}
