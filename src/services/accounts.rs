//! Accounts: sign-up, log-in checks and profile changes.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::{
    clock::Clock,
    db::Database,
    domain::{Email, Password, PersonName, Plan, VseeId},
    error::{AppError, AppResult},
    models::account::{self, STATUS_ACTIVE},
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

/// A change to an account's profile or credentials, applied as one UPDATE: all of it or none.
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

impl AccountChange {
    /// Email and password changes need the current password.
    pub fn touches_credentials(&self) -> bool {
        self.email.is_some() || self.password.is_some()
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

async fn decoy_hash() -> AppResult<String> {
    if let Some(h) = DECOY_HASH.get() {
        return Ok(h.clone());
    }
    let h = tokio::task::spawn_blocking(|| password_auth::generate_hash("decoy password"))
        .await
        .map_err(AppError::internal)?;
    Ok(DECOY_HASH.get_or_init(|| h).clone())
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
        plan: Set(new.plan.as_str().to_owned()),
        offline_notification_email: Set(None),
        offline_notification_enabled: Set(false),
        avatar_file: Set(None),
        status: Set(STATUS_ACTIVE.to_owned()),
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
        Some(a) if a.status == STATUS_ACTIVE => {
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

pub async fn update(
    db: &Database,
    clock: &dyn Clock,
    account_id: i64,
    change: AccountChange,
    current_password: Option<&str>,
) -> AppResult<account::Model> {
    let account = find(db, account_id).await?.ok_or(AppError::Unauthenticated)?;
    if change.touches_credentials() {
        let given = current_password.filter(|p| !p.is_empty()).ok_or_else(|| {
            AppError::InvalidInput("changing the email or the password needs the current password".into())
        })?;
        if !password_matches(given, &account.password_hash).await? {
            return Err(AppError::InvalidCredentials);
        }
    }
    if let Some(email) = &change.email
        && email.as_str() != account.email
        && find_by_email(db, email).await?.is_some()
    {
        return Err(AppError::Conflict(
            "an account with that email already exists".into(),
        ));
    }
    let new_hash = match &change.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    let mut active: account::ActiveModel = account.into();
    if let Some(n) = change.first_name {
        active.first_name = Set(n.as_str().to_owned());
    }
    if let Some(n) = change.last_name {
        active.last_name = Set(n.as_str().to_owned());
    }
    if let Some(e) = change.offline_notification_email {
        active.offline_notification_email = Set(e.map(|e| e.as_str().to_owned()));
    }
    if let Some(on) = change.offline_notification_enabled {
        active.offline_notification_enabled = Set(on);
    }
    if let Some(e) = change.email {
        active.email = Set(e.as_str().to_owned());
    }
    if let Some(h) = new_hash {
        active.password_hash = Set(h);
    }
    active.updated_at = Set(clock.now());
    Ok(active.update(&db.conn).await?)
}

pub async fn set_password(
    db: &Database,
    clock: &dyn Clock,
    account: account::Model,
    new_password: &Password,
) -> AppResult<()> {
    let hash = hash_password(new_password).await?;
    let mut active: account::ActiveModel = account.into();
    active.password_hash = Set(hash);
    active.updated_at = Set(clock.now());
    active.update(&db.conn).await?;
    Ok(())
}

pub fn plan_of(account: &account::Model) -> Plan {
    Plan::parse(&account.plan).unwrap_or(Plan::Paid)
}
