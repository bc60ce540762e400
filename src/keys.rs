//! The server key and the purpose-bound keys derived from it. One secret, never a constant in
//! the code: configured in production, generated at first start (mode 0600) elsewhere.

use std::{fmt, io::Write, path::Path};

use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::config::{Environment, Settings};
use crate::domain::SecretToken;

type HmacSha256 = Hmac<Sha256>;

const KEY_FILE: &str = "server.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the production environment needs a server key: set ERASURE_SERVER__KEY to 64 hex characters")]
    MissingInProduction,
    #[error(
        "the production environment needs a log signing key: set ERASURE_AUDIT__SIGNING_KEY to 64 hex characters (an Ed25519 seed)"
    )]
    LogKeyMissingInProduction,
    #[error("the server key must be 64 hex characters (32 bytes)")]
    Malformed,
    #[error("cannot read or create the server key file {path}: {source}")]
    File { path: String, source: std::io::Error },
}

/// Purpose-separated keys: a leak of one derived key does not give the others.
#[derive(Clone)]
pub struct Keys {
    pseudonym: [u8; 32],
    ledger: [u8; 32],
    receipt: [u8; 32],
    csrf: [u8; 32],
    reset: [u8; 32],
    ticket: [u8; 32],
    throttle: [u8; 32],
    cancel: [u8; 32],
    processor: [u8; 32],
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    pub fn load(settings: &Settings) -> Result<Self, KeyError> {
        let configured = settings.server.key.expose_secret().trim();
        let master = if !configured.is_empty() {
            parse_key(configured)?
        } else if settings.env == Environment::Production {
            return Err(KeyError::MissingInProduction);
        } else {
            load_or_generate_secret(&settings.storage.data_dir.join(KEY_FILE))?
        };
        Ok(Self::derive(&master))
    }

    pub fn derive(master: &[u8; 32]) -> Self {
        Self {
            pseudonym: derive(master, b"erasure/pseudonym/v1"),
            ledger: derive(master, b"erasure/ledger/v1"),
            receipt: derive(master, b"erasure/receipt/v1"),
            csrf: derive(master, b"erasure/csrf/v1"),
            reset: derive(master, b"erasure/reset/v1"),
            ticket: derive(master, b"erasure/ticket-verification/v1"),
            throttle: derive(master, b"erasure/throttle/v1"),
            cancel: derive(master, b"erasure/deletion-cancel/v1"),
            processor: derive(master, b"erasure/processor/v1"),
        }
    }

    /// A stable pseudonym for an identifier: the ledger can say "this subject was deleted"
    /// without holding the identifier, and an auditor holding the key can check a given one.
    pub fn pseudonym(&self, kind: &str, value: &str) -> String {
        hex::encode(mac(&self.pseudonym, &[kind.as_bytes(), b":", value.as_bytes()]))
    }

    /// The chain MAC of a ledger entry: covers the previous entry's hash and this body.
    pub fn ledger_mac(&self, prev_hash: &str, body: &str) -> String {
        hex::encode(mac(&self.ledger, &[prev_hash.as_bytes(), b"\n", body.as_bytes()]))
    }

    /// The receipt handed to the user is derived from the request id, so the confirmation
    /// email can carry it while the database keeps only its hash.
    pub fn receipt(&self, request_id: &str) -> SecretToken {
        SecretToken::from_bytes(&mac(&self.receipt, &[request_id.as_bytes()]))
    }

    pub fn csrf_key(&self) -> [u8; 32] {
        self.csrf
    }

    /// A reset link's token is derived from the notification that sends it, so the job can
    /// recompute it while the database keeps only its hash.
    pub fn reset_token(&self, notification_id: &str) -> SecretToken {
        SecretToken::from_bytes(&mac(&self.reset, &[notification_id.as_bytes()]))
    }

    /// The link that lets an account's owner confirm a ticket, derived from the notice that
    /// mails it, as reset links are.
    pub fn ticket_verification_token(&self, notification_id: &str) -> SecretToken {
        SecretToken::from_bytes(&mac(&self.ticket, &[notification_id.as_bytes()]))
    }

    /// The one-time link that cancels a scheduled deletion, derived from the request as the
    /// receipt is (with its own key), so the scheduled notice can carry it while the database
    /// keeps only its hash.
    pub fn cancel_token(&self, request_id: &str) -> SecretToken {
        SecretToken::from_bytes(&mac(&self.cancel, &[request_id.as_bytes()]))
    }

    /// The subject as one downstream processor knows it: a keyed hash of the ledger's
    /// pseudonym and the processor's name, so two processors cannot join their records, and
    /// the service can compute it whenever it shares data with one.
    pub fn processor_pseudonym(&self, processor: &str, subject: &str) -> String {
        hex::encode(mac(
            &self.processor,
            &[processor.as_bytes(), b":", subject.as_bytes()],
        ))
    }

    /// The key the throttle hashes what it counts with: only that, not the other keys.
    pub fn throttle_key(&self) -> ThrottleKey {
        ThrottleKey(self.throttle)
    }
}

/// Names a throttle counter without holding what it counts.
#[derive(Clone)]
pub struct ThrottleKey([u8; 32]);

impl fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThrottleKey(..)")
    }
}

impl ThrottleKey {
    pub fn counter(&self, text: &str) -> String {
        hex::encode(mac(&self.0, &[text.as_bytes()]))
    }
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// HMAC(master, label): one block of HKDF-Expand with the master as PRK. Not the `hkdf`
/// crate: its full HKDF (extract, then expand with a counter byte) derives other keys, and
/// every pseudonym, ledger MAC and receipt already issued depends on these.
fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    mac(master, &[label])
}

pub(crate) fn parse_key(hex_key: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(hex_key).map_err(|_| KeyError::Malformed)?;
    bytes.try_into().map_err(|_| KeyError::Malformed)
}

pub(crate) fn load_or_generate_secret(path: &Path) -> Result<[u8; 32], KeyError> {
    let file_err = |source| KeyError::File {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_key(text.trim()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(file_err(e)),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_err)?;
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(hex::encode(key).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(file_err)?;
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(file_err)?;
            parse_key(text.trim())
        }
        Err(e) => Err(file_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_by_purpose_and_are_stable() {
        let a = Keys::derive(&[7u8; 32]);
        let b = Keys::derive(&[7u8; 32]);
        assert_eq!(a.pseudonym("vsee_id", "mark"), b.pseudonym("vsee_id", "mark"));
        assert_ne!(a.pseudonym("vsee_id", "mark"), a.pseudonym("email", "mark"));
        assert_ne!(a.csrf_key(), a.pseudonym.as_slice());
        assert_eq!(a.receipt("r1"), b.receipt("r1"));
        assert_ne!(a.receipt("r1"), a.receipt("r2"));
    }

    #[test]
    fn a_generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let first = load_or_generate_secret(&path).unwrap();
        let second = load_or_generate_secret(&path).unwrap();
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn production_refuses_to_start_without_a_configured_key() {
        let dir = tempfile::tempdir().unwrap();
        let vars = |extra: &[(&str, &str)]| {
            let mut v: std::collections::HashMap<String, String> = [
                ("ERASURE_ENV".to_owned(), "production".to_owned()),
                (
                    "ERASURE_STORAGE__DATA_DIR".to_owned(),
                    dir.path().display().to_string(),
                ),
            ]
            .into();
            v.extend(extra.iter().map(|(k, val)| ((*k).to_owned(), (*val).to_owned())));
            v
        };
        let settings = Settings::load_from(&vars(&[])).unwrap();
        assert!(matches!(
            Keys::load(&settings),
            Err(KeyError::MissingInProduction)
        ));
        assert!(!dir.path().join(KEY_FILE).exists(), "nothing generated");

        let key = "ab".repeat(32);
        let settings = Settings::load_from(&vars(&[("ERASURE_SERVER__KEY", &key)])).unwrap();
        assert!(Keys::load(&settings).is_ok());
    }

    #[test]
    fn malformed_keys_are_refused() {
        assert!(parse_key("abcd").is_err());
        assert!(parse_key(&"zz".repeat(32)).is_err());
    }
}
