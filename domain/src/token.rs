use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A bearer secret handed to a user (session cookie, reset link, receipt). Only its hash is
/// ever stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

/// The SHA-256 (hex) of a token: what the database keeps and looks up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

impl SecretToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Builds a token from bytes derived elsewhere (e.g. an HMAC), so it can be recomputed.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts what a client sent back; anything not shaped like our tokens is refused early.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let shaped = (32..=128).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        shaped.then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_and_differ() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert_ne!(a, b);
        assert_eq!(SecretToken::parse(a.expose()).unwrap(), a);
        assert_eq!(a.hash().0.len(), 64);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        assert!(SecretToken::parse("short").is_none());
        assert!(SecretToken::parse(&"a/".repeat(20)).is_none());
    }
}
