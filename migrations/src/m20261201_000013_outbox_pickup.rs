//! The relay's pickup: "the oldest rows of one kind not yet on the queue" read from an index
//! of exactly those rows, in order, instead of intersecting every undispatched row with every
//! row of the kind and sorting. With a backlog held back by `queue.max_backlog` (tens of
//! thousands of purges waiting), the old plan read the whole backlog on each pass; this one
//! reads the rows it returns.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    JobKind,
    Id,
    DispatchedAt,
}

const NAME: &str = "idx_outbox_undispatched_kind_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Outbox::Table)
                    .col(Outbox::JobKind)
                    .col(Outbox::Id)
                    .and_where(Expr::col(Outbox::DispatchedAt).is_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table(Outbox::Table).to_owned())
            .await
    }
}
