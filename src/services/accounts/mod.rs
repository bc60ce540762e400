//! Accounts: sign-up, log-in checks and profile changes. Rows are read and written through
//! [`sealed`]: what the rest of the service sees is always the account opened.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    Set, sea_query::Expr,
};

mod passwords;
pub mod sealed;

pub use passwords::{hash_password, password_matches, password_matches_or_decoy};

use crate::{
    domain::{AccountStatus, Email, Password, PersonName, Plan, VseeId},
    env::Env,
    error::{AppError, AppResult},
    keys::Keys,
    models::account,
    vault::KeyOwner,
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

/// A sign-up: [`create`], refused while the email or VSee ID cools off after a deletion
/// (`services::reuse`).
pub async fn register(env: Env<'_>, keys: &Keys, new: NewAccount) -> AppResult<account::Model> {
    super::reuse::refuse_if_cooling_off(env.db, keys, env.now(), Some(&new.vsee_id), Some(&new.email))
        .await?;
    create(env, new).await
}

/// Creates the account with its data key: the row, the key and the sealed fields commit
/// together. Returns the account opened.
pub async fn create(env: Env<'_>, new: NewAccount) -> AppResult<account::Model> {
    if row_by_vsee_id(env, &new.vsee_id).await?.is_some() {
        return Err(AppError::Conflict("that VSee ID is already taken".into()));
    }
    if row_by_email(env, &new.email).await?.is_some() {
        return Err(AppError::Conflict(
            "an account with that email already exists".into(),
        ));
    }
    let hash = hash_password(&new.password).await?;
    let tx = env.db.begin_write().await?;
    let opened = insert(&tx, env, &new, hash).await?;
    tx.commit().await?;
    Ok(opened)
}

/// Inserts an account with its data key and its fields sealed, in `tx` (the row first: its
/// id names the key; nothing in clear is ever committed). `password_hash` is `new`'s
/// password hashed (the seeder hashes one for many peers).
pub async fn insert(
    tx: &DatabaseTransaction,
    env: Env<'_>,
    new: &NewAccount,
    password_hash: String,
) -> AppResult<account::Model> {
    let now = env.now();
    let row = account::ActiveModel {
        vsee_id: Set(String::new()),
        email: Set(String::new()),
        first_name: Set(String::new()),
        last_name: Set(String::new()),
        vsee_id_index: Set(Some(env.vault.blind_vsee_id(&new.vsee_id))),
        email_index: Set(Some(env.vault.blind_email(&new.email))),
        password_hash: Set(password_hash),
        plan: Set(new.plan),
        offline_notification_email: Set(None),
        offline_notification_enabled: Set(false),
        avatar_file: Set(None),
        status: Set(AccountStatus::Active),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    // A concurrent sign-up with the same ID loses on the unique index: AppError maps it to 409.
    .insert(tx)
    .await?;
    let key = env.vault.create_key(tx, &KeyOwner::Account(row.id), now).await?;
    let opened = account::Model {
        vsee_id: new.vsee_id.as_str().to_owned(),
        email: new.email.as_str().to_owned(),
        first_name: new.first_name.as_str().to_owned(),
        last_name: new.last_name.as_str().to_owned(),
        ..row
    };
    sealed::write(tx, env.vault, &key, &opened).await?;
    Ok(opened)
}

pub async fn find(env: Env<'_>, id: i64) -> AppResult<Option<account::Model>> {
    sealed::find_opened(env.vault, &env.db.conn, id).await
}

pub async fn find_by_vsee_id(env: Env<'_>, id: &VseeId) -> AppResult<Option<account::Model>> {
    sealed::find_opened_where(env.vault, &env.db.conn, by_vsee_id(env, id)).await
}

pub async fn find_by_email(env: Env<'_>, email: &Email) -> AppResult<Option<account::Model>> {
    sealed::find_opened_where(env.vault, &env.db.conn, by_email(env, email)).await
}

fn by_vsee_id(env: Env<'_>, id: &VseeId) -> Condition {
    sealed::matches(
        account::Column::VseeIdIndex,
        env.vault.blind_vsee_id(id),
        account::Column::VseeId,
        id.as_str(),
    )
}

fn by_email(env: Env<'_>, email: &Email) -> Condition {
    sealed::matches(
        account::Column::EmailIndex,
        env.vault.blind_email(email),
        account::Column::Email,
        email.as_str(),
    )
}

/// The account's row as stored (its fields sealed): for what needs only its id and state,
/// with the same statements whether it exists or not.
pub async fn row_by_vsee_id(env: Env<'_>, id: &VseeId) -> AppResult<Option<account::Model>> {
    Ok(account::Entity::find()
        .filter(by_vsee_id(env, id))
        .one(&env.db.conn)
        .await?)
}

/// [`row_by_vsee_id`] by email.
pub async fn row_by_email(env: Env<'_>, email: &Email) -> AppResult<Option<account::Model>> {
    Ok(account::Entity::find()
        .filter(by_email(env, email))
        .one(&env.db.conn)
        .await?)
}

/// Checks a VSee ID and password. Every failure is the same `InvalidCredentials`, so the
/// answer does not tell whether the ID exists; the account is opened only once the password
/// matched, so a refusal runs the same statements either way.
pub async fn authenticate(env: Env<'_>, vsee_id: &str, password: &str) -> AppResult<account::Model> {
    // The row and its data key in one statement; opened with that key once the password matched.
    let stored = match VseeId::parse(vsee_id) {
        Ok(id) => sealed::find_stored(&env.db.conn, by_vsee_id(env, &id)).await?,
        Err(_) => None,
    };
    let stored = stored.filter(|s| s.row().status == AccountStatus::Active);
    let hash = stored.as_ref().map(|s| s.row().password_hash.as_str());
    if !password_matches_or_decoy(password, hash).await? {
        return Err(AppError::InvalidCredentials);
    }
    match stored {
        Some(stored) => sealed::open_stored(env.vault, &env.db.conn, stored).await,
        None => Err(AppError::InvalidCredentials),
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
