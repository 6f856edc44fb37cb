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
    fn bad_public_keys() {
        assert!(PublicKey::from_hex("zz").is_err());
        assert!(PublicKey::from_hex(&"00".repeat(31)).is_err());
        assert!(PublicKey::from_hex(&"00".repeat(32)).is_ok());
    }
}
