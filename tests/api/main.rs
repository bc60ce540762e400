//! The integration tests: one binary, a real server per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod accounts;
mod binary;
mod datamap;
mod deletion_flow;
mod ledger;
mod pipeline;
mod production;
mod refusals;
mod schema;
mod snapshots;
