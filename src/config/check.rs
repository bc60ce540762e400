//! The bounds the settings must keep: checked once at load, so nothing downstream meets a
//! zero batch, an overflowing duration or a header name that is not one.

use super::{ConfigError, MAX_MINUTES, MAX_RETENTION_HOURS, Settings};

impl Settings {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !(1..=90).contains(&self.support.response_days) {
            // Art. 12(3): one month, extendable by two; a longer default is no deadline at all.
            return Err(ConfigError::Invalid(
                "support.response_days must be between 1 and 90".into(),
            ));
        }
        if !(1..=24 * 30).contains(&self.support.verification_link_hours) {
            return Err(ConfigError::Invalid(
                "support.verification_link_hours must be between 1 and 720".into(),
            ));
        }
        if !(1..=3650).contains(&self.support.retention_days) {
            return Err(ConfigError::Invalid(
                "support.retention_days must be between 1 and 3650".into(),
            ));
        }
        self.support.check_mailbox()?;
        if self.deletion.grace_hours > 24 * 90 {
            return Err(ConfigError::Invalid(
                "deletion.grace_hours must be at most 2160 (90 days)".into(),
            ));
        }
        if !(1..=24 * 30).contains(&self.export.ttl_hours) {
            return Err(ConfigError::Invalid(
                "export.ttl_hours must be between 1 and 720".into(),
            ));
        }
        if !(1..=300).contains(&self.notify.timeout_secs) {
            return Err(ConfigError::Invalid(
                "notify.timeout_secs must be between 1 and 300".into(),
            ));
        }
        if self.accounts.reuse_cooloff_days > 3650 {
            return Err(ConfigError::Invalid(
                "accounts.reuse_cooloff_days must be at most 3650".into(),
            ));
        }
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
                "security.staff_session_ttl_hours",
                self.security.staff_session_ttl_hours.saturating_mul(60),
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
        self.audit.head_schedule()?;
        if !(30..=36_500).contains(&self.audit.retention_days) {
            return Err(ConfigError::Invalid(
                "audit.retention_days must be between 30 and 36500".into(),
            ));
        }
        let key = secrecy::ExposeSecret::expose_secret(&self.audit.signing_key).trim();
        if !key.is_empty() && (key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(ConfigError::Invalid(
                "audit.signing_key must be 64 hex characters (an Ed25519 seed)".into(),
            ));
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
}

impl super::SupportSettings {
    fn check_mailbox(&self) -> Result<(), ConfigError> {
        self.clock_schedule()?;
        if !["system", "none"].contains(&self.mail_auth.resolver.as_str()) {
            return Err(ConfigError::Invalid(
                "support.mail_auth.resolver is system or none".into(),
            ));
        }
        if !(100..=60_000).contains(&self.mail_auth.timeout_ms) {
            return Err(ConfigError::Invalid(
                "support.mail_auth.timeout_ms must be between 100 and 60000".into(),
            ));
        }
        let imap = &self.imap;
        if imap.url.is_empty() {
            return Ok(());
        }
        let url = url::Url::parse(&imap.url)
            .map_err(|e| ConfigError::Invalid(format!("support.imap.url is not a URL: {e}")))?;
        if !matches!(url.scheme(), "imap" | "imaps") || url.host_str().is_none() {
            return Err(ConfigError::Invalid(
                "support.imap.url is imaps://host[:port] or imap://host[:port]".into(),
            ));
        }
        if imap.username.is_empty() || imap.mailbox.is_empty() {
            return Err(ConfigError::Invalid(
                "support.imap needs a username and a mailbox when its url is set".into(),
            ));
        }
        if !(1..=86_400).contains(&imap.poll_interval_secs) {
            return Err(ConfigError::Invalid(
                "support.imap.poll_interval_secs must be between 1 and 86400".into(),
            ));
        }
        Ok(())
    }
}
