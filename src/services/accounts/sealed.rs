//! The account row as stored: its identifiers, names, notification address and avatar file
//! name sealed under the account's data key (`vault`), with blind indexes beside them for
//! log-in and lookups. Everything outside this module sees the account opened.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IdenStatic, Iterable,
    JoinType, QueryFilter, QueryResult, QueryTrait, Select, Statement, Value,
    sea_query::{Expr, ExprTrait, IntoCondition},
};

use crate::{
    domain::AccountStatus,
    error::{AppError, AppResult},
    models::{account, data_key, session},
    vault::{DataKey, KeyOwner, Vault, is_sealed},
};

pub const VSEE_ID: &str = "accounts.vsee_id";
pub const EMAIL: &str = "accounts.email";
pub const FIRST_NAME: &str = "accounts.first_name";
pub const LAST_NAME: &str = "accounts.last_name";
pub const NOTIFICATION_EMAIL: &str = "accounts.offline_notification_email";
pub const AVATAR_FILE: &str = "accounts.avatar_file";

/// Rows whose blind index is `blind`, or, for a row written before encryption that the
/// migration job has not reached yet, whose identifier in clear is `plain`.
pub fn matches(index: account::Column, blind: String, clear: account::Column, plain: &str) -> Condition {
    Condition::any()
        .add(index.eq(blind))
        .add(Condition::all().add(index.is_null()).add(clear.eq(plain)))
}

/// Writes `opened`'s personal fields sealed under `key`, and its blind indexes, in `conn`'s
/// transaction.
pub async fn write<C: ConnectionTrait>(
    conn: &C,
    vault: &Vault,
    key: &DataKey,
    opened: &account::Model,
) -> AppResult<()> {
    // An identifier stored before sign-up checked it may not parse: it is indexed as stored.
    let vsee_index = crate::domain::VseeId::parse(&opened.vsee_id)
        .map(|id| vault.blind_vsee_id(&id))
        .unwrap_or_else(|_| vault.blind_raw("vsee_id", &opened.vsee_id));
    let email_index = crate::domain::Email::parse(&opened.email)
        .map(|e| vault.blind_email(&e))
        .unwrap_or_else(|_| vault.blind_raw("email", &opened.email));
    account::Entity::update_many()
        .col_expr(
            account::Column::VseeId,
            Expr::value(key.seal(VSEE_ID, &opened.vsee_id)),
        )
        .col_expr(
            account::Column::Email,
            Expr::value(key.seal(EMAIL, &opened.email)),
        )
        .col_expr(
            account::Column::FirstName,
            Expr::value(key.seal(FIRST_NAME, &opened.first_name)),
        )
        .col_expr(
            account::Column::LastName,
            Expr::value(key.seal(LAST_NAME, &opened.last_name)),
        )
        .col_expr(
            account::Column::OfflineNotificationEmail,
            Expr::value(
                opened
                    .offline_notification_email
                    .as_deref()
                    .map(|e| key.seal(NOTIFICATION_EMAIL, e)),
            ),
        )
        .col_expr(
            account::Column::AvatarFile,
            Expr::value(opened.avatar_file.as_deref().map(|f| key.seal(AVATAR_FILE, f))),
        )
        .col_expr(account::Column::VseeIdIndex, Expr::value(vsee_index))
        .col_expr(account::Column::EmailIndex, Expr::value(email_index))
        .filter(account::Column::Id.eq(opened.id))
        .exec(conn)
        .await?;
    Ok(())
}

/// The account `id` opened, read with its data key in one statement (the key's row joined
/// on its owner name, `vault::KeyOwner::Account`'s `account:<id>`): a profile read costs the
/// account's SELECT and nothing more.
pub async fn find_opened<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    id: i64,
) -> AppResult<Option<account::Model>> {
    find_opened_where(vault, conn, account::Column::Id.eq(id)).await
}

/// The account `condition` finds, opened: its row and data key in one statement.
pub async fn find_opened_where<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    condition: impl IntoCondition,
) -> AppResult<Option<account::Model>> {
    match find_stored(conn, condition).await? {
        Some(stored) => open_stored(vault, conn, stored).await.map(Some),
        None => Ok(None),
    }
}

/// The live session `session_id` (unexpired at `now`) and its active account opened: session,
/// account and data key in one statement, the read every signed-in request starts with.
pub async fn find_opened_by_session<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    session_id: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<(session::Model, account::Model)>> {
    let statement = session_statement(conn.get_database_backend(), session_id, now);
    let Some(found) = conn.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let session = session::Model::from_query_result(&found, SESSION_PREFIX)?;
    let account = open_stored(vault, conn, Stored::from_found(&found)?).await?;
    Ok(Some((session, account)))
}

/// [`find_opened_by_session`]'s statement. Its text is built by sea-query once per backend
/// and reused with each request's values: every signed-in request runs it, and building it
/// took as much CPU as SQLite took to run it (bench (m)). A test holds the two equal.
fn session_statement(backend: DbBackend, session_id: &str, now: DateTime<Utc>) -> Statement {
    static SQLITE: OnceLock<String> = OnceLock::new();
    static POSTGRES: OnceLock<String> = OnceLock::new();
    let cache = match backend {
        DbBackend::Sqlite => &SQLITE,
        DbBackend::Postgres => &POSTGRES,
        _ => return session_select(session_id, now).build(backend),
    };
    let sql = cache.get_or_init(|| session_select(session_id, now).build(backend).sql);
    Statement::from_sql_and_values(
        backend,
        sql.clone(),
        [
            Value::from(session_id),
            Value::from(now),
            Value::from(AccountStatus::Active),
        ],
    )
}

/// The session's columns (prefixed) beside the account's and its data key's; the values bound
/// in this order: session id, `now`, the active status.
fn session_select(session_id: &str, now: DateTime<Utc>) -> Select<account::Entity> {
    let mut select = with_key(account::Entity::find())
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(account::Column::Status.eq(AccountStatus::Active));
    let query = QueryTrait::query(&mut select).join(
        JoinType::InnerJoin,
        session::Entity,
        Expr::col((session::Entity, session::Column::AccountId))
            .equals((account::Entity, account::Column::Id)),
    );
    for column in session::Column::iter() {
        query.expr_as(
            Expr::col((session::Entity, column)),
            format!("{SESSION_PREFIX}{}", IdenStatic::as_str(&column)),
        );
    }
    select
}

/// How [`find_opened_by_session`] names the session's columns beside the account's.
const SESSION_PREFIX: &str = "session_";

/// `select` with the account's data key joined, as `key_epoch` and `key_wrapped`.
fn with_key(mut select: Select<account::Entity>) -> Select<account::Entity> {
    QueryTrait::query(&mut select)
        .join(
            JoinType::LeftJoin,
            data_key::Entity,
            Expr::cust(r#""data_keys"."owner" = 'account:' || "accounts"."id""#),
        )
        .expr_as(
            Expr::col((data_key::Entity, data_key::Column::Epoch)),
            "key_epoch",
        )
        .expr_as(
            Expr::col((data_key::Entity, data_key::Column::Wrapped)),
            "key_wrapped",
        );
    select
}

/// An account row as stored, with its data key as stored beside it (a [`with_key`]
/// statement's row): what opening it needs, without another read.
#[derive(Debug)]
pub struct Stored {
    row: account::Model,
    key: Option<(i64, String)>,
}

impl Stored {
    /// The row, its personal fields still sealed.
    pub fn row(&self) -> &account::Model {
        &self.row
    }

    fn from_found(found: &QueryResult) -> AppResult<Self> {
        let row = account::Model::from_query_result(found, "")?;
        let epoch: Option<i64> = found.try_get("", "key_epoch")?;
        let wrapped: Option<String> = found.try_get("", "key_wrapped")?;
        Ok(Self {
            row,
            key: epoch.zip(wrapped),
        })
    }
}

/// The account `condition` finds, with its data key, in one statement; opened later with
/// [`open_stored`] (a log-in opens it only once the password matched).
pub async fn find_stored<C: ConnectionTrait>(
    conn: &C,
    condition: impl IntoCondition,
) -> AppResult<Option<Stored>> {
    let select = with_key(account::Entity::find().filter(condition));
    let statement = select.build(conn.get_database_backend());
    match conn.query_one_raw(statement).await? {
        Some(found) => Stored::from_found(&found).map(Some),
        None => Ok(None),
    }
}

/// The stored account opened with the key read beside it.
pub async fn open_stored<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    stored: Stored,
) -> AppResult<account::Model> {
    let Stored { row, key } = stored;
    match key {
        Some((epoch, wrapped)) => {
            let key = vault.unwrap(&KeyOwner::Account(row.id).name(), epoch, &wrapped)?;
            open_with(&key, row)
        }
        // No key: a row from before encryption (reads as it is), or one purged meanwhile.
        None => open(vault, conn, row).await,
    }
}

pub async fn open_some<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    row: Option<account::Model>,
) -> AppResult<Option<account::Model>> {
    match row {
        Some(row) => open(vault, conn, row).await.map(Some),
        None => Ok(None),
    }
}

/// The row with its fields opened. A row written before encryption reads as it is.
pub async fn open<C: ConnectionTrait>(
    vault: &Vault,
    conn: &C,
    row: account::Model,
) -> AppResult<account::Model> {
    let any_sealed = [&row.vsee_id, &row.email, &row.first_name, &row.last_name]
        .into_iter()
        .chain(row.offline_notification_email.as_ref())
        .chain(row.avatar_file.as_ref())
        .any(|v| is_sealed(v));
    if !any_sealed {
        return Ok(row);
    }
    let key = vault
        .key(conn, &KeyOwner::Account(row.id))
        .await?
        .ok_or_else(|| {
            AppError::internal(anyhow::anyhow!(
                "account {} has sealed fields and no data key",
                row.id
            ))
        })?;
    open_with(&key, row)
}

pub fn open_with(key: &DataKey, row: account::Model) -> AppResult<account::Model> {
    Ok(account::Model {
        vsee_id: key.open(VSEE_ID, &row.vsee_id)?,
        email: key.open(EMAIL, &row.email)?,
        first_name: key.open(FIRST_NAME, &row.first_name)?,
        last_name: key.open(LAST_NAME, &row.last_name)?,
        offline_notification_email: row
            .offline_notification_email
            .as_deref()
            .map(|e| key.open(NOTIFICATION_EMAIL, e))
            .transpose()?,
        avatar_file: row
            .avatar_file
            .as_deref()
            .map(|f| key.open(AVATAR_FILE, f))
            .transpose()?,
        ..row
    })
}

/// The ledger's pseudonyms of a stored row's VSee ID and email, without opening it: its blind
/// indexes are those pseudonyms (a row from before encryption still has them in clear).
pub fn subjects(keys: &crate::keys::Keys, row: &account::Model) -> (String, String) {
    (
        row.vsee_id_index
            .clone()
            .unwrap_or_else(|| keys.pseudonym("vsee_id", &row.vsee_id)),
        row.email_index
            .clone()
            .unwrap_or_else(|| keys.pseudonym("email", &row.email)),
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// The cached text with this request's values is exactly what sea-query builds for them,
    /// on both backends, whichever request filled the cache.
    #[test]
    fn the_cached_session_statement_is_the_built_one() {
        let first = Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).single().unwrap();
        let later = Utc.with_ymd_and_hms(2027, 3, 9, 23, 59, 58).single().unwrap();
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for (id, now) in [("a-session-hash", first), ("another-one", later)] {
                assert_eq!(
                    session_statement(backend, id, now),
                    session_select(id, now).build(backend),
                    "{backend:?}"
                );
            }
        }
    }
}
