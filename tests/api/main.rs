//! The integration tests: one binary, a real server per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod account_security;
mod accounts;
mod binary;
mod contract;
mod datamap;
mod deletion_flow;
mod identifiers;
mod ledger;
mod limits;
mod pipeline;
mod production;
mod refusals;
mod schema;
mod snapshots;
mod staff;
mod stalls;
mod throttling;
