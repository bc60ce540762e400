//! Where the epoch keys that wrap every data key live, and how long each lasts.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSettings {
    /// Days an epoch key lasts: then every live data key is wrapped again under a new one and
    /// the old one destroyed. Set it to the backup retention: a backup older than one epoch
    /// cannot reveal any account deleted since.
    pub epoch_days: u32,
    /// The key store's directory. Never inside what database backups copy. Empty:
    /// `<storage.data_dir>/keys`. Several processes must share one (a shared volume).
    pub dir: PathBuf,
    /// When the rotation looks whether an epoch has ended (cron, seconds first); it does the
    /// work once per epoch, whichever process ticks first.
    pub rotation_schedule: String,
    /// Whether the worker processes seal rows written before encryption by themselves, at
    /// start-up, beside the service. Off: run `erasure keys seal` when it suits you.
    pub seal_in_background: bool,
}

impl KeysSettings {
    pub fn rotation_schedule(&self) -> Result<cron::Schedule, super::ConfigError> {
        use std::str::FromStr;
        cron::Schedule::from_str(&self.rotation_schedule).map_err(|e| {
            super::ConfigError::Invalid(format!(
                "keys.rotation_schedule is not a cron expression (seconds first): {e}"
            ))
        })
    }

    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        if self.dir.as_os_str().is_empty() {
            data_dir.join("keys")
        } else {
            self.dir.clone()
        }
    }
}
