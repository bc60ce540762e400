//! Throttling with counters in the database, so every API process enforces one limit. A counter
//! is keyed by a keyed hash (HMAC) of what it counts: no login or client address is stored in
//! clear.
//!
//! Failed log-ins (ASVS 2.2.1) are counted per (login, client address) and per client address.
//! Each key has some free failures; past them, every further failure doubles the wait before
//! that key may try again, up to a cap. The right password from a client that has not failed
//! is never refused, so nobody elsewhere can lock the owner out of their account. Reset-link
//! requests are counted the same way, per login and per address.
//!
//! Not `governor`: its rate limiters live in one process's memory, and N API processes must
//! enforce one limit; what is counted here is failures (not requests), with doubling waits.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use crate::{
    config::SecuritySettings,
    db::Database,
    error::{AppError, AppResult},
    keys::ThrottleKey,
    models::throttle_counter,
};

/// How long a counter is remembered after its last hit.
const MEMORY: Duration = Duration::hours(24);
/// The first wait past the free hits; each further hit doubles it.
const FIRST_WAIT: Duration = Duration::seconds(1);
/// An address may fail more often than one (login, address) pair: several people share one.
const PER_ADDRESS_FACTOR: u32 = 20;

/// `free` hits, then waits doubling from `FIRST_WAIT` up to `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub free: u32,
    pub cap: Duration,
}

impl Policy {
    /// How long after its last hit a key with `hits` hits must wait: nothing below `free`,
    /// then `FIRST_WAIT`, doubling with each further hit.
    pub fn wait_after(&self, hits: u32) -> Duration {
        if hits < self.free {
            return Duration::zero();
        }
        let doublings = Ord::min(hits - self.free, 30);
        let wait = FIRST_WAIT * 2i32.saturating_pow(doublings);
        wait.min(self.cap)
    }
}

/// What a counter concerns; hashed into its key.
#[derive(Debug, Clone, Copy)]
enum Subject<'a> {
    LoginFromAddress(&'a str, &'a str),
    LoginFailuresFrom(&'a str),
    ResetOf(&'a str),
    ResetsFrom(&'a str),
    LookupsBy(i64),
}

#[derive(Debug, Clone)]
pub struct Throttle {
    key: ThrottleKey,
    login_pair: Policy,
    login_address: Policy,
    reset_login: Policy,
    reset_address: Policy,
    lookup: Policy,
}

/// Logins are compared as typed, trimmed and lowercased: the counter of `Mark08` is `mark08`'s.
fn normalised(login: &str) -> String {
    login.trim().to_lowercase()
}

impl Throttle {
    /// `lookups`: "was this person deleted?" lookups a staff member makes before each waits.
    pub fn new(key: ThrottleKey, security: &SecuritySettings, lookups: u32) -> Self {
        let cap = Duration::minutes(security.login_window_minutes);
        let free = security.login_max_failures;
        Self {
            key,
            login_pair: Policy { free, cap },
            login_address: Policy {
                free: free.saturating_mul(PER_ADDRESS_FACTOR),
                cap,
            },
            reset_login: Policy {
                free: security.reset_max_requests,
                cap,
            },
            reset_address: Policy {
                free: security.reset_max_requests.saturating_mul(PER_ADDRESS_FACTOR),
                cap,
            },
            lookup: Policy {
                free: lookups,
                cap: Duration::hours(1),
            },
        }
    }

    fn key_of(&self, subject: Subject<'_>) -> String {
        let text = match subject {
            Subject::LoginFromAddress(login, address) => format!("login\n{}\n{address}", normalised(login)),
            Subject::LoginFailuresFrom(address) => format!("login-address\n{address}"),
            Subject::ResetOf(login) => format!("reset\n{}", normalised(login)),
            Subject::ResetsFrom(address) => format!("reset-address\n{address}"),
            Subject::LookupsBy(staff_id) => format!("lookup\n{staff_id}"),
        };
        self.key.counter(&text)
    }

    fn login_keys(&self, login: &str, address: &str) -> [(String, Policy); 2] {
        [
            (
                self.key_of(Subject::LoginFromAddress(login, address)),
                self.login_pair,
            ),
            (
                self.key_of(Subject::LoginFailuresFrom(address)),
                self.login_address,
            ),
        ]
    }

    fn reset_keys(&self, login: &str, address: &str) -> [(String, Policy); 2] {
        [
            (self.key_of(Subject::ResetOf(login)), self.reset_login),
            (self.key_of(Subject::ResetsFrom(address)), self.reset_address),
        ]
    }

    /// Refuses a log-in (or a password check) from `address` for `login` while either of its
    /// counters must wait. Checked before the password, so a refused attempt learns nothing.
    pub async fn check_login(
        &self,
        db: &Database,
        login: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        check(db, &self.login_keys(login, address), now).await
    }

    pub async fn login_failed(
        &self,
        db: &Database,
        login: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        for (key, _) in self.login_keys(login, address) {
            hit(db, &key, now).await?;
        }
        Ok(())
    }

    /// The pair's failures are forgiven; the address keeps its count (it may be failing for
    /// other logins).
    pub async fn login_succeeded<C: ConnectionTrait>(
        &self,
        conn: &C,
        login: &str,
        address: &str,
    ) -> AppResult<()> {
        let key = self.key_of(Subject::LoginFromAddress(login, address));
        throttle_counter::Entity::delete_by_id(key).exec(conn).await?;
        Ok(())
    }

    /// Counts a reset-link request for `login` from `address`, refusing it while either counter
    /// must wait. The same statements run whether or not the login names an account.
    pub async fn reset_requested(
        &self,
        db: &Database,
        login: &str,
        address: &str,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let keys = self.reset_keys(login, address);
        check(db, &keys, now).await?;
        for (key, _) in keys {
            hit(db, &key, now).await?;
        }
        Ok(())
    }
}

impl Throttle {
    /// Counts a staff member's identity lookup, refusing it while they must wait: a stolen
    /// auditor session cannot test a list of addresses against the ledger.
    pub async fn lookup(&self, db: &Database, staff_id: i64, now: DateTime<Utc>) -> AppResult<()> {
        let keys = [(self.key_of(Subject::LookupsBy(staff_id)), self.lookup)];
        check(db, &keys, now).await?;
        hit(db, &keys[0].0, now).await
    }
}

async fn check(db: &Database, keys: &[(String, Policy)], now: DateTime<Utc>) -> AppResult<()> {
    let rows = throttle_counter::Entity::find()
        .filter(throttle_counter::Column::Key.is_in(keys.iter().map(|(k, _)| k.clone())))
        .all(&db.conn)
        .await?;
    let mut longest = Duration::zero();
    for row in rows.iter().filter(|r| now - r.last_hit_at < MEMORY) {
        let Some((_, policy)) = keys.iter().find(|(k, _)| *k == row.key) else {
            continue;
        };
        let hits = u32::try_from(row.hits).unwrap_or(0);
        let remaining = row.last_hit_at + policy.wait_after(hits) - now;
        longest = longest.max(remaining);
    }
    if longest > Duration::zero() {
        // Round up: a client waiting what we say is never refused again for being early.
        let secs = (longest.num_milliseconds() + 999) / 1000;
        return Err(AppError::RateLimited {
            retry_after_secs: Ord::max(u64::try_from(secs).unwrap_or(1), 1),
        });
    }
    Ok(())
}

/// Adds one hit to `key`, starting over when its last hit is older than `MEMORY`. One
/// statement, so processes counting at once never lose a hit.
async fn hit(db: &Database, key: &str, now: DateTime<Utc>) -> AppResult<()> {
    let stale = Expr::col((throttle_counter::Entity, throttle_counter::Column::LastHitAt)).lt(now - MEMORY);
    let hits = Expr::case(stale, 1)
        .finally(Expr::col((throttle_counter::Entity, throttle_counter::Column::Hits)).add(1));
    let row = throttle_counter::ActiveModel {
        key: sea_orm::Set(key.to_owned()),
        hits: sea_orm::Set(1),
        last_hit_at: sea_orm::Set(now),
    };
    throttle_counter::Entity::insert(row)
        .on_conflict(
            OnConflict::column(throttle_counter::Column::Key)
                .value(throttle_counter::Column::Hits, hits)
                .value(throttle_counter::Column::LastHitAt, Expr::value(now))
                .to_owned(),
        )
        .exec_without_returning(&db.conn)
        .await?;
    Ok(())
}

/// Removes counters nobody has hit for `MEMORY`.
pub async fn vacuum(db: &Database, now: DateTime<Utc>) -> AppResult<u64> {
    Ok(throttle_counter::Entity::delete_many()
        .filter(throttle_counter::Column::LastHitAt.lt(now - MEMORY))
        .exec(&db.conn)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_past_the_free_hits_up_to_the_cap() {
        let policy = Policy {
            free: 5,
            cap: Duration::minutes(15),
        };
        let waits: Vec<i64> = (4..=9).map(|h| policy.wait_after(h).num_seconds()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16]);
        assert_eq!(policy.wait_after(40), Duration::minutes(15));
        assert_eq!(policy.wait_after(u32::MAX), Duration::minutes(15));
    }

    #[test]
    fn keys_hide_what_they_count_and_fold_the_login() {
        let settings = crate::config::Settings::load_from(&Default::default()).unwrap();
        let t = Throttle::new(
            crate::keys::Keys::derive(&[7; 32]).throttle_key(),
            &settings.security,
            settings.audit.lookups_before_throttle,
        );
        let a = t.key_of(Subject::LoginFromAddress("Mark08", "10.0.0.1"));
        assert_eq!(a, t.key_of(Subject::LoginFromAddress(" mark08", "10.0.0.1")));
        assert_ne!(a, t.key_of(Subject::LoginFromAddress("mark08", "10.0.0.2")));
        assert!(!a.contains("mark") && a.len() == 64);
    }
}
