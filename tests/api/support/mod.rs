//! A real server per test, on either stack:
//! - `Stack::Sqlite`: its own data directory and SQLite database, apalis-sqlite, mail to files;
//! - `Stack::Server`: its own PostgreSQL database and Redis key space on the servers named by
//!   ERASURE_TEST_DATABASE_URL / ERASURE_TEST_REDIS_URL, and a real SMTP server (aiosmtpd)
//!   on a free loopback port, whose received messages the test reads.
//!
//! Bound to port 0, with a clock the test can move. Typed request helpers keep tests readable.
//! Provisioning, the SMTP server, process running and `eventually` come from erasure-testkit,
//! which the bench shares. Tests use all of it as `crate::helpers::*`.
//!
//! - `app`: `TestApp`, `spawn_*`, what a test asks of its database;
//! - `device`: `Device` (a client with its cookie jar) and request helpers;
//! - `processes`: real `erasure` processes;
//! - `mail`: the emails sent, decoded;
//! - `browser`: a headless Chromium through chromedriver, for the console's pages;
//! - `dovecot`: a real IMAP server, for the mailbox door;
//! - `stack`: `Stack`, `server_urls`, `on_both_stacks!`, the server stack's provisioning.

mod app;
mod browser;
mod device;
mod dovecot;
mod mail;
mod processes;
mod stack;

pub use app::*;
pub use browser::Browser;
pub use device::*;
pub use dovecot::*;
pub use erasure_testkit::{EVERY, eventually, eventually_blocking, try_eventually};
pub use mail::*;
pub use processes::*;
pub use stack::*;
