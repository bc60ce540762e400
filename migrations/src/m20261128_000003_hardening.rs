//! What the free path needed under hostile input and faults:
//! - retries are scheduled re-enqueues: an outbox row carries the attempt it will run as and
//!   the time before which the relay must not push it;
//! - a confirmation that could not be delivered is recorded, so the deletion completes without
//!   it;
//! - failed log-ins are counted in the database, so every API process enforces one limit;
//! - account notices (reset links, "your email was changed") are jobs, with their own table.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{
    bigint_null, create_index, fk, integer, pk_string, string, text_null, timestamptz, timestamptz_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    NotBefore,
    Attempt,
}

#[derive(DeriveIden)]
enum DeletionRequests {
    Table,
    EmailFailedAt,
}

#[derive(DeriveIden)]
enum ThrottleCounters {
    Table,
    Key,
    Hits,
    LastHitAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    Id,
    Kind,
    AccountId,
    Recipient,
    CreatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            timestamptz_null(Outbox::NotBefore),
            integer(Outbox::Attempt).default(1).to_owned(),
        ] {
            manager
                .alter_table(Table::alter().table(Outbox::Table).add_column(column).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(DeletionRequests::Table)
                    .add_column(timestamptz_null(DeletionRequests::EmailFailedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ThrottleCounters::Table)
                    // A keyed hash of what is counted (a login and an address): no identifier
                    // or address is stored in clear.
                    .col(pk_string(ThrottleCounters::Key, 64))
                    .col(integer(ThrottleCounters::Hits))
                    .col(timestamptz(ThrottleCounters::LastHitAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_throttle_counters_last_hit_at",
            ThrottleCounters::Table,
            vec![ThrottleCounters::LastHitAt.into_iden()],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(pk_string(Notifications::Id, 36))
                    .col(string(Notifications::Kind, 32))
                    // Null for a reset asked for an account that does not exist: the request
                    // does the same work either way, and the job sends nothing.
                    .col(bigint_null(Notifications::AccountId))
                    // Only where the address is not the account's current one (the old
                    // address after a change); cleared once sent.
                    .col(text_null(Notifications::Recipient))
                    .col(timestamptz(Notifications::CreatedAt))
                    .col(timestamptz_null(Notifications::SentAt))
                    .foreign_key(&mut fk(
                        "fk_notifications_account_id",
                        Notifications::Table,
                        Notifications::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_notifications_account_id",
            Notifications::Table,
            vec![Notifications::AccountId.into_iden()],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Notifications::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ThrottleCounters::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeletionRequests::Table)
                    .drop_column(DeletionRequests::EmailFailedAt)
                    .to_owned(),
            )
            .await?;
        for column in [Outbox::Attempt, Outbox::NotBefore] {
            manager
                .alter_table(Table::alter().table(Outbox::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
