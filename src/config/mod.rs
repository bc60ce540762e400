//! Layered, typed configuration: the compiled-in config/default.toml, then config/{env}.toml
//! (env from `ERASURE_ENV`: development, test or production), then `ERASURE_<SECTION>__<KEY>`
//! environment variables. Unknown keys are errors, so a typo never silently falls back.

use std::{collections::HashMap, net::SocketAddr, path::PathBuf, time::Duration};

use config::{Config, File, FileFormat};
use secrecy::SecretString;
use serde::Deserialize;

const DEFAULT_TOML: &str = include_str!("../../config/default.toml");
const TEST_TOML: &str = include_str!("../../config/test.toml");
const PRODUCTION_TOML: &str = include_str!("../../config/production.toml");
pub const DATAMAP_TOML: &str = include_str!("../../config/datamap.toml");

const ENV_PREFIX: &str = "ERASURE_";
/// Ten years: longer makes no sense for finished jobs, and keeps the date arithmetic in range.
pub(crate) const MAX_RETENTION_HOURS: u64 = 24 * 365 * 10;
pub(crate) const MAX_MINUTES: i64 = 60 * 24 * 365 * 10;

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
    pub deletion: DeletionSettings,
    pub accounts: AccountsSettings,
    pub notify: NotifySettings,
    pub export: ExportSettings,
    pub keys: KeysSettings,
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
    /// Days to answer a request (GDPR Art. 12(3): one month).
    pub response_days: u32,
    /// The secret `POST /api/v1/inbound/email` checks each body's HMAC-SHA256 against; empty
    /// turns that door off (every call gets 401).
    pub inbound_secret: SecretString,
    /// How long the link that lets an account's owner confirm a ticket works.
    pub verification_link_hours: u32,
    /// An approval takes two different agents: the first records it, the second starts the
    /// deletion.
    pub two_person_approval: bool,
    /// Rejected and closed tickets (and quarantined mail) lose their personal content this
    /// many days after the decision (after arrival, for quarantined mail).
    pub retention_days: u32,
    /// When the regulatory clock's daily job runs (cron, seconds first, UTC).
    pub clock_schedule: String,
    pub mail_auth: MailAuthSettings,
    pub imap: ImapSettings,
}

impl SupportSettings {
    pub fn clock_schedule(&self) -> Result<cron::Schedule, ConfigError> {
        use std::str::FromStr;
        cron::Schedule::from_str(&self.clock_schedule).map_err(|e| {
            ConfigError::Invalid(format!(
                "support.clock_schedule is not a cron expression (seconds first): {e}"
            ))
        })
    }
}

/// Polling the help@ mailbox over IMAP, one of the three doors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    /// `imaps://host[:993]` or `imap://host[:143]` (plain text: loopback or a trusted link
    /// only); empty turns polling off.
    pub url: String,
    pub username: String,
    pub password: SecretString,
    pub mailbox: String,
    /// Where a message goes once its ticket is stored; empty leaves it in place, marked seen.
    pub processed_mailbox: String,
    pub poll_interval_secs: u64,
}

impl ImapSettings {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs)
    }
}

/// How DKIM, SPF and DMARC are checked on inbound mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailAuthSettings {
    /// `system` (the host's resolv.conf) or `none` (only `pinned_txt`; everything else is
    /// `temperror`).
    pub resolver: String,
    /// The three checks of one message together wait no longer than this for DNS.
    pub timeout_ms: u64,
    /// TXT records used before DNS, one a line: the name, a space, the record
    /// (`sel._domainkey.example.com v=DKIM1; k=ed25519; p=…`; `_dmarc.example.com …`; a domain
    /// for its SPF record), or `name NXDOMAIN` for a name that has none.
    pub pinned_txt: String,
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
    /// How long a staff session lasts (ASVS 3.3.2 asks 12 hours at most at level 2).
    pub staff_session_ttl_hours: i64,
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
    pub fn staff_session_ttl(&self) -> chrono::Duration {
        chrono::Duration::hours(self.staff_session_ttl_hours)
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
    /// The Ed25519 seed (64 hex) that signs tree heads. Empty: generated once in the data
    /// directory (refused in production, where every replica must share one).
    pub signing_key: SecretString,
    /// Entries older than this are pruned: body and subject cleared, leaf and MAC kept.
    pub retention_days: u32,
    /// When a tree head is signed besides after each deletion's entry (cron, seconds first).
    pub head_schedule: String,
    /// "Was this person deleted?" lookups a staff member makes before each one waits (1 s,
    /// doubling, at most an hour; the count is forgotten after a day without lookups).
    pub lookups_before_throttle: u32,
}

impl AuditSettings {
    pub fn head_schedule(&self) -> Result<cron::Schedule, ConfigError> {
        use std::str::FromStr;
        cron::Schedule::from_str(&self.head_schedule).map_err(|e| {
            ConfigError::Invalid(format!(
                "audit.head_schedule is not a cron expression (seconds first): {e}"
            ))
        })
    }

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

    pub fn secure_cookies(&self) -> bool {
        self.server.public_url.starts_with("https://")
    }
}

mod check;
mod keys;
mod requests;

pub use keys::KeysSettings;
pub use requests::{AccountsSettings, DeletionSettings, ExportSettings, NotifySettings};
#[cfg(test)]
mod tests;
