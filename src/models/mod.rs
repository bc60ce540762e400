//! sea-orm entities for the tables the services read and write row by row. The messenger data
//! (contacts, conversations, messages, calls, devices) is only bulk-written by the seeder and
//! purged through the data map, so it has no entity here.

pub mod account;
pub mod bulk_run;
pub mod data_export;
pub mod data_key;
pub mod dead_job;
pub mod deletion_request;
pub mod ledger_entry;
pub mod ledger_subject;
pub mod log_head;
pub mod log_node;
pub mod mailbox_cursor;
pub mod notification;
pub mod outbox;
pub mod password_reset;
pub mod processor_delivery;
pub mod purge_progress;
pub mod quarantined_mail;
pub mod reuse_block;
pub mod session;
pub mod staff;
pub mod staff_session;
pub mod throttle_counter;
pub mod ticket;
pub mod ticket_clock_day;
pub mod ticket_note;
pub mod ticket_reply;
