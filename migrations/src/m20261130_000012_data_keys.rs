//! Crypto-shredding: each owner's data key (an account's, a ticket's, a confirmation
//! address's), wrapped under an epoch key kept outside the database; blind indexes (keyed
//! hashes) for the identifiers log-in, lookups and the ticket search go by, which replace the
//! unique indexes on the identifiers in clear; and, on PostgreSQL, text columns wide enough
//! for sealed values (SQLite does not enforce widths).

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{bigint, create_index, pk_string, string_null, text, timestamptz};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DataKeys {
    Table,
    Owner,
    Epoch,
    Wrapped,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    VseeIdIndex,
    EmailIndex,
}

#[derive(DeriveIden)]
enum Tickets {
    Table,
    SenderIndex,
}

/// Columns that hold sealed values from now on.
const SEALED_COLUMNS: &[(&str, &str)] = &[
    ("accounts", "vsee_id"),
    ("accounts", "email"),
    ("accounts", "first_name"),
    ("accounts", "last_name"),
    ("accounts", "offline_notification_email"),
    ("accounts", "avatar_file"),
    ("contacts", "nickname"),
    ("devices", "name"),
    ("devices", "push_token"),
    ("deletion_requests", "notify_email"),
    ("tickets", "sender"),
    ("ticket_replies", "sender"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DataKeys::Table)
                    .col(pk_string(DataKeys::Owner, 96))
                    .col(bigint(DataKeys::Epoch))
                    .col(text(DataKeys::Wrapped))
                    .col(timestamptz(DataKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_data_keys_epoch",
            DataKeys::Table,
            vec![DataKeys::Epoch.into_iden()],
            false,
        )
        .await?;
        for column in [
            string_null(Accounts::VseeIdIndex, 64),
            string_null(Accounts::EmailIndex, 64),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        create_index(
            manager,
            "idx_accounts_vsee_id_index",
            Accounts::Table,
            vec![Accounts::VseeIdIndex.into_iden()],
            true,
        )
        .await?;
        create_index(
            manager,
            "idx_accounts_email_index",
            Accounts::Table,
            vec![Accounts::EmailIndex.into_iden()],
            true,
        )
        .await?;
        // A ticket's sender, sealed under the ticket's key, is found by its blind index.
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .add_column(string_null(Tickets::SenderIndex, 64))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_tickets_sender_index",
            Tickets::Table,
            vec![Tickets::SenderIndex.into_iden()],
            false,
        )
        .await?;
        // The indexes on identifiers in clear go: sealed values are never searched, and an
        // index would keep a copy of every identifier the table ever held.
        for name in ["idx_accounts_vsee_id", "idx_accounts_email"] {
            manager
                .drop_index(Index::drop().name(name).table(Accounts::Table).to_owned())
                .await?;
        }
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            let db = manager.get_connection();
            for (table, column) in SEALED_COLUMNS {
                db.execute_unprepared(&format!("ALTER TABLE {table} ALTER COLUMN {column} TYPE text"))
                    .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tickets_sender_index")
                    .table(Tickets::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Tickets::Table)
                    .drop_column(Tickets::SenderIndex)
                    .to_owned(),
            )
            .await?;
        for name in ["idx_accounts_vsee_id_index", "idx_accounts_email_index"] {
            manager
                .drop_index(Index::drop().name(name).table(Accounts::Table).to_owned())
                .await?;
        }
        for (name, column) in [
            ("idx_accounts_vsee_id", "vsee_id"),
            ("idx_accounts_email", "email"),
        ] {
            create_index(
                manager,
                name,
                Accounts::Table,
                vec![Alias::new(column).into_iden()],
                true,
            )
            .await?;
        }
        for column in [Accounts::VseeIdIndex, Accounts::EmailIndex] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Accounts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(DataKeys::Table).to_owned())
            .await
    }
}
