//! Database schema migrations for erasure.
//!
//! Migrations are frozen history: once released, a migration is never edited.
//! Schema changes go into a new `mYYYYMMDD_NNNNNN_<name>` module appended to
//! [`Migrator::migrations`].
//!
//! Every migration is written with the sea-query schema builder so the same
//! code runs on both SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_initial;
mod m20261125_000002_queue_operations;
mod m20261128_000003_hardening;
mod m20261128_000004_typed_storage;
mod m20261128_000005_staff;
mod m20261128_000006_tickets;
mod m20261129_000007_ticket_mail;
mod m20261129_000008_ticket_work;
mod m20261129_000009_mail_sources;
mod m20261129_000010_transparency_log;
mod m20261129_000011_user_requests;
mod m20261130_000012_data_keys;
mod m20261201_000013_outbox_pickup;
mod m20261202_000014_ticket_deadlines;
mod m20261203_000015_ledger_prune_index;
mod m20261204_000016_deletions_ready_index;

/// Applies the erasure schema migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_initial::Migration),
            Box::new(m20261125_000002_queue_operations::Migration),
            Box::new(m20261128_000003_hardening::Migration),
            Box::new(m20261128_000004_typed_storage::Migration),
            Box::new(m20261128_000005_staff::Migration),
            Box::new(m20261128_000006_tickets::Migration),
            Box::new(m20261129_000007_ticket_mail::Migration),
            Box::new(m20261129_000008_ticket_work::Migration),
            Box::new(m20261129_000009_mail_sources::Migration),
            Box::new(m20261129_000010_transparency_log::Migration),
            Box::new(m20261129_000011_user_requests::Migration),
            Box::new(m20261130_000012_data_keys::Migration),
            Box::new(m20261201_000013_outbox_pickup::Migration),
            Box::new(m20261202_000014_ticket_deadlines::Migration),
            Box::new(m20261203_000015_ledger_prune_index::Migration),
            Box::new(m20261204_000016_deletions_ready_index::Migration),
        ]
    }
}
