//! Staff: support agents, auditors and administrators, with sessions of their own.
//!
//! A staff member logs in with an email and a password (argon2id, throttled as account holders'
//! log-ins are, under counters of their own). Their session lives in `staff_sessions`, under a
//! cookie of its own, so an account holder's session never opens a staff door and the other
//! way round. Staff sessions expire (`security.staff_session_ttl_hours`), and disabling a
//! staff member ends every session of theirs at once: a session is only live while its staff
//! member is enabled.

use chrono::Duration;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    db::Database,
    domain::{Email, Password, PersonName, SecretToken, StaffRole},
    env::Env,
    error::{AppError, AppResult},
    models::{staff, staff_session},
    services::{accounts, sessions::Attempt},
};

/// The staff session cookie's name, apart from account holders' `erasure_session`.
pub const COOKIE: &str = "erasure_staff";

#[derive(Debug)]
pub struct NewStaff {
    pub email: Email,
    pub name: PersonName,
    pub role: StaffRole,
    pub password: Password,
}

/// A live staff session and its (enabled) staff member.
#[derive(Debug, Clone)]
pub struct StaffSession {
    pub session: staff_session::Model,
    pub staff: staff::Model,
}

pub async fn create(env: Env<'_>, new: NewStaff) -> AppResult<staff::Model> {
    if find_by_email(env.db, &new.email).await?.is_some() {
        return Err(AppError::Conflict(
            "a staff member with that email already exists".into(),
        ));
    }
    let hash = accounts::hash_password(&new.password).await?;
    let created = staff::ActiveModel {
        email: Set(new.email.as_str().to_owned()),
        name: Set(new.name.as_str().to_owned()),
        role: Set(new.role),
        password_hash: Set(hash),
        created_at: Set(env.now()),
        disabled_at: Set(None),
        ..Default::default()
    }
    .insert(&env.db.conn)
    .await?;
    tracing::info!(
        staff_id = created.id,
        role = created.role.as_str(),
        "staff member created"
    );
    Ok(created)
}

pub async fn find_by_email(db: &Database, email: &Email) -> AppResult<Option<staff::Model>> {
    Ok(staff::Entity::find()
        .filter(staff::Column::Email.eq(email.as_str()))
        .one(&db.conn)
        .await?)
}

pub async fn find(db: &Database, id: i64) -> AppResult<Option<staff::Model>> {
    Ok(staff::Entity::find_by_id(id).one(&db.conn).await?)
}

/// Staff members by id, in one query: a page names every agent it mentions.
pub async fn by_ids(db: &Database, ids: &[i64]) -> AppResult<std::collections::HashMap<i64, staff::Model>> {
    if ids.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    Ok(staff::Entity::find()
        .filter(staff::Column::Id.is_in(ids.iter().copied()))
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect())
}

/// Disables a staff member and ends their sessions, in one transaction.
pub async fn disable(env: Env<'_>, email: &Email) -> AppResult<staff::Model> {
    let member = find_by_email(env.db, email).await?.ok_or(AppError::NotFound)?;
    let tx = env.db.begin_write().await?;
    staff::Entity::update_many()
        .col_expr(
            staff::Column::DisabledAt,
            Expr::col(staff::Column::DisabledAt).if_null(env.now()),
        )
        .filter(staff::Column::Id.eq(member.id))
        .exec(&tx)
        .await?;
    staff_session::Entity::delete_many()
        .filter(staff_session::Column::StaffId.eq(member.id))
        .exec(&tx)
        .await?;
    tx.commit().await?;
    tracing::info!(staff_id = member.id, "staff member disabled");
    Ok(member)
}

/// Staff log-in counters are kept apart from account holders' (a VSee ID may look like an
/// email's local part, never like a whole address, but the key says which door anyway).
fn throttle_login(email: &str) -> String {
    format!("staff:{}", email.trim().to_lowercase())
}

/// Checks an email and password, throttled, and opens a staff session lasting `ttl`. Every
/// failure is the same `InvalidCredentials`, whether the email is unknown, the password wrong
/// or the member disabled.
pub async fn log_in(
    env: Env<'_>,
    attempt: Attempt<'_>,
    ttl: Duration,
    email: &str,
    password: &str,
) -> AppResult<(staff::Model, SecretToken)> {
    let now = env.now();
    let login = throttle_login(email);
    attempt
        .throttle
        .check_login(env.db, &login, attempt.address, now)
        .await?;
    let member = match Email::parse(email) {
        Ok(email) => find_by_email(env.db, &email).await?,
        Err(_) => None,
    }
    .filter(|m| m.disabled_at.is_none());
    let matches =
        accounts::password_matches_or_decoy(password, member.as_ref().map(|m| m.password_hash.as_str()))
            .await?;
    let Some(member) = member.filter(|_| matches) else {
        attempt
            .throttle
            .login_failed(env.db, &login, attempt.address, now)
            .await?;
        return Err(AppError::InvalidCredentials);
    };
    // One transaction: the forgiven failures and the new session land together.
    let tx = env.db.begin_write().await?;
    attempt
        .throttle
        .login_succeeded(&tx, &login, attempt.address)
        .await?;
    let token = SecretToken::generate();
    staff_session::ActiveModel {
        id: Set(token.hash().0),
        staff_id: Set(member.id),
        created_at: Set(now),
        expires_at: Set(now + ttl),
    }
    .insert(&tx)
    .await?;
    tx.commit().await?;
    tracing::info!(staff_id = member.id, "staff logged in");
    Ok((member, token))
}

/// The live staff session behind a cookie value: unexpired, of an enabled member.
pub async fn resolve(env: Env<'_>, raw_token: &str) -> AppResult<Option<StaffSession>> {
    let Some(token) = SecretToken::parse(raw_token) else {
        return Ok(None);
    };
    let Some(session) = staff_session::Entity::find_by_id(token.hash().0)
        .one(&env.db.conn)
        .await?
    else {
        return Ok(None);
    };
    let staff = staff::Entity::find_by_id(session.staff_id)
        .one(&env.db.conn)
        .await?;
    Ok(staff
        .filter(|s| s.disabled_at.is_none() && session.expires_at > env.now())
        .map(|staff| StaffSession { session, staff }))
}

pub async fn end(db: &Database, raw_token: &str) -> AppResult<()> {
    if let Some(token) = SecretToken::parse(raw_token) {
        staff_session::Entity::delete_by_id(token.hash().0)
            .exec(&db.conn)
            .await?;
    }
    Ok(())
}
