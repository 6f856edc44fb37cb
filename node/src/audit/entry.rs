//! One audit entry, one checkpoint, and their canonical bytes (the encoding
//! is specified in the module doc of `audit`; this file is its reference
//! implementation).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::canonical::canonical_json;
use crate::signing::{PublicKey, SigningKey};

/// The context under which checkpoints are signed.
pub const CHECKPOINT_CONTEXT: &str = "tessera/audit-checkpoint/v1";

/// `prev_hash` of entry 1.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// The domain tag that starts every hashed entry encoding (with its 0x00).
const ENTRY_DOMAIN: &[u8] = b"tessera/audit-entry/v1\0";

/// One link of the chain, as stored and as exported (one JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    /// Unix milliseconds, UTC.
    pub time: u64,
    pub actor: String,
    /// An [`super::Action`] name; kept as text so that a verifier never
    /// depends on knowing every action.
    pub action: String,
    pub object: String,
    pub details: Value,
    #[serde(with = "hex32")]
    pub details_hash: [u8; 32],
    #[serde(with = "hex32")]
    pub prev_hash: [u8; 32],
    #[serde(with = "hex32")]
    pub hash: [u8; 32],
}

/// SHA-256 of the JCS form of `details`.
pub fn details_hash(details: &Value) -> Result<[u8; 32], &'static str> {
    Ok(Sha256::digest(canonical_json(details)?.as_bytes()).into())
}

/// The entry hash of `e` from its fields (`e.details` and `e.hash` are not
/// read: the details enter through `e.details_hash`).
pub fn entry_hash(e: &Entry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ENTRY_DOMAIN);
    h.update(e.seq.to_be_bytes());
    h.update(e.time.to_be_bytes());
    for s in [&e.actor, &e.action, &e.object] {
        // Fields are bounded when recorded; a longer one cannot be stored.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        h.update(len.to_be_bytes());
        h.update(s.as_bytes());
    }
    h.update(e.details_hash);
    h.update(e.prev_hash);
    h.finalize().into()
}

impl Entry {
    /// Checks the entry against itself: the details against `details_hash`,
    /// the fields against `hash`. The error is the problem, for a message
    /// that starts "entry N: ".
    pub fn check(&self) -> Result<(), &'static str> {
        match details_hash(&self.details) {
            Ok(h) if h == self.details_hash => {}
            Ok(_) => return Err("details do not match details_hash"),
            Err(_) => return Err("details are not canonical JSON"),
        }
        if entry_hash(self) != self.hash {
            return Err("content does not match its hash");
        }
        Ok(())
    }
}

/// The bytes a checkpoint signs (before `crate::signing`'s context framing).
pub fn checkpoint_message(seq: u64, entry_hash: &[u8; 32]) -> [u8; 40] {
    let mut m = [0u8; 40];
    m[..8].copy_from_slice(&seq.to_be_bytes());
    m[8..].copy_from_slice(entry_hash);
    m
}

/// A signature over the head of the chain at `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: u64,
    #[serde(with = "hex32")]
    pub entry_hash: [u8; 32],
    /// [`PublicKey::key_id`] of the signing key.
    pub key_id: String,
    #[serde(with = "hex_bytes")]
    pub signature: Vec<u8>,
}

impl Checkpoint {
    pub fn sign(seq: u64, entry_hash: [u8; 32], key: &SigningKey) -> Self {
        Self {
            seq,
            entry_hash,
            key_id: key.public().key_id(),
            signature: key.sign(CHECKPOINT_CONTEXT, &checkpoint_message(seq, &entry_hash)),
        }
    }

    /// Verifies the signature with whichever of `keys` has the stated key id.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<(), &'static str> {
        let key = keys
            .iter()
            .find(|k| k.key_id() == self.key_id)
            .ok_or("signed by a key that is not pinned")?;
        key.verify(
            CHECKPOINT_CONTEXT,
            &checkpoint_message(self.seq, &self.entry_hash),
            &self.signature,
        )
        .map_err(|_| "signature invalid")
    }
}

/// The export line of a checkpoint: `{"checkpoint":{...}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckpointLine {
    pub checkpoint: Checkpoint,
}

// === tree keys ===

pub(super) const ENTRY_TAG: u8 = b'e';
pub(super) const CHECKPOINT_TAG: u8 = b'c';

pub(super) fn tree_key(tag: u8, seq: u64) -> [u8; 9] {
    let mut k = [tag; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The seq of a key of the form `tag seq:be64`.
pub(super) fn key_seq(k: &[u8]) -> Option<u64> {
    let raw: [u8; 8] = k.get(1..)?.try_into().ok()?;
    Some(u64::from_be_bytes(raw))
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| D::Error::custom("expected 64 hex digits"))
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map_err(|_| D::Error::custom("expected hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Entry {
        let details = json!({"keys": 250});
        let mut e = Entry {
            seq: 1,
            time: 1_767_225_600_000,
            actor: "peer:US-BIS".into(),
            action: "evaluation_served".into(),
            object: "index:epoch-3".into(),
            details_hash: details_hash(&details).unwrap(),
            details,
            prev_hash: GENESIS_PREV_HASH,
            hash: [0; 32],
        };
        e.hash = entry_hash(&e);
        e
    }

    /// The encoding written out by hand, as an oversight body would.
    #[test]
    fn hash_follows_the_documented_encoding() {
        let e = sample();
        let dh: [u8; 32] = Sha256::digest(br#"{"keys":250}"#).into();
        assert_eq!(e.details_hash, dh);
        let mut bytes = b"tessera/audit-entry/v1\0".to_vec();
        bytes.extend_from_slice(&1u64.to_be_bytes());
        bytes.extend_from_slice(&1_767_225_600_000u64.to_be_bytes());
        for s in ["peer:US-BIS", "evaluation_served", "index:epoch-3"] {
            bytes.extend_from_slice(&(s.len() as u32).to_be_bytes());
            bytes.extend_from_slice(s.as_bytes());
        }
        bytes.extend_from_slice(&dh);
        bytes.extend_from_slice(&[0; 32]);
        let expected: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(e.hash, expected);
        assert!(e.check().is_ok());
    }

    #[test]
    fn fields_cannot_slide_into_each_other() {
        let a = sample();
        let mut b = sample();
        b.actor = "peer:US-BISevaluation_served".into();
        b.action = String::new();
        assert_ne!(entry_hash(&a), entry_hash(&b));
    }

    #[test]
    fn check_names_what_changed() {
        let mut e = sample();
        e.details = json!({"keys": 251});
        assert_eq!(e.check(), Err("details do not match details_hash"));
        let mut e = sample();
        e.object = "index:epoch-4".into();
        assert_eq!(e.check(), Err("content does not match its hash"));
        let mut e = sample();
        e.details = json!(0.5);
        assert_eq!(e.check(), Err("details are not canonical JSON"));
    }

    #[test]
    fn json_round_trip() {
        let e = sample();
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.contains(&format!("\"prev_hash\":\"{}\"", "0".repeat(64))));
        let back: Entry = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
        assert!(serde_json::from_str::<Entry>(&line.replace("\"seq\"", "\"sequence\"")).is_err());
    }

    #[test]
    fn checkpoint_signs_seq_and_hash() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let c = Checkpoint::sign(7, [9; 32], &key);
        assert_eq!(c.verify(&[*other.public(), *key.public()]), Ok(()));
        assert_eq!(
            c.verify(&[*other.public()]),
            Err("signed by a key that is not pinned")
        );
        let mut moved = c.clone();
        moved.seq = 8;
        assert_eq!(moved.verify(&[*key.public()]), Err("signature invalid"));
        assert!(
            key.public()
                .verify(
                    "tessera/audit-checkpoint/v1",
                    &[&7u64.to_be_bytes()[..], &[9; 32]].concat(),
                    &c.signature
                )
                .is_ok()
        );
    }
}
