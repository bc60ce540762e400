//! Where paid terminations come from and what is known of their senders: DKIM, SPF and DMARC
//! results per ticket; duplicates merged into the ticket they repeat; the IMAP mailbox's
//! position (UIDVALIDITY and the last UID taken); the daily regulatory clock; and the
//! cancelled subscription of an approved termination.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{
    bigint, bigint_null, create_index, integer, pk_string, string_null, timestamptz, timestamptz_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Dkim,
    DkimDomain,
    Spf,
    Dmarc,
    MergedIntoId,
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    SubscriptionCancelledAt,
}

#[derive(DeriveIden)]
enum MailboxCursors {
    Table,
    Mailbox,
    UidValidity,
    LastUid,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TicketClockDays {
    Table,
    Day,
    Open,
    DueSoon,
    Overdue,
    ComputedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite adds no more at once.
        for column in [
            string_null(Tickets::Dkim, 16),
            string_null(Tickets::DkimDomain, 255),
            string_null(Tickets::Spf, 16),
            string_null(Tickets::Dmarc, 16),
            bigint_null(Tickets::MergedIntoId),
        ] {
            manager
                .alter_table(Table::alter().table(Tickets::Table).add_column(column).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(timestamptz_null(Accounts::SubscriptionCancelledAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_tickets_merged_into_id",
            Tickets::Table,
            vec![Tickets::MergedIntoId.into_iden()],
            false,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(MailboxCursors::Table)
                    .col(pk_string(MailboxCursors::Mailbox, 255))
                    .col(bigint(MailboxCursors::UidValidity))
                    .col(bigint(MailboxCursors::LastUid))
                    .col(timestamptz(MailboxCursors::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TicketClockDays::Table)
                    // YYYY-MM-DD (UTC): one row a day, whichever replica's tick writes it.
                    .col(pk_string(TicketClockDays::Day, 10))
                    .col(integer(TicketClockDays::Open))
                    .col(integer(TicketClockDays::DueSoon))
                    .col(integer(TicketClockDays::Overdue))
                    .col(timestamptz(TicketClockDays::ComputedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TicketClockDays::Table.into_iden(),
            MailboxCursors::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tickets_merged_into_id")
                    .table(Tickets::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::SubscriptionCancelledAt)
                    .to_owned(),
            )
            .await?;
        for column in [
            Tickets::MergedIntoId,
            Tickets::Dmarc,
            Tickets::Spf,
            Tickets::DkimDomain,
            Tickets::Dkim,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tickets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
