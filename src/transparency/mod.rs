//! What anyone can check without the server's secret: signed tree heads of the ledger's
//! Merkle tree, the public key that signs them, and the proofs (inclusion, consistency) that
//! tie an entry or an older head to a newer head. The server signs (`LogSigner`); everything
//! else here is verification, usable offline by the CLI, and checks proofs with `ct-merkle`
//! rather than with the server's own tree code.

pub mod receipt;

use std::{fmt, path::Path};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use chrono::{DateTime, SecondsFormat, Utc};
use ct_merkle::{ConsistencyProof, RootHash};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Environment, Settings};
use crate::keys::{KeyError, load_or_generate_secret};

pub type Sha = sha2_ct::Sha256;

const KEY_FILE: &str = "log-signing.key";
/// Domain separation: a head's signature can never be read as any other message.
const HEAD_CONTEXT: &str = "erasure-log-head/v1";

/// Why a document does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the document is malformed: {0}")]
    Malformed(String),
    #[error("the head was signed by another key ({0})")]
    WrongKey(String),
    #[error("the head's signature does not verify")]
    BadSignature,
    #[error("the proof does not verify: {0}")]
    BadProof(String),
    #[error("the document disagrees with its ledger entry: {0}")]
    Mismatch(String),
}

/// The public key that signs tree heads, as published at `/.well-known/erasure-log-key`.
#[derive(Clone, PartialEq, Eq)]
pub struct LogKey(VerifyingKey);

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogKey({})", self.id())
    }
}

/// The published form of a `LogKey`.
#[derive(Debug, Clone, Serialize, Deserialize, poem_openapi::Object)]
pub struct PublishedKey {
    pub algorithm: String,
    /// The Ed25519 public key, 64 hex characters.
    pub public_key: String,
    pub key_id: String,
}

impl LogKey {
    /// SHA-256 of the public key, hex: names the key in every head it signs.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    pub fn published(&self) -> PublishedKey {
        PublishedKey {
            algorithm: "ed25519".into(),
            public_key: self.hex(),
            key_id: self.id(),
        }
    }

    /// From 64 hex characters, or from the published JSON document.
    pub fn parse(text: &str) -> Result<Self, VerifyError> {
        let text = text.trim();
        let hex_key = if text.starts_with('{') {
            serde_json::from_str::<PublishedKey>(text)
                .map_err(|e| VerifyError::Malformed(format!("key: {e}")))?
                .public_key
        } else {
            text.to_owned()
        };
        let bytes: [u8; 32] = hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| VerifyError::Malformed("a public key is 64 hex characters".into()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| VerifyError::Malformed("not an Ed25519 public key".into()))
    }

    /// `--key PUB`: a file holding either form, or the hex itself.
    pub fn from_arg(arg: &str) -> Result<Self, VerifyError> {
        match std::fs::read_to_string(Path::new(arg)) {
            Ok(text) => Self::parse(&text),
            Err(_) => Self::parse(arg),
        }
    }
}

/// Signs tree heads. Its secret half never leaves the process.
#[derive(Clone)]
pub struct LogSigner(SigningKey);

impl fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogSigner(..)")
    }
}

impl LogSigner {
    /// `audit.signing_key` (64 hex: the Ed25519 seed), else a key generated once in the data
    /// directory. Production refuses the latter: every replica must sign with one key.
    pub fn load(settings: &Settings) -> Result<Self, KeyError> {
        let configured = settings.audit.signing_key.expose_secret().trim();
        let seed = if !configured.is_empty() {
            crate::keys::parse_key(configured)?
        } else if settings.env == Environment::Production {
            return Err(KeyError::LogKeyMissingInProduction);
        } else {
            load_or_generate_secret(&settings.storage.data_dir.join(KEY_FILE))?
        };
        Ok(Self::from_seed(&seed))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    pub fn public(&self) -> LogKey {
        LogKey(self.0.verifying_key())
    }

    pub fn sign(&self, size: u64, root: &[u8; 32], at: DateTime<Utc>) -> SignedHead {
        let mut head = SignedHead {
            size,
            root: hex::encode(root),
            timestamp: head_timestamp(at),
            key_id: self.public().id(),
            signature: String::new(),
        };
        head.signature = B64.encode(self.0.sign(head.message().as_bytes()).to_bytes());
        head
    }
}

/// A head's time as it is signed: RFC 3339, UTC, milliseconds.
pub fn head_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A signed tree head: the log held `size` entries whose Merkle root was `root` at
/// `timestamp`. Keep one, and any later head can be proved to extend it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
#[serde(deny_unknown_fields)]
pub struct SignedHead {
    pub size: u64,
    /// SHA-256, hex.
    pub root: String,
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    pub key_id: String,
    /// Ed25519 over `message()`, base64.
    pub signature: String,
}

impl SignedHead {
    /// The signed bytes: `erasure-log-head/v1\n<size>\n<root hex>\n<timestamp>\n`.
    pub fn message(&self) -> String {
        format!(
            "{HEAD_CONTEXT}\n{}\n{}\n{}\n",
            self.size, self.root, self.timestamp
        )
    }

    pub fn root_bytes(&self) -> Result<[u8; 32], VerifyError> {
        hex::decode(&self.root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| VerifyError::Malformed("a head's root is 64 hex characters".into()))
    }

    /// Checks the signature, and that `key` is the one the head names.
    pub fn verify(&self, key: &LogKey) -> Result<(), VerifyError> {
        if self.key_id != key.id() {
            return Err(VerifyError::WrongKey(self.key_id.clone()));
        }
        let bytes: [u8; 64] = B64
            .decode(&self.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(VerifyError::BadSignature)?;
        key.0
            .verify_strict(self.message().as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| VerifyError::BadSignature)?;
        self.root_bytes().map(|_| ())
    }

    pub fn root_hash(&self) -> Result<RootHash<Sha>, VerifyError> {
        Ok(RootHash::new(self.root_bytes()?.into(), self.size))
    }
}

/// A consistency proof between two heads, as `GET /api/v1/log/consistency` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, poem_openapi::Object)]
pub struct ConsistencyDocument {
    pub from: u64,
    pub to: u64,
    /// The head at `to`.
    pub head: SignedHead,
    /// RFC 6962 consistency proof, hashes hex, in order.
    pub proof: Vec<String>,
}

/// Proves `new` (a consistency document) extends the head `old` an auditor kept: both heads
/// signed by `key`, and the proof ties `old`'s root to `new`'s.
pub fn verify_consistency(
    old: &SignedHead,
    new: &ConsistencyDocument,
    key: &LogKey,
) -> Result<(), VerifyError> {
    old.verify(key)?;
    new.head.verify(key)?;
    if new.from != old.size || new.to != new.head.size {
        return Err(VerifyError::Mismatch(format!(
            "the proof is from {} to {}, the heads are of {} and {} entries",
            new.from, new.to, old.size, new.head.size
        )));
    }
    if old.size == 0 {
        return Ok(()); // the empty log is a prefix of every log
    }
    if old.size > new.head.size {
        return Err(VerifyError::BadProof(
            "the kept head is larger than the new one".into(),
        ));
    }
    if old.size == new.head.size {
        return if old.root == new.head.root {
            Ok(())
        } else {
            Err(VerifyError::BadProof(
                "two heads of the same size with different roots: the log was rewritten".into(),
            ))
        };
    }
    let proof = ConsistencyProof::<Sha>::try_from_bytes(decode_hashes(&new.proof)?)
        .map_err(|e| VerifyError::Malformed(format!("proof: {e:?}")))?;
    new.head
        .root_hash()?
        .verify_consistency(&old.root_hash()?, &proof)
        .map_err(|e| {
            VerifyError::BadProof(format!(
                "{e:?}: the log at {} entries is not an extension of the kept head",
                new.head.size
            ))
        })
}

pub(crate) fn decode_hashes(hashes: &[String]) -> Result<Vec<u8>, VerifyError> {
    let mut out = Vec::with_capacity(hashes.len() * 32);
    for h in hashes {
        let bytes = hex::decode(h)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| VerifyError::Malformed("a proof hash is 64 hex characters".into()))?;
        out.extend(bytes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn a_head_verifies_with_its_key_and_not_after_any_change() {
        let signer = LogSigner::from_seed(&[9u8; 32]);
        let key = signer.public();
        let head = signer.sign(5, &[1u8; 32], at());
        head.verify(&key).unwrap();
        let json = serde_json::to_string(&head).unwrap();
        let back: SignedHead = serde_json::from_str(&json).unwrap();
        back.verify(&LogKey::parse(&key.hex()).unwrap()).unwrap();

        let mut grown = head.clone();
        grown.size = 6;
        assert_eq!(grown.verify(&key), Err(VerifyError::BadSignature));
        let mut moved = head.clone();
        moved.root = hex::encode([2u8; 32]);
        assert_eq!(moved.verify(&key), Err(VerifyError::BadSignature));
        let other = LogSigner::from_seed(&[8u8; 32]).public();
        assert!(matches!(head.verify(&other), Err(VerifyError::WrongKey(_))));
    }

    #[test]
    fn the_published_key_parses_back() {
        let key = LogSigner::from_seed(&[3u8; 32]).public();
        let doc = serde_json::to_string(&key.published()).unwrap();
        assert_eq!(LogKey::parse(&doc).unwrap(), key);
        assert!(LogKey::parse("abcd").is_err());
    }
}
