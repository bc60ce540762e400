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
            max_attempts: self.max_attempts,
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
    pub login_max_failures: u32,
    pub login_window_minutes: i64,
    pub password_reset_ttl_minutes: i64,
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
        if self.queue.retention_hours > MAX_RETENTION_HOURS {
            return Err(ConfigError::Invalid(format!(
                "queue.retention_hours must be at most {MAX_RETENTION_HOURS} (ten years)"
            )));
        }
        if self.security.reauth_window_minutes <= 0 || self.security.session_ttl_hours <= 0 {
            return Err(ConfigError::Invalid(
                "security windows must be positive numbers of minutes/hours".into(),
            ));
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
