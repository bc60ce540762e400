//! Paid terminations arrive as mail: each becomes a ticket, once per Message-ID. A message that
//! cannot be read as mail is kept, raw, in quarantine for an admin to inspect, and creates no
//! ticket.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{
    bigint_null, create_index, pk_auto, string, string_null, text, text_null, timestamptz, timestamptz_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tickets {
    Table,
    Id,
    Reference,
    MessageId,
    Door,
    Sender,
    Subject,
    Body,
    AccountId,
    Status,
    ReceivedAt,
    DueAt,
    VerifiedAt,
    VerifiedBy,
    VerificationReason,
    DecidedAt,
    DecidedBy,
    DecisionReason,
    DeletionRequestId,
}

#[derive(DeriveIden)]
enum QuarantinedMail {
    Table,
    Id,
    ReceivedAt,
    Door,
    Reason,
    Raw,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tickets::Table)
                    .col(pk_auto(Tickets::Id))
                    .col(string(Tickets::Reference, 16))
                    // The Message-ID, or a digest of the raw message when it has none.
                    .col(string(Tickets::MessageId, 255))
                    .col(string(Tickets::Door, 16))
                    .col(string(Tickets::Sender, 254))
                    .col(text(Tickets::Subject))
                    .col(text(Tickets::Body))
                    // No foreign key: a ticket outlives the account its approval deletes.
                    .col(bigint_null(Tickets::AccountId))
                    .col(string(Tickets::Status, 16))
                    .col(timestamptz(Tickets::ReceivedAt))
                    .col(timestamptz(Tickets::DueAt))
                    .col(timestamptz_null(Tickets::VerifiedAt))
                    // Staff ids; no foreign key, as for a deletion's actor.
                    .col(bigint_null(Tickets::VerifiedBy))
                    .col(text_null(Tickets::VerificationReason))
                    .col(timestamptz_null(Tickets::DecidedAt))
                    .col(bigint_null(Tickets::DecidedBy))
                    .col(text_null(Tickets::DecisionReason))
                    .col(string_null(Tickets::DeletionRequestId, 36))
                    .to_owned(),
            )
            .await?;
        for (name, column, unique) in [
            ("idx_tickets_reference", Tickets::Reference, true),
            ("idx_tickets_message_id", Tickets::MessageId, true),
            ("idx_tickets_due_at", Tickets::DueAt, false),
        ] {
            create_index(manager, name, Tickets::Table, vec![column.into_iden()], unique).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(QuarantinedMail::Table)
                    .col(pk_auto(QuarantinedMail::Id))
                    .col(timestamptz(QuarantinedMail::ReceivedAt))
                    .col(string(QuarantinedMail::Door, 16))
                    .col(text(QuarantinedMail::Reason))
                    .col(ColumnDef::new(QuarantinedMail::Raw).blob().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(QuarantinedMail::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tickets::Table).to_owned())
            .await
    }
}
