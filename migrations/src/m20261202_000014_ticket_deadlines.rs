//! The staff queue counts open tickets above its list (all, past due, due soon) on every
//! page view. Without an index on `status` each count read the whole table (100,000 tickets:
//! about 100 ms on SQLite); with `(status, due_at)` each is a range of the open ones.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Status,
    DueAt,
}

const NAME: &str = "idx_tickets_status_due_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Tickets::Table)
                    .col(Tickets::Status)
                    .col(Tickets::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table(Tickets::Table).to_owned())
            .await
    }
}
