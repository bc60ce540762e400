//! Server-side sessions: the cookie holds a random token, the table holds its hash and the
//! account, so "log out every device of this account" is one DELETE.

use chrono::Duration;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::{
    clock::Clock,
    db::Database,
    domain::{AccountStatus, SecretToken},
    error::{AppError, AppResult},
    models::{account, session},
    services::accounts,
    state::AppState,
};

/// The session cookie's name, for pages and API alike.
pub const COOKIE: &str = "erasure_session";

/// A resolved, live session and its account.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub session: session::Model,
    pub account: account::Model,
}

impl CurrentSession {
    /// Whether the password was last proven longer ago than `window`.
    pub fn login_is_older_than(&self, now: chrono::DateTime<chrono::Utc>, window: Duration) -> bool {
        now - self.session.authenticated_at > window
    }
}

pub async fn start(
    db: &Database,
    clock: &dyn Clock,
    account_id: i64,
    ttl: Duration,
) -> AppResult<SecretToken> {
    let token = SecretToken::generate();
    let now = clock.now();
    session::ActiveModel {
        id: Set(token.hash().0),
        account_id: Set(account_id),
        created_at: Set(now),
        authenticated_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + ttl),
    }
    .insert(&db.conn)
    .await?;
    Ok(token)
}

/// The session behind a cookie value, if it is live and its account is active.
pub async fn resolve(db: &Database, clock: &dyn Clock, raw_token: &str) -> AppResult<Option<CurrentSession>> {
    let Some(token) = SecretToken::parse(raw_token) else {
        return Ok(None);
    };
    let Some(session) = session::Entity::find_by_id(token.hash().0).one(&db.conn).await? else {
        return Ok(None);
    };
    let Some(account) = account::Entity::find_by_id(session.account_id)
        .one(&db.conn)
        .await?
    else {
        return Ok(None);
    };
    if session.expires_at <= clock.now() || account.status != AccountStatus::Active {
        return Ok(None);
    }
    Ok(Some(CurrentSession { session, account }))
}

/// Records a fresh password check, restarting the re-authentication window.
pub async fn mark_reauthenticated(db: &Database, clock: &dyn Clock, session_id: &str) -> AppResult<()> {
    session::Entity::update_many()
        .col_expr(
            session::Column::AuthenticatedAt,
            sea_orm::sea_query::Expr::value(clock.now()),
        )
        .filter(session::Column::Id.eq(session_id))
        .exec(&db.conn)
        .await?;
    Ok(())
}

pub async fn end(db: &Database, raw_token: &str) -> AppResult<()> {
    if let Some(token) = SecretToken::parse(raw_token) {
        session::Entity::delete_by_id(token.hash().0)
            .exec(&db.conn)
            .await?;
    }
    Ok(())
}

/// Ends every session of an account, on every device. Takes any connection so it can run
/// inside the deletion transaction.
pub async fn end_all<C: ConnectionTrait>(conn: &C, account_id: i64) -> AppResult<u64> {
    Ok(session::Entity::delete_many()
        .filter(session::Column::AccountId.eq(account_id))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The log-in use case: throttle, check the password, open a session.
pub async fn log_in(
    state: &AppState,
    vsee_id: &str,
    password: &str,
    address: &str,
) -> AppResult<(account::Model, SecretToken)> {
    let now = state.clock.now();
    state
        .throttle
        .check_login(&state.db, vsee_id, address, now)
        .await?;
    match accounts::authenticate(&state.db, vsee_id, password).await {
        Ok(account) => {
            state
                .throttle
                .login_succeeded(&state.db, vsee_id, address)
                .await?;
            let token = start(&state.db, state.clock.as_ref(), account.id, state.session_ttl()).await?;
            tracing::info!(account_id = account.id, "logged in");
            Ok((account, token))
        }
        Err(e @ AppError::InvalidCredentials) => {
            state
                .throttle
                .login_failed(&state.db, vsee_id, address, now)
                .await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Proves the password again within a live session, restarting the re-authentication window.
pub async fn reauthenticate(
    state: &AppState,
    current: &CurrentSession,
    password: &str,
    address: &str,
) -> AppResult<()> {
    check_password(state, current, password, address).await?;
    mark_reauthenticated(&state.db, state.clock.as_ref(), &current.session.id).await
}

/// Checks the session's account password (throttled like log-ins) without recording
/// anything, for forms that prove it and act in the same request.
pub async fn check_password(
    state: &AppState,
    current: &CurrentSession,
    password: &str,
    address: &str,
) -> AppResult<()> {
    let now = state.clock.now();
    let id = &current.account.vsee_id;
    state.throttle.check_login(&state.db, id, address, now).await?;
    if !accounts::password_matches(password, &current.account.password_hash).await? {
        state.throttle.login_failed(&state.db, id, address, now).await?;
        return Err(AppError::InvalidCredentials);
    }
    Ok(())
}

/// Ends every session of an account but `keep` (the one that changed the password).
pub async fn end_others<C: ConnectionTrait>(conn: &C, account_id: i64, keep: &str) -> AppResult<u64> {
    Ok(session::Entity::delete_many()
        .filter(session::Column::AccountId.eq(account_id))
        .filter(session::Column::Id.ne(keep))
        .exec(conn)
        .await?
        .rows_affected)
}
