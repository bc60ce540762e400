//! Server-side sessions: the cookie holds a random token, the table holds its hash and the
//! account, so "log out every device of this account" is one DELETE.

use chrono::Duration;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::{
    clock::Clock,
    db::Database,
    domain::SecretToken,
    env::Env,
    error::{AppError, AppResult},
    models::{account, session},
    services::accounts,
    throttle::Throttle,
};

/// The session cookie's name, for pages and API alike.
pub const COOKIE: &str = "erasure_session";

/// When the account last proved its password, over the sessions still kept (logging out
/// removes one); `None` when it has none.
pub async fn last_login(db: &Database, account_id: i64) -> AppResult<Option<chrono::DateTime<chrono::Utc>>> {
    use sea_orm::QueryOrder;
    Ok(session::Entity::find()
        .filter(session::Column::AccountId.eq(account_id))
        .order_by_desc(session::Column::AuthenticatedAt)
        .one(&db.conn)
        .await?
        .map(|s| s.authenticated_at))
}

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
    let tx = db.begin_write().await?;
    let token = open(&tx, clock.now(), account_id, ttl).await?;
    tx.commit().await?;
    Ok(token)
}

/// Opens a session inside the caller's transaction and records the log-in on the account.
async fn open<C: ConnectionTrait>(
    conn: &C,
    now: chrono::DateTime<chrono::Utc>,
    account_id: i64,
    ttl: Duration,
) -> AppResult<SecretToken> {
    let token = SecretToken::generate();
    session::ActiveModel {
        id: Set(token.hash().0),
        account_id: Set(account_id),
        created_at: Set(now),
        authenticated_at: Set(now),
        last_seen_at: Set(now),
        expires_at: Set(now + ttl),
    }
    .insert(conn)
    .await?;
    account::Entity::update_many()
        .col_expr(account::Column::LastLoginAt, sea_orm::sea_query::Expr::value(now))
        .filter(account::Column::Id.eq(account_id))
        .exec(conn)
        .await?;
    Ok(token)
}

/// The session behind a cookie value, if it is live and its account is active.
pub async fn resolve(env: Env<'_>, raw_token: &str) -> AppResult<Option<CurrentSession>> {
    let Some(token) = SecretToken::parse(raw_token) else {
        return Ok(None);
    };
    let found =
        accounts::sealed::find_opened_by_session(env.vault, &env.db.conn, &token.hash().0, env.now()).await?;
    Ok(found.map(|(session, account)| CurrentSession { session, account }))
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

/// Who is proving a password, and how hard that is made: the throttle and the client's
/// address it counts under.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub throttle: &'a Throttle,
    pub address: &'a str,
}

/// The log-in use case: throttle, check the password, open a session lasting `ttl`.
pub async fn log_in(
    env: Env<'_>,
    attempt: Attempt<'_>,
    ttl: Duration,
    vsee_id: &str,
    password: &str,
) -> AppResult<(account::Model, SecretToken)> {
    let now = env.now();
    let Attempt { throttle, address } = attempt;
    throttle.check_login(env.db, vsee_id, address, now).await?;
    match accounts::authenticate(env, vsee_id, password).await {
        Ok(account) => {
            // One transaction: the forgiven failures and the new session land together.
            let tx = env.db.begin_write().await?;
            throttle.login_succeeded(&tx, vsee_id, address).await?;
            let token = open(&tx, now, account.id, ttl).await?;
            tx.commit().await?;
            tracing::info!(account_id = account.id, "logged in");
            Ok((account, token))
        }
        Err(e @ AppError::InvalidCredentials) => {
            throttle.login_failed(env.db, vsee_id, address, now).await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Proves the password again within a live session, restarting the re-authentication window.
pub async fn reauthenticate(
    env: Env<'_>,
    attempt: Attempt<'_>,
    current: &CurrentSession,
    password: &str,
) -> AppResult<()> {
    check_password(env, attempt, current, password).await?;
    mark_reauthenticated(env.db, env.clock, &current.session.id).await
}

/// Checks the session's account password (throttled like log-ins) without recording
/// anything, for forms that prove it and act in the same request.
pub async fn check_password(
    env: Env<'_>,
    attempt: Attempt<'_>,
    current: &CurrentSession,
    password: &str,
) -> AppResult<()> {
    let now = env.now();
    let id = &current.account.vsee_id;
    attempt
        .throttle
        .check_login(env.db, id, attempt.address, now)
        .await?;
    if !accounts::password_matches(password, &current.account.password_hash).await? {
        attempt
            .throttle
            .login_failed(env.db, id, attempt.address, now)
            .await?;
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
