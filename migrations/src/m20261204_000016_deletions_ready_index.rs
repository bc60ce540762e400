//! Deletions by status in order of request: the ledger job's "deletions ready for their
//! entry, oldest first" reads the first few of them from this index and stops. With the
//! status index alone, PostgreSQL scanned every index entry of `purged` as a bitmap and sorted
//! them; under a backlog the entries left by rows that had since moved on to `completed`
//! (about 64,000 at once, 113 ms a job; a bitmap scan never marks them dead) made each ledger
//! job slower than the last. An ordered index scan stops after the batch and marks dead entries
//! as it passes them. The composite index also serves every "by status" read the old one did,
//! so it replaces it.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::create_index;

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
        let columns = vec![
            DeletionRequests::Status.into_iden(),
            DeletionRequests::RequestedAt.into_iden(),
        ];
        create_index(manager, NAME, DeletionRequests::Table, columns, false).await?;
        drop_index(manager, REPLACED).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = vec![DeletionRequests::Status.into_iden()];
        create_index(manager, REPLACED, DeletionRequests::Table, columns, false).await?;
        drop_index(manager, NAME).await
    }
}

async fn drop_index(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(name).table(DeletionRequests::Table).to_owned())
        .await
}
