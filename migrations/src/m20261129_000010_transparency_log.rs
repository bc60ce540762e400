//! The transparency log over the ledger: the RFC 6962 Merkle tree's perfect subtrees
//! (`log_nodes`), the signed tree heads (`log_heads`), and the facets an auditor filters the
//! ledger by (channel, actor kind, outcome), each beside the sequence so a filtered page walks
//! an index newest first; and when an entry past `audit.retention_days` was pruned (its body
//! and subject cleared, its leaf kept in the tree).

use sea_orm_migration::prelude::*;

use crate::m20261124_000001_initial::{create_index, string, string_null, timestamptz, timestamptz_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LedgerEntries {
    Table,
    Seq,
    Event,
    RecordedAt,
    Channel,
    ActorKind,
    Outcome,
    PrunedAt,
}

#[derive(DeriveIden)]
enum LogNodes {
    Table,
    Id,
    Hash,
}

#[derive(DeriveIden)]
enum LogHeads {
    Table,
    Size,
    Root,
    SignedAt,
    KeyId,
    Signature,
}

const INDEXES: [(&str, LedgerEntries); 5] = [
    ("idx_ledger_entries_event_seq", LedgerEntries::Event),
    ("idx_ledger_entries_channel_seq", LedgerEntries::Channel),
    ("idx_ledger_entries_actor_kind_seq", LedgerEntries::ActorKind),
    ("idx_ledger_entries_outcome_seq", LedgerEntries::Outcome),
    ("idx_ledger_entries_recorded_at_seq", LedgerEntries::RecordedAt),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite adds no more at once.
        for column in [
            string_null(LedgerEntries::Channel, 16),
            string_null(LedgerEntries::ActorKind, 16),
            string_null(LedgerEntries::Outcome, 32),
            timestamptz_null(LedgerEntries::PrunedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(LedgerEntries::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for (name, column) in INDEXES {
            create_index(
                manager,
                name,
                LedgerEntries::Table,
                vec![column.into_iden(), LedgerEntries::Seq.into_iden()],
                false,
            )
            .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(LogNodes::Table)
                    // (level << 48) | index: one integer key, so a proof's nodes are one IN.
                    .col(
                        ColumnDef::new(LogNodes::Id)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(string(LogNodes::Hash, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LogHeads::Table)
                    .col(
                        ColumnDef::new(LogHeads::Size)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(string(LogHeads::Root, 64))
                    .col(timestamptz(LogHeads::SignedAt))
                    .col(string(LogHeads::KeyId, 64))
                    .col(string(LogHeads::Signature, 128))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [LogHeads::Table.into_iden(), LogNodes::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for (name, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(LedgerEntries::Table).to_owned())
                .await?;
        }
        for column in [
            LedgerEntries::PrunedAt,
            LedgerEntries::Outcome,
            LedgerEntries::ActorKind,
            LedgerEntries::Channel,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(LedgerEntries::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
