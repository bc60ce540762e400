//! erasure: a back-office service that deletes messenger accounts properly.
//!
//! Where things are, by folder and module (dependencies point down this list, never up):
//! - `cli` (with `cli/` for the staff and `ingest-email` commands), `startup` (one `Application::build` for the binary and the tests), `state` (what
//!   handlers and workers share, assembled from the leaf modules);
//! - `http`: the edge. The accept loop and limits, one error mapping, the extractors, the JSON
//!   API (`http::api`, one file per tag) and the user pages (`http::pages`, one file per area);
//! - `workers`: the apalis handlers (one registration list), the outbox relay, maintenance;
//! - `services`: the use cases. Each takes an `env::Env` and what else it uses, never the
//!   state: deletion (request, confirmation, failure), purge, ledger (typed audit events),
//!   sessions, profile, password reset, notices, outbox, dead jobs, watchdog, monitoring, seed,
//!   staff, intake (mail to help@ becomes tickets), tickets (the agents' queue and decisions);
//! - `models`: sea-orm entities;
//! - leaf modules: `config`, `db`, `clock`, `keys`, `mailer`, `throttle`, `datamap`, `metrics`,
//!   `telemetry`, `error`, `env`;
//! - `domain`: the parsed values, from the `erasure-domain` crate under `domain/`.

pub mod cli;
pub mod clock;
pub mod config;
pub mod datamap;
pub mod db;
/// The parsed values (crate `erasure-domain`, under `domain/`).
pub use erasure_domain as domain;
pub mod env;
pub mod error;
pub mod http;
pub mod keys;
pub mod mailer;
pub mod metrics;
pub mod models;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod transparency;
pub mod vault;
pub mod workers;
