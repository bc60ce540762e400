//! erasure: a back-office service that deletes messenger accounts properly.

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
pub mod workers;
