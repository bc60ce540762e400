//! Sealing one field: AES-256-GCM under a 32-byte key, a fresh random nonce per value, and the
//! field's place (table, column, owner) as associated data, so a sealed value copied into
//! another column or another account's row fails to open instead of reading as theirs.
//!
//! Stored form: `enc1:` + base64(nonce ‖ ciphertext ‖ tag), text, so sealed columns keep their
//! type. A value without the prefix was written before encryption (a row the migration job
//! has not reached yet) and reads as it is.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use rand::RngCore;
use zeroize::Zeroizing;

/// What every sealed value starts with.
pub const PREFIX: &str = "enc1:";
const NONCE_LEN: usize = 12;
/// What sealing adds to a value's bytes: its nonce and its tag.
pub const OVERHEAD: usize = NONCE_LEN + 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// Wrong key, wrong place, or altered bytes: AEAD does not say which.
    #[error("a sealed value did not open: wrong key, wrong place, or altered")]
    DoesNotOpen,
    #[error("a sealed value is not valid base64")]
    Malformed,
}

/// A 32-byte symmetric key, wiped from memory when dropped.
#[derive(Clone)]
pub struct SymmetricKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

impl SymmetricKey {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut_slice());
        Self(key)
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let array: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Seals `plain` for the place `aad` names.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> String {
        format!("{PREFIX}{}", STANDARD_NO_PAD.encode(self.seal_raw(aad, plain)))
    }

    /// [`seal`](Self::seal) as bytes: nonce ‖ ciphertext ‖ tag, no prefix.
    pub fn seal_raw(&self, aad: &str, plain: &[u8]) -> Vec<u8> {
        let cipher = Aes256Gcm::new(self.0.as_slice().into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plain,
            aad: aad.as_bytes(),
        };
        let Ok(sealed) = cipher.encrypt(Nonce::from_slice(&nonce), payload) else {
            unreachable!("AES-GCM refuses only inputs beyond 64 GiB; request bodies are bounded far below")
        };
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed for `aad`; a value written before encryption is returned as is.
    pub fn open(&self, aad: &str, stored: &str) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        let Some(body) = stored.strip_prefix(PREFIX) else {
            return Ok(Zeroizing::new(stored.as_bytes().to_vec()));
        };
        let bytes = STANDARD_NO_PAD.decode(body).map_err(|_| CipherError::Malformed)?;
        self.open_raw(aad, &bytes)
    }

    /// Opens what [`seal_raw`](Self::seal_raw) made.
    pub fn open_raw(&self, aad: &str, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        if bytes.len() < NONCE_LEN {
            return Err(CipherError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let cipher = Aes256Gcm::new(self.0.as_slice().into());
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CipherError::DoesNotOpen)
    }

    /// [`open`](Self::open) for text fields.
    pub fn open_text(&self, aad: &str, stored: &str) -> Result<String, CipherError> {
        let bytes = self.open(aad, stored)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| CipherError::DoesNotOpen)
    }
}

/// Whether a stored value is sealed (the migration job's test of what is left to do).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_place() {
        let key = SymmetricKey::generate();
        let sealed = key.seal("accounts.email:7", b"mark@example.com");
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("mark"));
        assert_eq!(
            key.open_text("accounts.email:7", &sealed).unwrap(),
            "mark@example.com"
        );
        assert_eq!(
            key.open("accounts.email:8", &sealed),
            Err(CipherError::DoesNotOpen)
        );
        assert_eq!(
            SymmetricKey::generate().open("accounts.email:7", &sealed),
            Err(CipherError::DoesNotOpen)
        );
    }

    #[test]
    fn the_same_value_seals_differently_each_time() {
        let key = SymmetricKey::generate();
        assert_ne!(key.seal("a", b"same"), key.seal("a", b"same"));
    }

    #[test]
    fn altered_or_truncated_values_are_refused() {
        let key = SymmetricKey::generate();
        let sealed = key.seal("a", b"hello");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(key.open("a", &altered).is_err());
        assert_eq!(key.open("a", "enc1:AAAA"), Err(CipherError::Malformed));
        assert_eq!(key.open("a", "enc1:!!"), Err(CipherError::Malformed));
    }

    #[test]
    fn values_written_before_encryption_read_as_they_are() {
        let key = SymmetricKey::generate();
        assert_eq!(key.open_text("a", "plain").unwrap(), "plain");
        assert!(!is_sealed("plain"));
    }

    proptest! {
        #[test]
        fn any_text_round_trips(text in ".{0,300}", place in "[a-z.:0-9]{1,40}") {
            let key = SymmetricKey::generate();
            prop_assert_eq!(key.open_text(&place, &key.seal(&place, text.as_bytes())).unwrap(), text);
        }
    }
}
