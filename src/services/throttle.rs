//! Failed log-ins are counted per VSee ID and per client address; past the limit, further
//! attempts are refused until the window has passed, whether or not the password is right.

use std::{collections::HashMap, sync::Mutex};

use chrono::{DateTime, Duration, Utc};

use crate::error::AppError;

#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: DateTime<Utc>,
    count: u32,
}

/// An address may fail more often than one ID: several people can share it.
const PER_ADDRESS_FACTOR: u32 = 4;
/// Bound the memory an attacker can make us hold.
const MAX_TRACKED_KEYS: usize = 100_000;

impl LoginThrottle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(vsee_id: &str, address: Option<&str>) -> Vec<(String, u32)> {
        let mut keys = vec![(format!("id:{}", vsee_id.trim().to_ascii_lowercase()), 1)];
        if let Some(addr) = address {
            keys.push((format!("ip:{addr}"), PER_ADDRESS_FACTOR));
        }
        keys
    }

    /// Refuses the attempt when the ID or the address is over its limit.
    pub fn check(&self, vsee_id: &str, address: Option<&str>, now: DateTime<Utc>) -> Result<(), AppError> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for (key, factor) in Self::keys(vsee_id, address) {
            if let Some(w) = map.get(&key)
                && now < w.started + self.window
                && w.count >= self.max_failures * factor
            {
                let retry = (w.started + self.window - now).num_seconds().max(1);
                return Err(AppError::RateLimited {
                    retry_after_secs: u64::try_from(retry).unwrap_or(1),
                });
            }
        }
        Ok(())
    }

    pub fn record_failure(&self, vsee_id: &str, address: Option<&str>, now: DateTime<Utc>) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED_KEYS {
            let window = self.window;
            map.retain(|_, w| now < w.started + window);
        }
        for (key, _) in Self::keys(vsee_id, address) {
            let w = map.entry(key).or_insert(Window {
                started: now,
                count: 0,
            });
            if now >= w.started + self.window {
                *w = Window {
                    started: now,
                    count: 0,
                };
            }
            w.count += 1;
        }
    }

    pub fn record_success(&self, vsee_id: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("id:{}", vsee_id.trim().to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_applies_per_id_and_expires_with_the_window() {
        let t = LoginThrottle::new(3, Duration::minutes(15));
        let now = Utc::now();
        for _ in 0..3 {
            assert!(t.check("mark", Some("1.1.1.1"), now).is_ok());
            t.record_failure("mark", Some("1.1.1.1"), now);
        }
        assert!(matches!(
            t.check("MARK", None, now),
            Err(AppError::RateLimited { .. })
        ));
        assert!(t.check("other", Some("2.2.2.2"), now).is_ok());
        assert!(t.check("mark", None, now + Duration::minutes(16)).is_ok());
    }

    #[test]
    fn an_address_failing_across_many_ids_is_limited() {
        let t = LoginThrottle::new(2, Duration::minutes(15));
        let now = Utc::now();
        for i in 0..8 {
            t.record_failure(&format!("user{i}"), Some("9.9.9.9"), now);
        }
        assert!(t.check("fresh", Some("9.9.9.9"), now).is_err());
        assert!(t.check("fresh", Some("8.8.8.8"), now).is_ok());
    }
}
