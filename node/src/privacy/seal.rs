//! Sealing a label under an OPRF output `y` (docs/architecture.md, "Private matching", point 2): the entry is found by
//! `tag = y[0..16]` and its label encrypted with XChaCha20-Poly1305 under `y[16..48]`, with
//! the tag as associated data (an entry cannot be moved to another tag) and a random 24-byte
//! nonce per entry (one match key may label several entries under one key, so a fixed nonce
//! would be reused). Only someone who knows the match key and got it evaluated by the
//! holder can find or open the entry.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::PrivacyError;
use super::index::IndexEntry;
use super::label::Label;
use super::label_bytes;
use super::oprf::OprfOutput;

/// Bytes of an index tag.
pub const TAG_LEN: usize = 16;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes the AEAD adds to the plaintext.
pub const AEAD_OVERHEAD: usize = 16;

/// The lookup tag of an index entry.
pub type Tag = [u8; TAG_LEN];

/// `y[0..16]`.
pub fn tag_of(y: &OprfOutput) -> Tag {
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&y[..TAG_LEN]);
    tag
}

fn cipher(y: &OprfOutput) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(Key::from_slice(&y[16..48]))
}

/// Seals `label` for the index entry of the match key whose OPRF output is `y`.
pub fn seal(label: &Label, y: &OprfOutput) -> Result<IndexEntry, PrivacyError> {
    Ok(seal_bytes(&label_bytes::encode(label)?, y))
}

/// Seals a record's bytes (a label, a share, a name record) under `y`.
pub fn seal_bytes(plaintext: &[u8], y: &OprfOutput) -> IndexEntry {
    let tag = tag_of(y);
    let mut nonce = [0u8; NONCE_LEN];
    // ThreadRng: ChaCha12 seeded and periodically reseeded from the OS, a CSPRNG without a
    // system call per entry (the index build seals a million of them).
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = cipher(y)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &tag,
            },
        )
        // XChaCha20-Poly1305 fails only for plaintexts over 256 GiB; records are bounded
        // by their u16/u32 length prefixes.
        .expect("record within the AEAD's size limit");
    IndexEntry { tag, nonce, sealed }
}

/// Opens an entry (`tag`, `nonce`, `sealed`, e.g. from a peer's replicated index) with the
/// OPRF output `y` of a match key. A different key, a moved entry or altered bytes fail
/// with [`PrivacyError::LabelOpen`].
pub fn open(
    y: &OprfOutput,
    tag: &Tag,
    nonce: &[u8; NONCE_LEN],
    sealed: &[u8],
) -> Result<Label, PrivacyError> {
    label_bytes::decode(&open_bytes(y, tag, nonce, sealed)?)
}

/// Opens an entry's record bytes with `y` (see [`open`]).
pub fn open_bytes(
    y: &OprfOutput,
    tag: &Tag,
    nonce: &[u8; NONCE_LEN],
    sealed: &[u8],
) -> Result<Vec<u8>, PrivacyError> {
    cipher(y)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: tag,
            },
        )
        .map_err(|_| PrivacyError::LabelOpen)
}

#[cfg(test)]
mod tests {
    use super::super::label::tests::{full, pointer};
    use super::super::oprf::OprfKey;
    use super::*;

    #[test]
    fn seals_and_opens() {
        let key = OprfKey::generate(1);
        let y = key.evaluate(b"mk1|name|ACME TRADING").unwrap();
        for label in [pointer(), full()] {
            let entry = seal(&label, &y).unwrap();
            assert_eq!(entry.tag, tag_of(&y));
            assert_eq!(entry.open(&y).unwrap(), label);
        }
    }

    #[test]
    fn same_key_twice_uses_two_nonces() {
        let y = OprfKey::generate(1).evaluate(b"k").unwrap();
        let a = seal(&pointer(), &y).unwrap();
        let b = seal(&pointer(), &y).unwrap();
        assert_eq!(a.tag, b.tag);
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.sealed, b.sealed);
    }

    #[test]
    fn wrong_key_or_tag_fails_cleanly() {
        let key = OprfKey::generate(1);
        let y = key.evaluate(b"mk1|name|ACME TRADING").unwrap();
        let entry = seal(&pointer(), &y).unwrap();
        // Another match key under the same OPRF key, and the same match key under another.
        let other = key.evaluate(b"mk1|name|ACME TRADE").unwrap();
        assert_eq!(entry.open(&other).unwrap_err(), PrivacyError::LabelOpen);
        let rotated = OprfKey::generate(2)
            .evaluate(b"mk1|name|ACME TRADING")
            .unwrap();
        assert_eq!(entry.open(&rotated).unwrap_err(), PrivacyError::LabelOpen);
        // The right AEAD key, but the entry moved to another tag.
        let mut moved = entry.tag;
        moved[0] ^= 1;
        assert_eq!(
            open(&y, &moved, &entry.nonce, &entry.sealed).unwrap_err(),
            PrivacyError::LabelOpen
        );
        // Altered ciphertext.
        let mut altered = entry.sealed.clone();
        altered[3] ^= 0x80;
        assert_eq!(
            open(&y, &entry.tag, &entry.nonce, &altered).unwrap_err(),
            PrivacyError::LabelOpen
        );
        assert_eq!(
            open(&y, &entry.tag, &entry.nonce, &[]).unwrap_err(),
            PrivacyError::LabelOpen
        );
    }
}
