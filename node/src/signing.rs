//! The agency's Ed25519 signing key (ring) and peers' pinned public keys.
//!
//! Signatures are always domain-separated: the signed message is
//! `context || 0x00 || bytes`, so a notice signature can never be replayed as
//! an audit checkpoint or a consultation step. The private key is never logged.

use std::path::Path;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

/// Errors loading or using keys.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read signing key {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signing key {path} is not a PKCS#8 Ed25519 key")]
    BadKey { path: String },
    #[error("public key is not 64 hex digits (32 bytes)")]
    BadPublicKey,
    #[error("signature does not verify")]
    BadSignature,
}

/// This agency's signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public.key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PKCS#8 (DER) Ed25519 key.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let bytes = std::fs::read(path).map_err(|source| SigningError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_pkcs8(&bytes).map_err(|_| SigningError::BadKey {
            path: path.display().to_string(),
        })
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, SigningError> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| SigningError::BadKey {
            path: "(memory)".into(),
        })?;
        let mut raw = [0u8; 32];
        raw.copy_from_slice(pair.public_key().as_ref());
        Ok(Self {
            pair,
            public: PublicKey(raw),
        })
    }

    /// Generates a fresh key and returns its PKCS#8 encoding.
    pub fn generate_pkcs8() -> Vec<u8> {
        let rng = ring::rand::SystemRandom::new();
        // Generation only fails if the system RNG fails, which ring treats as fatal.
        Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("system random number generator failed")
            .as_ref()
            .to_vec()
    }

    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `bytes` under `context`.
    pub fn sign(&self, context: &str, bytes: &[u8]) -> Vec<u8> {
        let msg = framed(context, bytes);
        self.pair.sign(&msg).as_ref().to_vec()
    }
}

/// A pinned Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_hex(s: &str) -> Result<Self, SigningError> {
        let bytes = hex::decode(s.trim()).map_err(|_| SigningError::BadPublicKey)?;
        let raw: [u8; 32] = bytes.try_into().map_err(|_| SigningError::BadPublicKey)?;
        Ok(Self(raw))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short stable id: the first 8 bytes of SHA-256 of the key, hex.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }

    /// Verifies `signature` over `bytes` under `context`.
    pub fn verify(
        &self,
        context: &str,
        bytes: &[u8],
        signature: &[u8],
    ) -> Result<(), SigningError> {
        let msg = framed(context, bytes);
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&msg, signature)
            .map_err(|_| SigningError::BadSignature)
    }
}

/// Signatures checked together by [`PublicKey::verify_many`]: large enough
/// to amortise the multi-scalar multiplication, small enough that a bad
/// signature costs little to locate.
pub const VERIFY_BATCH: usize = 64;

impl PublicKey {
    /// Verifies `signature` over `bytes` under `context` for each of `items`,
    /// as [`PublicKey::verify`] would, but [`VERIFY_BATCH`] at a time in one
    /// batch equation (ed25519-dalek, with coefficients derived from every
    /// input, so a batch of valid signatures cannot be assembled by anyone
    /// without the private key). A batch that fails is checked item by item
    /// with ring, so the result names exactly the signatures that fail.
    pub fn verify_many(&self, context: &str, items: &[(&[u8], &[u8])]) -> Vec<bool> {
        let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&self.0) else {
            return items
                .iter()
                .map(|(b, s)| self.verify(context, b, s).is_ok())
                .collect();
        };
        let mut out = Vec::with_capacity(items.len());
        for chunk in items.chunks(VERIFY_BATCH) {
            let signatures: Option<Vec<ed25519_dalek::Signature>> = chunk
                .iter()
                .map(|(_, s)| ed25519_dalek::Signature::from_slice(s).ok())
                .collect();
            let messages: Vec<Vec<u8>> = chunk.iter().map(|(b, _)| framed(context, b)).collect();
            let batch_ok = signatures.is_some_and(|signatures| {
                let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
                let keys = vec![key; chunk.len()];
                ed25519_dalek::verify_batch(&refs, &signatures, &keys).is_ok()
            });
            if batch_ok {
                out.extend(std::iter::repeat_n(true, chunk.len()));
            } else {
                out.extend(
                    chunk
                        .iter()
                        .map(|(b, s)| self.verify(context, b, s).is_ok()),
                );
            }
        }
        out
    }
}

fn framed(context: &str, bytes: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(context.len() + 1 + bytes.len());
    msg.extend_from_slice(context.as_bytes());
    msg.push(0);
    msg.extend_from_slice(bytes);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_with_context() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let sig = key.sign("tessera/test/v1", b"hello");
        let public = PublicKey::from_hex(&key.public().to_hex()).unwrap();
        assert!(public.verify("tessera/test/v1", b"hello", &sig).is_ok());
        assert!(public.verify("tessera/other/v1", b"hello", &sig).is_err());
        assert!(public.verify("tessera/test/v1", b"hellp", &sig).is_err());
        assert_eq!(public.key_id().len(), 16);
    }

    #[test]
    fn batch_verification_names_exactly_the_bad_signatures() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let messages: Vec<Vec<u8>> = (0..150u32).map(|i| i.to_be_bytes().repeat(40)).collect();
        let mut signatures: Vec<Vec<u8>> = messages
            .iter()
            .map(|m| key.sign("tessera/test/v1", m))
            .collect();
        let items = |sigs: &[Vec<u8>]| -> Vec<bool> {
            let pairs: Vec<(&[u8], &[u8])> = messages
                .iter()
                .zip(sigs)
                .map(|(m, s)| (m.as_slice(), s.as_slice()))
                .collect();
            key.public().verify_many("tessera/test/v1", &pairs)
        };
        assert!(items(&signatures).iter().all(|ok| *ok));
        signatures[3][10] ^= 1;
        signatures[70] = other.sign("tessera/test/v1", &messages[70]);
        signatures[71].truncate(63);
        signatures[149] = key.sign("tessera/other/v1", &messages[149]);
        let result = items(&signatures);
        let expected: Vec<bool> = (0..150).map(|i| ![3, 70, 71, 149].contains(&i)).collect();
        assert_eq!(result, expected);
        let single: Vec<bool> = messages
            .iter()
            .zip(&signatures)
            .map(|(m, s)| key.public().verify("tessera/test/v1", m, s).is_ok())
            .collect();
        assert_eq!(result, single);
        assert!(key.public().verify_many("tessera/test/v1", &[]).is_empty());
    }

    #[test]
    fn bad_public_keys() {
        assert!(PublicKey::from_hex("zz").is_err());
        assert!(PublicKey::from_hex(&"00".repeat(31)).is_err());
        assert!(PublicKey::from_hex(&"00".repeat(32)).is_ok());
    }
}
