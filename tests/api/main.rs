//! The integration tests: one binary, a real server per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
/// The name every test file uses: `use crate::helpers::*;`.
mod helpers {
    pub use crate::support::*;
}

mod account_security;
mod accounts;
mod binary;
mod contract;
mod datamap;
mod deletion_flow;
mod identifiers;
mod ledger;
mod limits;
mod outages;
mod pipeline;
mod production;
mod refusals;
mod schema;
mod servers;
mod snapshots;
mod staff;
mod stalls;
mod throttling;
