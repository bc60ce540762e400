//! Accounts: sign-up, log-in checks and profile changes.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};

use crate::{
    clock::Clock,
    db::Database,
    domain::{AccountStatus, Email, Password, PersonName, Plan, VseeId},
    error::{AppError, AppResult},
    keys::Keys,
    models::account,
};

#[derive(Debug)]
pub struct NewAccount {
    pub vsee_id: VseeId,
    pub email: Email,
    pub password: Password,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub plan: Plan,
}

impl NewAccount {
    /// A self-service sign-up: always a free account.
    pub fn parse_free(
        vsee_id: &str,
        email: &str,
        password: &str,
        first_name: &str,
        last_name: &str,
    ) -> Result<Self, crate::domain::ParseError> {
        Ok(Self {
            vsee_id: VseeId::parse(vsee_id)?,
            email: Email::parse(email)?,
            password: Password::parse(password)?,
            first_name: PersonName::parse(first_name)?,
            last_name: PersonName::parse(last_name)?,
            plan: Plan::Free,
        })
    }
}

/// Hashing is deliberately slow (argon2id); keep it off the async threads.
pub async fn hash_password(password: &Password) -> AppResult<String> {
    let pw = password.expose().to_owned();
    tokio::task::spawn_blocking(move || password_auth::generate_hash(pw))
        .await
        .map_err(AppError::internal)
}

pub async fn password_matches(password: &str, hash: &str) -> AppResult<bool> {
    let (pw, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || password_auth::verify_password(pw, &hash).is_ok())
        .await
        .map_err(AppError::internal)
}

/// A hash of a password nobody has, verified when the ID is unknown, so an unknown ID takes
/// as long to refuse as a wrong password.
static DECOY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Checks `password` against `hash`, or, when there is no hash (no such account), against a
/// decoy, so that the refusal takes as long either way.
pub async fn password_matches_or_decoy(password: &str, hash: Option<&str>) -> AppResult<bool> {
    match hash {
        Some(hash) => password_matches(password, hash).await,
        None => {
            let decoy = decoy_hash().await?;
            password_matches(password, &decoy).await.map(|_| false)
        }
    }
}

async fn decoy_hash() -> AppResult<String> {
    if let Some(h) = DECOY_HASH.get() {
        return Ok(h.clone());
    }
    let h = tokio::task::spawn_blocking(|| password_auth::generate_hash("decoy password"))
        .await
        .map_err(AppError::internal)?;
    Ok(DECOY_HASH.get_or_init(|| h).clone())
}

/// A sign-up: [`create`], refused while the email or VSee ID cools off after a deletion
/// (`services::reuse`).
pub async fn register(
    db: &Database,
    clock: &dyn Clock,
    keys: &Keys,
    new: NewAccount,
) -> AppResult<account::Model> {
    super::reuse::refuse_if_cooling_off(db, keys, clock.now(), Some(&new.vsee_id), Some(&new.email)).await?;
    create(db, clock, new).await
}

pub async fn create(db: &Database, clock: &dyn Clock, new: NewAccount) -> AppResult<account::Model> {
    if find_by_vsee_id(db, &new.vsee_id).await?.is_some() {
        return Err(AppError::Conflict("that VSee ID is already taken".into()));
    }
    if find_by_email(db, &new.email).await?.is_some() {
        return Err(AppError::Conflict(
            "an account with that email already exists".into(),
        ));
    }
    let now = clock.now();
    let hash = hash_password(&new.password).await?;
    let model = account::ActiveModel {
        vsee_id: Set(new.vsee_id.as_str().to_owned()),
        email: Set(new.email.as_str().to_owned()),
        first_name: Set(new.first_name.as_str().to_owned()),
        last_name: Set(new.last_name.as_str().to_owned()),
        password_hash: Set(hash),
        plan: Set(new.plan),
        offline_notification_email: Set(None),
        offline_notification_enabled: Set(false),
        avatar_file: Set(None),
        status: Set(AccountStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    // A concurrent sign-up with the same ID loses on the unique index: AppError maps it to 409.
    Ok(model.insert(&db.conn).await?)
}

pub async fn find(db: &Database, id: i64) -> AppResult<Option<account::Model>> {
    Ok(account::Entity::find_by_id(id).one(&db.conn).await?)
}

pub async fn find_by_vsee_id(db: &Database, id: &VseeId) -> AppResult<Option<account::Model>> {
    Ok(account::Entity::find()
        .filter(account::Column::VseeId.eq(id.as_str()))
        .one(&db.conn)
        .await?)
}

pub async fn find_by_email(db: &Database, email: &Email) -> AppResult<Option<account::Model>> {
    Ok(account::Entity::find()
        .filter(account::Column::Email.eq(email.as_str()))
        .one(&db.conn)
        .await?)
}

/// Checks a VSee ID and password. Every failure is the same `InvalidCredentials`, so the
/// answer does not tell whether the ID exists.
pub async fn authenticate(db: &Database, vsee_id: &str, password: &str) -> AppResult<account::Model> {
    let account = match VseeId::parse(vsee_id) {
        Ok(id) => find_by_vsee_id(db, &id).await?,
        Err(_) => None,
    };
    match account {
        Some(a) if a.status == AccountStatus::Active => {
            if password_matches(password, &a.password_hash).await? {
                Ok(a)
            } else {
                Err(AppError::InvalidCredentials)
            }
        }
        _ => {
            let decoy = decoy_hash().await?;
            let _ = password_matches(password, &decoy).await?;
            Err(AppError::InvalidCredentials)
        }
    }
}

/// Stores a new password hash, inside the caller's transaction.
pub async fn set_password_hash<C: ConnectionTrait>(
    conn: &C,
    account_id: i64,
    hash: String,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    account::Entity::update_many()
        .col_expr(account::Column::PasswordHash, Expr::value(hash))
        .col_expr(account::Column::UpdatedAt, Expr::value(now))
        .filter(account::Column::Id.eq(account_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub fn plan_of(account: &account::Model) -> Plan {
    account.plan
}
