//! How agents work a ticket: who it is assigned to, their internal notes (and the questions
//! they mail the requester), one extension of the deadline with its reason, and the first of
//! two approvals when a second agent must confirm.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{
    bigint, bigint_null, create_index, pk_auto, string, string_null, text, text_null, timestamptz,
    timestamptz_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    AccountId,
    AssigneeId,
    ExtendedAt,
    ExtendedBy,
    ExtensionReason,
    FirstApprovedBy,
    FirstApprovedAt,
}

#[derive(DeriveIden)]
enum TicketNotes {
    Table,
    Id,
    TicketId,
    StaffId,
    Kind,
    Body,
    NoticeId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite adds no more at once. Staff ids carry no foreign
        // key, as elsewhere: the record outlives a staff member.
        for column in [
            bigint_null(Tickets::AssigneeId),
            timestamptz_null(Tickets::ExtendedAt),
            bigint_null(Tickets::ExtendedBy),
            text_null(Tickets::ExtensionReason),
            bigint_null(Tickets::FirstApprovedBy),
            timestamptz_null(Tickets::FirstApprovedAt),
        ] {
            manager
                .alter_table(Table::alter().table(Tickets::Table).add_column(column).to_owned())
                .await?;
        }
        // The queue by assignee, and the purge's and the app's lookups of an account's tickets.
        for (name, column) in [
            ("idx_tickets_assignee_id", Tickets::AssigneeId),
            ("idx_tickets_account_id", Tickets::AccountId),
        ] {
            create_index(manager, name, Tickets::Table, vec![column.into_iden()], false).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(TicketNotes::Table)
                    .col(pk_auto(TicketNotes::Id))
                    .col(bigint(TicketNotes::TicketId))
                    .col(bigint(TicketNotes::StaffId))
                    // note (internal) | question (mailed to the requester)
                    .col(string(TicketNotes::Kind, 16))
                    .col(text(TicketNotes::Body))
                    .col(string_null(TicketNotes::NoticeId, 36))
                    .col(timestamptz(TicketNotes::CreatedAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_ticket_notes_ticket_id",
            TicketNotes::Table,
            vec![TicketNotes::TicketId.into_iden()],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TicketNotes::Table).to_owned())
            .await?;
        for name in ["idx_tickets_account_id", "idx_tickets_assignee_id"] {
            manager
                .drop_index(Index::drop().name(name).table(Tickets::Table).to_owned())
                .await?;
        }
        for column in [
            Tickets::FirstApprovedAt,
            Tickets::FirstApprovedBy,
            Tickets::ExtensionReason,
            Tickets::ExtendedBy,
            Tickets::ExtendedAt,
            Tickets::AssigneeId,
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
