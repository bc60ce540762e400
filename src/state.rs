//! What every handler and worker shares: built once by `startup`, cloned cheaply.

use std::sync::Arc;

use chrono::Duration;
use erasure_jobs::JobQueue;
use tokio::sync::Notify;

use crate::{
    clock::SharedClock, config::Settings, db::Database, keys::Keys, metrics::Metrics,
    services::datamap::DataMap, services::mail::Mailer, services::throttle::Throttle,
};

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub settings: Settings,
    pub db: Database,
    pub clock: SharedClock,
    pub keys: Keys,
    pub mailer: Mailer,
    pub queue: JobQueue,
    pub datamap: DataMap,
    pub throttle: Throttle,
    pub metrics: Metrics,
    /// Wakes the outbox relay as soon as a transaction has written an outbox row.
    pub outbox_written: Notify,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    pub fn reauth_window(&self) -> Duration {
        self.settings.security.reauth_window()
    }

    pub fn session_ttl(&self) -> Duration {
        self.settings.security.session_ttl()
    }
}
