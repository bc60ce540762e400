//! What users ask of deletion beyond the button: a grace period they can undo (when the purge
//! may start, the hash of the one-time cancel link, who cancelled and why), names held back
//! after a deletion (only as the ledger's keyed pseudonyms, each with its end), and each
//! downstream processor's notice of a completed deletion (its attempts and acknowledgement),
//! the account holder's takeout archives (progress, file, expiry; purged with the account), and
//! what bulk deletion of dormant accounts needs: each account's last log-in, and each run.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{
    bigint, bigint_null, create_index, fk, integer, pk_string, string, string_null, text_null, timestamptz,
    timestamptz_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeletionRequests {
    Table,
    PurgeAfter,
    CancelHash,
    CancelledAt,
    CancelledBy,
    CancelReason,
}

#[derive(DeriveIden)]
enum ReuseBlocks {
    Table,
    Pseudonym,
    Until,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ProcessorDeliveries {
    Table,
    Id,
    RequestId,
    Processor,
    CreatedAt,
    Attempts,
    LastAttemptAt,
    LastStatus,
    LastError,
    AcknowledgedAt,
    DeadAt,
}

#[derive(DeriveIden)]
enum DataExports {
    Table,
    Id,
    AccountId,
    Status,
    ItemsDone,
    ItemsTotal,
    FileName,
    Bytes,
    CreatedAt,
    FinishedAt,
    ExpiresAt,
    LastError,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum BulkRuns {
    Table,
    Id,
    StaffId,
    InactiveSince,
    CreatedAt,
    LastAccountId,
    Requested,
    Skipped,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite adds no more at once.
        for column in [
            timestamptz_null(DeletionRequests::PurgeAfter),
            string_null(DeletionRequests::CancelHash, 64),
            timestamptz_null(DeletionRequests::CancelledAt),
            string_null(DeletionRequests::CancelledBy, 64),
            text_null(DeletionRequests::CancelReason),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeletionRequests::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        create_index(
            manager,
            "idx_deletion_requests_cancel_hash",
            DeletionRequests::Table,
            vec![DeletionRequests::CancelHash.into_iden()],
            true,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReuseBlocks::Table)
                    .col(pk_string(ReuseBlocks::Pseudonym, 64))
                    .col(timestamptz(ReuseBlocks::Until))
                    .col(timestamptz(ReuseBlocks::CreatedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_reuse_blocks_until",
            ReuseBlocks::Table,
            vec![ReuseBlocks::Until.into_iden()],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProcessorDeliveries::Table)
                    .col(pk_string(ProcessorDeliveries::Id, 36))
                    .col(string(ProcessorDeliveries::RequestId, 36))
                    .col(string(ProcessorDeliveries::Processor, 64))
                    .col(timestamptz(ProcessorDeliveries::CreatedAt))
                    .col(integer(ProcessorDeliveries::Attempts).default(0))
                    .col(timestamptz_null(ProcessorDeliveries::LastAttemptAt))
                    .col(ColumnDef::new(ProcessorDeliveries::LastStatus).integer().null())
                    .col(text_null(ProcessorDeliveries::LastError))
                    .col(timestamptz_null(ProcessorDeliveries::AcknowledgedAt))
                    .col(timestamptz_null(ProcessorDeliveries::DeadAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_processor_deliveries_request_processor",
            ProcessorDeliveries::Table,
            vec![
                ProcessorDeliveries::RequestId.into_iden(),
                ProcessorDeliveries::Processor.into_iden(),
            ],
            true,
        )
        .await?;
        create_index(
            manager,
            "idx_processor_deliveries_processor_acknowledged",
            ProcessorDeliveries::Table,
            vec![
                ProcessorDeliveries::Processor.into_iden(),
                ProcessorDeliveries::AcknowledgedAt.into_iden(),
            ],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(DataExports::Table)
                    .col(pk_string(DataExports::Id, 36))
                    .col(bigint(DataExports::AccountId))
                    .col(string(DataExports::Status, 16))
                    .col(bigint(DataExports::ItemsDone).default(0))
                    .col(bigint(DataExports::ItemsTotal).default(0))
                    .col(string_null(DataExports::FileName, 128))
                    .col(bigint_null(DataExports::Bytes))
                    .col(timestamptz(DataExports::CreatedAt))
                    .col(timestamptz_null(DataExports::FinishedAt))
                    .col(timestamptz_null(DataExports::ExpiresAt))
                    .col(text_null(DataExports::LastError))
                    .foreign_key(&mut fk(
                        "fk_data_exports_account_id",
                        DataExports::Table,
                        DataExports::AccountId,
                        Accounts::Table,
                        Accounts::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_data_exports_account_id",
            DataExports::Table,
            vec![DataExports::AccountId.into_iden()],
            false,
        )
        .await?;
        create_index(
            manager,
            "idx_data_exports_expires_at",
            DataExports::Table,
            vec![DataExports::ExpiresAt.into_iden()],
            false,
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(timestamptz_null(Accounts::LastLoginAt))
                    .to_owned(),
            )
            .await?;
        // Log-ins were not recorded before: the newest session kept is the best evidence.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE accounts SET last_login_at = \
                 (SELECT MAX(authenticated_at) FROM sessions WHERE sessions.account_id = accounts.id)",
            )
            .await?;
        create_index(
            manager,
            "idx_accounts_last_login_at",
            Accounts::Table,
            vec![Accounts::LastLoginAt.into_iden()],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(BulkRuns::Table)
                    .col(pk_string(BulkRuns::Id, 36))
                    .col(bigint(BulkRuns::StaffId))
                    .col(timestamptz(BulkRuns::InactiveSince))
                    .col(timestamptz(BulkRuns::CreatedAt))
                    .col(bigint(BulkRuns::LastAccountId).default(0))
                    .col(bigint(BulkRuns::Requested).default(0))
                    .col(bigint(BulkRuns::Skipped).default(0))
                    .col(timestamptz_null(BulkRuns::FinishedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BulkRuns::Table.into_iden(),
            DataExports::Table.into_iden(),
            ProcessorDeliveries::Table.into_iden(),
            ReuseBlocks::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_accounts_last_login_at")
                    .table(Accounts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::LastLoginAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_deletion_requests_cancel_hash")
                    .table(DeletionRequests::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            DeletionRequests::CancelReason,
            DeletionRequests::CancelledBy,
            DeletionRequests::CancelledAt,
            DeletionRequests::CancelHash,
            DeletionRequests::PurgeAfter,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeletionRequests::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
