//! What every use case works in: the database, the time, the vault that seals personal
//! fields in it, and the outbox relay to wake once a transaction has written an outbox row. Services take an `Env` and whatever else they use
//! (the keys, the mailer, the throttle, a setting); they never see the application state.

use tokio::sync::Notify;

use crate::{clock::Clock, db::Database, vault::Vault};

#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub db: &'a Database,
    pub clock: &'a dyn Clock,
    /// Seals and opens personal fields; the purge destroys an account's key with it.
    pub vault: &'a Vault,
    /// Wakes the outbox relay: jobs recorded by a committed transaction go out at once.
    pub relay: &'a Notify,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("db", self.db).finish_non_exhaustive()
    }
}

impl Env<'_> {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Tells the relay a committed transaction wrote outbox rows.
    pub fn wake_relay(&self) {
        self.relay.notify_one();
    }
}
