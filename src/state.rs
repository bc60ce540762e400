//! What every handler and worker shares: built once by `startup`, cloned cheaply. It is
//! assembled from leaf modules only (the database, the clock, the keys, the mailer, the data
//! map, the throttle, the queue, the sender checks); services never see it: callers hand each use case the parts
//! it uses (`env()` for the common ones).

use std::sync::Arc;

use chrono::Duration;
use erasure_jobs::JobQueue;
use tokio::sync::Notify;

use crate::{
    clock::SharedClock,
    config::Settings,
    datamap::PurgePlan,
    db::Database,
    domain::IntakeDoor,
    env::Env,
    keys::Keys,
    mailer::Mailer,
    metrics::Metrics,
    services::{
        intake::{Intake, SenderChecks},
        processors::Processor,
    },
    throttle::Throttle,
    transparency::LogSigner,
    vault::Vault,
};

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub settings: Settings,
    pub db: Database,
    pub clock: SharedClock,
    pub keys: Keys,
    /// The data keys every personal field is sealed under.
    pub vault: Vault,
    /// Signs the transparency log's tree heads.
    pub log_signer: LogSigner,
    pub mailer: Mailer,
    pub queue: JobQueue,
    pub purge_plan: PurgePlan,
    pub throttle: Throttle,
    /// DKIM, SPF and DMARC of inbound mail.
    pub sender_checks: SenderChecks,
    pub metrics: Metrics,
    /// Told of each completed deletion (`notify.processors_file`).
    pub processors: Arc<[Processor]>,
    /// Sends their webhooks.
    pub http_client: reqwest::Client,
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

    /// What a door of the help@ mailbox hands over with each message.
    pub fn intake(&self, door: IntakeDoor) -> Intake<'_> {
        Intake {
            door,
            response_days: self.settings.support.response_days,
            checks: &self.sender_checks,
        }
    }

    /// The database, the clock and the relay's wake-up: what every use case works in.
    pub fn env(&self) -> Env<'_> {
        Env {
            db: &self.db,
            clock: self.clock.as_ref(),
            vault: &self.vault,
            relay: &self.outbox_written,
        }
    }

    pub fn reauth_window(&self) -> Duration {
        self.settings.security.reauth_window()
    }

    /// How long a confirmed deletion waits before its purge.
    pub fn grace(&self) -> Duration {
        self.settings.deletion.grace()
    }

    pub fn session_ttl(&self) -> Duration {
        self.settings.security.session_ttl()
    }
}
