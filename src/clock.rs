//! Time is a parameter: services ask a `Clock`, so tests can move it (session age,
//! re-authentication window, reset-link expiry, a throttle's wait) without sleeping.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Real time plus the jumps a test makes: time goes on as it does in production (a retry's
/// backoff passes), and a test can move it hours ahead at once.
#[derive(Debug)]
pub struct ManualClock {
    jumped: Mutex<Duration>,
}

impl ManualClock {
    pub fn starting_now() -> Self {
        Self {
            jumped: Mutex::new(Duration::zero()),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut jumped = self
            .jumped
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *jumped += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
            + *self
                .jumped
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
