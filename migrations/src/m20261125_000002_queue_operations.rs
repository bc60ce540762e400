//! Operating the queue on any backend: dead jobs recorded in our own database (so `erasure jobs
//! dead` reads the same table whatever queue runs them), a generation per outbox row (a retried
//! job needs a fresh idempotency key), and a lease on the confirmation email (so two workers
//! handed the same job cannot both send it).

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{integer, pk_auto, string, text, timestamptz, timestamptz_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeadJobs {
    Table,
    Id,
    JobKind,
    RequestId,
    Attempts,
    LastError,
    DiedAt,
    RetriedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Generation,
}

#[derive(DeriveIden)]
enum DeletionRequests {
    Table,
    EmailClaimedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeadJobs::Table)
                    .col(pk_auto(DeadJobs::Id))
                    .col(string(DeadJobs::JobKind, 32))
                    .col(string(DeadJobs::RequestId, 36))
                    .col(integer(DeadJobs::Attempts))
                    .col(text(DeadJobs::LastError))
                    .col(timestamptz(DeadJobs::DiedAt))
                    .col(timestamptz_null(DeadJobs::RetriedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dead_jobs_job_kind_request_id")
                    .table(DeadJobs::Table)
                    .col(DeadJobs::JobKind)
                    .col(DeadJobs::RequestId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(integer(Outbox::Generation).default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeletionRequests::Table)
                    .add_column(timestamptz_null(DeletionRequests::EmailClaimedUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(DeletionRequests::Table)
                    .drop_column(DeletionRequests::EmailClaimedUntil)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::Generation)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(DeadJobs::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
