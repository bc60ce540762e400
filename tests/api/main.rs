//! The integration tests: one binary, a real server per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// Prints a measured figure where `cargo test` shows it even when the test passes (`println!`
/// is captured; a direct write to stderr is not), so CI's log keeps the figures.
macro_rules! figure {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "figure: {}", format_args!($($arg)*));
    }};
}

mod support;
/// The name every test file uses: `use crate::helpers::*;`.
mod helpers {
    pub use crate::support::*;
}

mod account_security;
mod accounts;
mod auditor_console;
mod auditors;
mod binary;
mod bulk;
mod console;
mod contract;
mod datamap;
mod deletion_flow;
mod grace;
mod identifiers;
mod intake;
mod ledger;
mod limits;
mod mail_sources;
mod mailbox;
mod outages;
mod paid_door;
mod pipeline;
mod processors;
mod production;
mod refusals;
mod reuse;
mod schema;
mod servers;
mod shredding;
mod snapshots;
mod staff;
mod stalls;
mod takeout;
mod throttling;
mod ticket_work;
mod tickets;
mod transparency;
