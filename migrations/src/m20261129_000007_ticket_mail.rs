//! Tickets write to people: an acknowledgement with the reference to every new request, and,
//! when the request names an account, a one-time link for the account's owner to confirm it.
//! A notice may now be about a ticket, and a ticket holds the hash of its live link. People
//! write back: a reply is kept with the ticket it answers, once per Message-ID.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{
    bigint, bigint_null, create_index, pk_auto, string, string_null, text, timestamptz, timestamptz_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    VerificationTokenHash,
    VerificationExpiresAt,
}

#[derive(DeriveIden)]
enum TicketReplies {
    Table,
    Id,
    TicketId,
    MessageId,
    Door,
    Sender,
    Subject,
    Body,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Notifications {
    Table,
    TicketId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite adds no more at once.
        for column in [
            string_null(Tickets::VerificationTokenHash, 64),
            timestamptz_null(Tickets::VerificationExpiresAt),
        ] {
            manager
                .alter_table(Table::alter().table(Tickets::Table).add_column(column).to_owned())
                .await?;
        }
        create_index(
            manager,
            "idx_tickets_verification_token_hash",
            Tickets::Table,
            vec![Tickets::VerificationTokenHash.into_iden()],
            true,
        )
        .await?;
        // No foreign key: a notice is sent after its ticket is gone only as a no-op.
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .add_column(bigint_null(Notifications::TicketId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TicketReplies::Table)
                    .col(pk_auto(TicketReplies::Id))
                    .col(bigint(TicketReplies::TicketId))
                    .col(string(TicketReplies::MessageId, 255))
                    .col(string(TicketReplies::Door, 16))
                    .col(string(TicketReplies::Sender, 254))
                    .col(text(TicketReplies::Subject))
                    .col(text(TicketReplies::Body))
                    .col(timestamptz(TicketReplies::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        for (name, column, unique) in [
            ("idx_ticket_replies_message_id", TicketReplies::MessageId, true),
            ("idx_ticket_replies_ticket_id", TicketReplies::TicketId, false),
        ] {
            create_index(
                manager,
                name,
                TicketReplies::Table,
                vec![column.into_iden()],
                unique,
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TicketReplies::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Notifications::Table)
                    .drop_column(Notifications::TicketId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_tickets_verification_token_hash")
                    .table(Tickets::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Tickets::VerificationExpiresAt, Tickets::VerificationTokenHash] {
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
