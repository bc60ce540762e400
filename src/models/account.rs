use sea_orm::entity::prelude::*;

use crate::domain::{AccountStatus, Plan};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Sealed under the account's data key (`vault`), as are the names, the notification
    /// address and the avatar's file name; `accounts::find*` hand them out opened.
    pub vsee_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: String,
    pub plan: Plan,
    pub offline_notification_email: Option<String>,
    pub offline_notification_enabled: bool,
    pub avatar_file: Option<String>,
    pub status: AccountStatus,
    /// Set when support approves a paid termination: billing stops before the purge runs.
    pub subscription_cancelled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The last log-in (before they were recorded: the newest session then kept). What
    /// bulk deletion of dormant accounts goes by.
    pub last_login_at: Option<DateTimeUtc>,
    /// Blind indexes: the keyed pseudonyms of the VSee ID and email, what log-in and lookups
    /// search by. `None` only on a row written before encryption that the migration job has
    /// not reached yet.
    #[sea_orm(unique)]
    pub vsee_id_index: Option<String>,
    #[sea_orm(unique)]
    pub email_index: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
