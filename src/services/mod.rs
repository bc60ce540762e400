//! Use cases. Handlers and workers call these; only these (and `models`) touch the database.

pub mod accounts;
pub mod bulk;
pub mod dead_jobs;
pub mod deletion;
pub mod intake;
pub mod ledger;
pub mod monitoring;
pub mod notifications;
pub mod outbox;
pub mod password_reset;
pub mod processors;
pub mod profile;
pub mod purge;
pub mod purge_preview;
pub mod reports;
pub mod restore_guard;
pub mod reuse;
pub mod seal_existing;
pub mod seed;
pub mod sessions;
pub mod staff;
pub mod takeout;
pub mod text;
pub mod tickets;
pub mod watchdog;
