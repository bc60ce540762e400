//! The settings of what users ask beyond the button: the grace period, the re-registration
//! cool-off, takeout archives, and the downstream processors told of each deletion.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionSettings {
    /// Hours a confirmed deletion waits, cancellable from an emailed link, before its purge.
    /// 0: the purge starts at once (the seed's flow).
    pub grace_hours: u32,
}

impl DeletionSettings {
    pub fn grace(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.grace_hours))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsSettings {
    /// Days a deleted account's email and VSee ID cannot sign up again. 0: at once.
    pub reuse_cooloff_days: u32,
}

impl AccountsSettings {
    pub fn reuse_cooloff(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.reuse_cooloff_days))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSettings {
    /// Hours a takeout archive can be downloaded; then it is removed.
    pub ttl_hours: u32,
}

impl ExportSettings {
    pub fn ttl(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.ttl_hours))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// A TOML file of the downstream processors told of each completed deletion
    /// (`[[processor]]` name, url, secret). Empty: none.
    pub processors_file: String,
    /// Seconds a processor has to answer one delivery.
    pub timeout_secs: u64,
}

impl NotifySettings {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }
}
