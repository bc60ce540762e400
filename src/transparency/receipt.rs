//! The erasure receipt: what a user keeps to prove their account was deleted. Every fact it
//! states is read off its ledger entry (the leaf), the leaf is proved to be in the log by an
//! inclusion proof, and the log's root is signed. `verify` checks all three with the public
//! key alone: a changed count, time or store, a forged leaf or a forged head is refused.

use std::collections::BTreeMap;

use ct_merkle::InclusionProof;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{LogKey, Sha, SignedHead, VerifyError, decode_hashes};

/// Version 2 adds the processors' acknowledgements; a version-1 receipt (none) still verifies.
pub const RECEIPT_VERSION: u32 = 2;

/// Something kept after the deletion, why, and until when (`null`: as long as the reason
/// lasts, e.g. the other party's copy of a call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
#[serde(deny_unknown_fields)]
pub struct Retained {
    pub store: String,
    pub why: String,
    #[oai(nullable)]
    pub until: Option<String>,
}

/// The ledger entry a receipt is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
#[serde(deny_unknown_fields)]
pub struct Leaf {
    pub seq: u64,
    /// The entry's body, byte for byte: the leaf of the Merkle tree.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub v: u32,
    pub receipt_id: String,
    pub request_id: String,
    /// web | api | support | bulk
    pub channel: String,
    pub requested_at: String,
    pub completed_at: String,
    /// Rows (or files) removed, by store.
    pub stores: BTreeMap<String, i64>,
    pub retained: Vec<Retained>,
    /// When the confirmation email was sent; `null` if it was not.
    #[oai(nullable)]
    pub confirmation_sent_at: Option<String>,
    pub ledger: Leaf,
    /// RFC 6962 audit path of the leaf under `head`, hex, leaf to root.
    pub inclusion_proof: Vec<String>,
    pub head: SignedHead,
    /// The downstream processors that acknowledged their notice of this deletion, each
    /// proved by its own ledger entry under the same head.
    #[serde(default)]
    pub processors: Vec<Acknowledgement>,
}

/// One processor's acknowledgement, as its ledger entry states it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, poem_openapi::Object)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    pub processor: String,
    pub acknowledged_at: String,
    pub ledger: Leaf,
    /// RFC 6962 audit path of this entry under the receipt's head.
    pub inclusion_proof: Vec<String>,
}

impl Acknowledgement {
    /// The entry is an acknowledgement of `request_id` by this processor at this time, and it
    /// is in the log under `head`.
    fn verify(&self, request_id: &str, head: &SignedHead) -> Result<(), VerifyError> {
        let body: Value = serde_json::from_str(&self.ledger.body)
            .map_err(|e| VerifyError::Malformed(format!("an acknowledgement's entry: {e}")))?;
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let stated = (
            Some("processor_acknowledged".to_owned()),
            Some(request_id.to_owned()),
            Some(self.processor.clone()),
            Some(self.acknowledged_at.clone()),
        );
        let leaf = (
            body.get("event").and_then(text),
            text(field(&body, "request_id")),
            text(field(&body, "processor")),
            body.get("recorded_at").and_then(text),
        );
        if stated != leaf {
            return Err(VerifyError::Mismatch(format!(
                "the acknowledgement by {} is not what its entry states",
                self.processor
            )));
        }
        prove_inclusion(&self.ledger, &self.inclusion_proof, head)
    }
}

/// `leaf` is entry `leaf.seq` of the log whose signed head is `head`.
fn prove_inclusion(leaf: &Leaf, proof: &[String], head: &SignedHead) -> Result<(), VerifyError> {
    if leaf.seq == 0 || leaf.seq > head.size {
        return Err(VerifyError::BadProof(format!(
            "entry {} is not within the head's {} entries",
            leaf.seq, head.size
        )));
    }
    let proof = InclusionProof::<Sha>::try_from_bytes(decode_hashes(proof)?)
        .map_err(|e| VerifyError::Malformed(format!("inclusion proof: {e:?}")))?;
    head.root_hash()?
        .verify_inclusion(&leaf.body.as_bytes(), leaf.seq - 1, &proof)
        .map_err(|e| VerifyError::BadProof(format!("{e:?}: the entry is not in the signed log")))
}

/// A body's field, wherever its version keeps it (version 2: under `data`).
fn field<'a>(body: &'a Value, name: &str) -> &'a Value {
    body.get("data")
        .and_then(|d| d.get(name))
        .or_else(|| body.get(name))
        .unwrap_or(&Value::Null)
}

/// The receipt's facts as its leaf states them.
pub fn facts_of(body: &Value) -> Result<Facts, VerifyError> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let malformed = |what: &str| VerifyError::Malformed(format!("the ledger entry has no {what}"));
    if body.get("event").and_then(Value::as_str) != Some("account_deleted") {
        return Err(VerifyError::Mismatch("the ledger entry is not a deletion".into()));
    }
    Ok(Facts {
        seq: body
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| malformed("seq"))?,
        request_id: body
            .get("key")
            .or_else(|| body.get("request_id"))
            .and_then(text)
            .ok_or_else(|| malformed("request id"))?,
        channel: text(field(body, "channel")).ok_or_else(|| malformed("channel"))?,
        requested_at: text(field(body, "requested_at")).ok_or_else(|| malformed("request time"))?,
        completed_at: body
            .get("recorded_at")
            .and_then(text)
            .ok_or_else(|| malformed("completion time"))?,
        stores: serde_json::from_value(field(body, "rows_removed").clone())
            .map_err(|_| malformed("store counts"))?,
        retained: match field(body, "retained") {
            Value::Null => Vec::new(),
            v => serde_json::from_value(v.clone()).map_err(|_| malformed("retention list"))?,
        },
        confirmation_sent_at: text(field(body, "confirmation_sent_at")),
    })
}

/// What a receipt states, each read off the leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub seq: u64,
    pub request_id: String,
    pub channel: String,
    pub requested_at: String,
    pub completed_at: String,
    pub stores: BTreeMap<String, i64>,
    pub retained: Vec<Retained>,
    pub confirmation_sent_at: Option<String>,
}

impl Receipt {
    fn stated(&self) -> Facts {
        Facts {
            seq: self.ledger.seq,
            request_id: self.request_id.clone(),
            channel: self.channel.clone(),
            requested_at: self.requested_at.clone(),
            completed_at: self.completed_at.clone(),
            stores: self.stores.clone(),
            retained: self.retained.clone(),
            confirmation_sent_at: self.confirmation_sent_at.clone(),
        }
    }

    /// Checks the head's signature, the leaf's place under it, and every stated fact against
    /// the leaf.
    pub fn verify(&self, key: &LogKey) -> Result<(), VerifyError> {
        if !(1..=RECEIPT_VERSION).contains(&self.v) || (self.v == 1 && !self.processors.is_empty()) {
            return Err(VerifyError::Malformed(format!(
                "unknown receipt version {}",
                self.v
            )));
        }
        self.head.verify(key)?;
        let body: Value = serde_json::from_str(&self.ledger.body)
            .map_err(|e| VerifyError::Malformed(format!("the ledger entry: {e}")))?;
        let facts = facts_of(&body)?;
        let stated = self.stated();
        if facts != stated {
            return Err(VerifyError::Mismatch(describe(&stated, &facts)));
        }
        prove_inclusion(&self.ledger, &self.inclusion_proof, &self.head)?;
        for ack in &self.processors {
            ack.verify(&self.request_id, &self.head)?;
        }
        Ok(())
    }
}

fn describe(stated: &Facts, leaf: &Facts) -> String {
    let checks = [
        ("seq", stated.seq != leaf.seq),
        ("request_id", stated.request_id != leaf.request_id),
        ("channel", stated.channel != leaf.channel),
        ("requested_at", stated.requested_at != leaf.requested_at),
        ("completed_at", stated.completed_at != leaf.completed_at),
        ("stores", stated.stores != leaf.stores),
        ("retained", stated.retained != leaf.retained),
        (
            "confirmation_sent_at",
            stated.confirmation_sent_at != leaf.confirmation_sent_at,
        ),
    ];
    let differ: Vec<&str> = checks.iter().filter(|(_, d)| *d).map(|(name, _)| *name).collect();
    format!("{} differ", differ.join(", "))
}
