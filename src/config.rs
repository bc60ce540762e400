//! Layered, typed configuration: the compiled-in config/default.toml, then config/{env}.toml
//! (env from `ERASURE_ENV`: development, test or production), then `ERASURE_<SECTION>__<KEY>`
//! environment variables. Unknown keys are errors, so a typo never silently falls back.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use config::{Config, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

const DEFAULT_TOML: &str = include_str!("../config/default.toml");
const TEST_TOML: &str = include_str!("../config/test.toml");
const PRODUCTION_TOML: &str = include_str!("../config/production.toml");
pub const DATAMAP_TOML: &str = include_str!("../config/datamap.toml");

const ENV_PREFIX: &str = "ERASURE_";
/// Ten years: longer makes no sense for finished jobs, and keeps the date arithmetic in range.
const MAX_RETENTION_HOURS: u64 = 24 * 365 * 10;
const MAX_MINUTES: i64 = 60 * 24 * 365 * 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

impl Environment {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "development" | "dev" => Ok(Self::Development),
            "test" => Ok(Self::Test),
            "production" | "prod" => Ok(Self::Production),
            other => Err(ConfigError::Invalid(format!(
                "ERASURE_ENV must be development, test or production, not {other:?}"
            ))),
        }
    }

    fn overlay(self) -> Option<&'static str> {
        match self {
            Self::Development => None,
            Self::Test => Some(TEST_TOML),
            Self::Production => Some(PRODUCTION_TOML),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not `#[from]`: as a source too, the cause would be printed twice in error chains.
    #[error("configuration: {0}")]
    Load(config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(skip, default = "default_env")]
    pub env: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub queue: QueueSettings,
    pub mail: MailSettings,
    pub support: SupportSettings,
    pub security: SecuritySettings,
    pub storage: StorageSettings,
    pub purge: PurgeSettings,
    pub audit: AuditSettings,
    pub log: LogSettings,
}

fn default_env() -> Environment {
    Environment::Development
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub addr: SocketAddr,
    pub public_url: String,
    /// Hex of 32 bytes; empty means "generate and keep under the data dir" outside production.
    pub key: SecretString,
    /// The header a trusted reverse proxy puts the client's address in (`X-Forwarded-For`:
    /// its last entry; `X-Real-IP`). Empty: the peer address, and such headers are ignored.
    pub client_address_header: String,
    /// The largest request body, in bytes; larger gets 413 before it is read.
    pub max_body_bytes: usize,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// A client must send a request's headers within this long, and its body within
    /// `body_read_timeout_secs`; a slow or half-open client is dropped.
    pub header_read_timeout_secs: u64,
    pub body_read_timeout_secs: u64,
}

impl ServerSettings {
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    pub url: SecretString,
    pub namespace: String,
    pub poll_interval_ms: u64,
    pub batch_size: usize,
    pub concurrency: usize,
    pub max_attempts: usize,
    pub retry_backoff_ms: u64,
    pub retry_backoff_max_ms: u64,
    pub heartbeat_interval_secs: u64,
    pub missed_heartbeats: usize,
    pub relay_interval_ms: u64,
    pub max_backlog: u64,
    pub retention_hours: u64,
    pub vacuum_interval_secs: u64,
    /// A step sent to the queue this long ago and not done is sent again (the queue lost it).
    pub stall_after_secs: u64,
}

impl QueueSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
    pub fn relay_interval(&self) -> Duration {
        Duration::from_millis(self.relay_interval_ms)
    }
    pub fn vacuum_interval(&self) -> Duration {
        Duration::from_secs(self.vacuum_interval_secs)
    }
    /// How long a failed job waits before its next attempt: doubling from
    /// `retry_backoff_ms`, capped at `retry_backoff_max_ms`. `attempt` counts from 1.
    pub fn retry_backoff(&self, attempt: usize) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        let ms = self.retry_backoff_ms.saturating_mul(1u64 << doublings);
        Duration::from_millis(ms.min(self.retry_backoff_max_ms))
    }
    pub fn options(&self) -> erasure_jobs::QueueOptions {
        erasure_jobs::QueueOptions {
            namespace: self.namespace.clone(),
            batch_size: self.batch_size,
            heartbeat_interval: Duration::from_secs(self.heartbeat_interval_secs),
            missed_heartbeats: self.missed_heartbeats,
            retention: Duration::from_secs(self.retention_hours.saturating_mul(3600)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub url: SecretString,
    pub from: String,
    /// SMTP credentials; empty means none (or those in the URL).
    pub username: String,
    pub password: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportSettings {
    pub email: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySettings {
    pub reauth_window_minutes: i64,
    pub session_ttl_hours: i64,
    /// Failed log-ins a (login, address) pair may make before it must wait (×20 per address).
    pub login_max_failures: u32,
    /// The longest wait a throttled client is given.
    pub login_window_minutes: i64,
    /// Reset links a login may ask for before it must wait (×20 per address).
    pub reset_max_requests: u32,
    pub password_reset_ttl_minutes: i64,
}

impl SecuritySettings {
    pub fn reauth_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.reauth_window_minutes)
    }
    pub fn session_ttl(&self) -> chrono::Duration {
        chrono::Duration::hours(self.session_ttl_hours)
    }
    pub fn password_reset_ttl(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.password_reset_ttl_minutes)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeSettings {
    pub chunk_size: u64,
    pub datamap: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// A deletion without its ledger entry this long after it was asked for is reported by
    /// `erasure audit verify`.
    pub completion_bound_minutes: i64,
}

impl AuditSettings {
    pub fn completion_bound(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.completion_bound_minutes)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl From<config::ConfigError> for ConfigError {
    fn from(e: config::ConfigError) -> Self {
        Self::Load(e)
    }
}

impl Settings {
    /// Loads the settings for the environment named by `ERASURE_ENV`, with the process's
    /// environment variables applied on top.
    pub fn load() -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::load_from(&vars)
    }

    /// Loads from an explicit variable map, so tests need not touch the process environment.
    pub fn load_from(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Environment::parse(vars.get("ERASURE_ENV").map_or("", String::as_str))?;
        let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(overlay) = env.overlay() {
            builder = builder.add_source(File::from_str(overlay, FileFormat::Toml));
        }
        let mut overrides: Vec<(&String, &String)> = vars
            .iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name.contains("__"))
            .collect();
        overrides.sort();
        for (name, value) in overrides {
            let key = name[ENV_PREFIX.len()..].to_ascii_lowercase().replace("__", ".");
            builder = builder.set_override(key, value.as_str())?;
        }
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.env = env;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.purge.chunk_size == 0 {
            return Err(ConfigError::Invalid("purge.chunk_size must be at least 1".into()));
        }
        if self.queue.max_attempts == 0 {
            return Err(ConfigError::Invalid(
                "queue.max_attempts must be at least 1".into(),
            ));
        }
        if self.queue.batch_size == 0
            || self.queue.heartbeat_interval_secs == 0
            || self.queue.missed_heartbeats == 0
        {
            return Err(ConfigError::Invalid(
                "queue.batch_size, concurrency, heartbeat_interval_secs and missed_heartbeats must be at least 1".into(),
            ));
        }
        if self.queue.max_backlog == 0 || self.queue.max_backlog >= 8000 {
            // apalis-redis 1.0 fails every fetch once 8,000 or more jobs are due at once.
            return Err(ConfigError::Invalid(
                "queue.max_backlog must be between 1 and 7999 (apalis-redis breaks at 8,000 due jobs)".into(),
            ));
        }
        if self.queue.stall_after_secs == 0 || self.queue.stall_after_secs > MAX_RETENTION_HOURS * 3600 {
            return Err(ConfigError::Invalid(
                "queue.stall_after_secs must be positive and at most ten years".into(),
            ));
        }
        if self.queue.retention_hours > MAX_RETENTION_HOURS {
            return Err(ConfigError::Invalid(format!(
                "queue.retention_hours must be at most {MAX_RETENTION_HOURS} (ten years)"
            )));
        }
        let minutes = [
            (
                "security.reauth_window_minutes",
                self.security.reauth_window_minutes,
            ),
            (
                "security.session_ttl_hours",
                self.security.session_ttl_hours.saturating_mul(60),
            ),
            (
                "security.login_window_minutes",
                self.security.login_window_minutes,
            ),
            (
                "security.password_reset_ttl_minutes",
                self.security.password_reset_ttl_minutes,
            ),
            (
                "audit.completion_bound_minutes",
                self.audit.completion_bound_minutes,
            ),
        ];
        for (name, value) in minutes {
            // Bounded so the date arithmetic built on them stays in range.
            if !(1..=MAX_MINUTES).contains(&value) {
                return Err(ConfigError::Invalid(format!(
                    "{name} must be positive and at most ten years"
                )));
            }
        }
        let server = &self.server;
        if server.max_body_bytes < 1024 || server.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "server.max_body_bytes must be at least 1024 and server.max_connections at least 1".into(),
            ));
        }
        if !(1..=3600).contains(&server.header_read_timeout_secs)
            || !(1..=3600).contains(&server.body_read_timeout_secs)
        {
            return Err(ConfigError::Invalid(
                "server.header_read_timeout_secs and body_read_timeout_secs must be 1 to 3600".into(),
            ));
        }
        let header = server.client_address_header.as_str();
        if !header.is_empty() && poem::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
            return Err(ConfigError::Invalid(format!(
                "server.client_address_header {header:?} is not a header name"
            )));
        }
        Ok(())
    }

    pub fn secure_cookies(&self) -> bool {
        self.server.public_url.starts_with("https://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let s = Settings::load_from(&vars(&[])).unwrap();
        assert_eq!(s.server.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(
            s.database.url.expose_secret(),
            "sqlite://data/erasure.db?mode=rwc"
        );
        assert_eq!(s.queue.url.expose_secret(), "");
        assert_eq!(s.mail.url.expose_secret(), "file://data/outbox");
        assert_eq!(s.support.email, "help@vsee.com");
        assert_eq!(s.env, Environment::Development);
    }

    #[test]
    fn environment_variables_override_files() {
        let s = Settings::load_from(&vars(&[
            ("ERASURE_ENV", "test"),
            ("ERASURE_SERVER__ADDR", "127.0.0.1:4000"),
            ("ERASURE_QUEUE__BATCH_SIZE", "42"),
            ("ERASURE_MAIL__URL", "smtp://127.0.0.1:2525"),
        ]))
        .unwrap();
        assert_eq!(s.server.addr.port(), 4000);
        assert_eq!(s.queue.batch_size, 42);
        assert_eq!(s.queue.poll_interval_ms, 25, "test.toml applies");
        assert_eq!(s.mail.url.expose_secret(), "smtp://127.0.0.1:2525");
    }

    #[test]
    fn retry_backoff_doubles_up_to_its_cap() {
        let s = Settings::load_from(&vars(&[
            ("ERASURE_QUEUE__RETRY_BACKOFF_MS", "100"),
            ("ERASURE_QUEUE__RETRY_BACKOFF_MAX_MS", "500"),
        ]))
        .unwrap();
        let ms: Vec<u128> = (1..=5).map(|a| s.queue.retry_backoff(a).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn a_backlog_limit_apalis_redis_cannot_take_is_refused() {
        let err = Settings::load_from(&vars(&[("ERASURE_QUEUE__MAX_BACKLOG", "8000")])).unwrap_err();
        assert!(err.to_string().contains("max_backlog"), "{err}");
    }

    #[test]
    fn a_retention_beyond_ten_years_is_refused() {
        let err =
            Settings::load_from(&vars(&[("ERASURE_QUEUE__RETENTION_HOURS", "999999999999")])).unwrap_err();
        assert!(err.to_string().contains("retention_hours"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Settings::load_from(&vars(&[("ERASURE_SERVER__ADRR", "x")])).unwrap_err();
        assert!(err.to_string().contains("adrr"), "{err}");
    }

    #[test]
    fn an_unknown_environment_is_rejected() {
        assert!(Settings::load_from(&vars(&[("ERASURE_ENV", "staging")])).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let s = Settings::load_from(&vars(&[("ERASURE_SERVER__KEY", "00ff")])).unwrap();
        assert!(!format!("{s:?}").contains("00ff"));
    }
}
