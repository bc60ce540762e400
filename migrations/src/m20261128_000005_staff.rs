//! Staff (support agents, auditors, administrators) and their sessions, kept apart from the
//! account holders' so neither cookie opens the other's doors.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{
    create_index, fk, pk_auto, pk_string, string, text, timestamptz, timestamptz_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Staff {
    Table,
    Id,
    Email,
    Name,
    Role,
    PasswordHash,
    CreatedAt,
    DisabledAt,
}

#[derive(DeriveIden)]
enum StaffSessions {
    Table,
    Id,
    StaffId,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Staff::Table)
                    .col(pk_auto(Staff::Id))
                    .col(string(Staff::Email, 254))
                    .col(string(Staff::Name, 64))
                    .col(string(Staff::Role, 16))
                    .col(text(Staff::PasswordHash))
                    .col(timestamptz(Staff::CreatedAt))
                    .col(timestamptz_null(Staff::DisabledAt))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_staff_email",
            Staff::Table,
            vec![Staff::Email.into_iden()],
            true,
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(StaffSessions::Table)
                    // SHA-256 of the cookie token; the token itself is never stored.
                    .col(pk_string(StaffSessions::Id, 64))
                    .col(ColumnDef::new(StaffSessions::StaffId).big_integer().not_null())
                    .col(timestamptz(StaffSessions::CreatedAt))
                    .col(timestamptz(StaffSessions::ExpiresAt))
                    .foreign_key(&mut fk(
                        "fk_staff_sessions_staff_id",
                        StaffSessions::Table,
                        StaffSessions::StaffId,
                        Staff::Table,
                        Staff::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        create_index(
            manager,
            "idx_staff_sessions_staff_id",
            StaffSessions::Table,
            vec![StaffSessions::StaffId.into_iden()],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StaffSessions::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Staff::Table).to_owned())
            .await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
