//! The account row as stored: its identifiers, names, notification address and avatar file
//! name sealed under the account's data key (`vault`), with blind indexes beside them for
//! log-in and lookups. Everything outside this module sees the account opened.

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, sea_query::Expr};

use crate::{
    error::{AppError, AppResult},
    models::account,
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
