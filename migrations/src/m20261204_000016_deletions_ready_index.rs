//! Deletions by status in order of request: the ledger job's "deletions ready for their
//! entry, oldest first" reads the first few of them from this index and stops. With the
//! status index alone, PostgreSQL scanned every index entry of `purged` as a bitmap and sorted
//! them; under a backlog the entries left by rows that had since moved on to `completed`
//! (about 64,000 at once, 113 ms a job; a bitmap scan never marks them dead) made each ledger
//! job slower than the last. An ordered index scan stops after the batch and marks dead entries
//! as it passes them. The composite index also serves every "by status" read the old one did,
//! so it replaces it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeletionRequests {
    Table,
    Status,
    RequestedAt,
}

const NAME: &str = "idx_deletion_requests_status_requested_at";
const REPLACED: &str = "idx_deletion_requests_status";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(DeletionRequests::Table)
                    .col(DeletionRequests::Status)
                    .col(DeletionRequests::RequestedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(REPLACED)
                    .table(DeletionRequests::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(REPLACED)
                    .table(DeletionRequests::Table)
                    .col(DeletionRequests::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name(NAME).table(DeletionRequests::Table).to_owned())
            .await
    }
}
