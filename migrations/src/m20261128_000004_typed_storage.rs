//! Room for staff and auditors:
//! - a deletion's actor is stored as a kind and an id (`agent` + staff id), not as text to
//!   parse; the text column goes;
//! - a deletion names its subject by the pseudonym of the email too, so the ledger can answer
//!   "was this address deleted?";
//! - every pseudonym an entry names is indexed in `ledger_subjects`, whatever the event.
//!   Entries already written are indexed under the pseudonym they hold.

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{bigint, bigint_null, string, string_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeletionRequests {
    Table,
    Actor,
    ActorKind,
    ActorId,
    SubjectEmail,
}

#[derive(DeriveIden)]
enum LedgerSubjects {
    Table,
    Pseudonym,
    Seq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for column in [
            string(DeletionRequests::ActorKind, 16)
                .default("account_holder")
                .to_owned(),
            bigint_null(DeletionRequests::ActorId),
            string_null(DeletionRequests::SubjectEmail, 64),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeletionRequests::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE deletion_requests SET actor_kind = 'agent', \
             actor_id = CAST(substr(actor, 7) AS BIGINT) WHERE actor LIKE 'agent:%'",
        )
        .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeletionRequests::Table)
                    .drop_column(DeletionRequests::Actor)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LedgerSubjects::Table)
                    .col(string(LedgerSubjects::Pseudonym, 64))
                    .col(bigint(LedgerSubjects::Seq))
                    .primary_key(
                        Index::create()
                            .col(LedgerSubjects::Pseudonym)
                            .col(LedgerSubjects::Seq),
                    )
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO ledger_subjects (pseudonym, seq) SELECT subject, seq FROM ledger_entries",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LedgerSubjects::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DeletionRequests::Table)
                    .add_column(
                        string(DeletionRequests::Actor, 64)
                            .default("account_holder")
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE deletion_requests SET actor = 'agent:' || CAST(actor_id AS TEXT) WHERE actor_kind = 'agent'",
            )
            .await?;
        for column in [
            DeletionRequests::SubjectEmail,
            DeletionRequests::ActorId,
            DeletionRequests::ActorKind,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(DeletionRequests::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
