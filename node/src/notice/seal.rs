//! Signing and opening notices.
//!
//! `seal` encodes a notice once and signs exactly those bytes; `open` checks
//! the origin's pinned key id and signature over the bytes as received, and
//! only then decodes and validates. Nothing unverified is ever returned.

use prost::Message;
use sha2::{Digest, Sha256};
use tessera_proto::v1::{Notice, SignedNotice};

use super::validate::{self, Invalid};
use crate::signing::{PublicKey, SigningKey};

/// Domain separation for notice signatures.
pub const CONTEXT: &str = "tessera/notice/v1";

/// Why a received envelope was refused.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("signed by key {got}, but the pinned key of {origin} is {pinned}")]
    UnpinnedKey {
        origin: String,
        got: String,
        pinned: String,
    },
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the signed bytes are not a notice")]
    Undecodable,
    #[error("the envelope says origin {envelope} but the notice says {notice}")]
    OriginMismatch { envelope: String, notice: String },
    #[error("invalid notice: {0}")]
    Invalid(#[from] Invalid),
}

/// Encodes and signs a notice.
pub fn seal(notice: &Notice, key: &SigningKey) -> SignedNotice {
    let bytes = notice.encode_to_vec();
    let signature = key.sign(CONTEXT, &bytes);
    SignedNotice {
        notice: bytes,
        origin: notice.origin.clone(),
        key_id: key.public().key_id(),
        signature,
    }
}

/// Verifies an envelope against the origin's pinned key, then decodes and validates.
pub fn open(envelope: &SignedNotice, pinned: &PublicKey) -> Result<Notice, OpenError> {
    let pinned_id = pinned.key_id();
    if envelope.key_id != pinned_id {
        return Err(OpenError::UnpinnedKey {
            origin: printable(&envelope.origin),
            got: printable(&envelope.key_id),
            pinned: pinned_id,
        });
    }
    pinned
        .verify(CONTEXT, &envelope.notice, &envelope.signature)
        .map_err(|_| OpenError::BadSignature)?;
    decode_checked(envelope)
}

/// Opens many envelopes from one origin, as [`open`] does each, with the
/// signatures verified in batches ([`PublicKey::verify_many`]).
pub fn open_many(
    envelopes: &[&SignedNotice],
    pinned: &PublicKey,
) -> Vec<Result<Notice, OpenError>> {
    let pinned_id = pinned.key_id();
    let mut out: Vec<Result<Notice, OpenError>> = Vec::with_capacity(envelopes.len());
    let mut to_verify = Vec::with_capacity(envelopes.len());
    for envelope in envelopes {
        if envelope.key_id == pinned_id {
            to_verify.push((envelope.notice.as_slice(), envelope.signature.as_slice()));
        }
    }
    let mut verified = pinned.verify_many(CONTEXT, &to_verify).into_iter();
    for envelope in envelopes {
        if envelope.key_id != pinned_id {
            out.push(Err(OpenError::UnpinnedKey {
                origin: printable(&envelope.origin),
                got: printable(&envelope.key_id),
                pinned: pinned_id.clone(),
            }));
            continue;
        }
        out.push(if verified.next() == Some(true) {
            decode_checked(envelope)
        } else {
            Err(OpenError::BadSignature)
        });
    }
    out
}

/// Decodes and validates bytes whose signature has been verified.
fn decode_checked(envelope: &SignedNotice) -> Result<Notice, OpenError> {
    let notice = Notice::decode(envelope.notice.as_slice()).map_err(|_| OpenError::Undecodable)?;
    if notice.origin != envelope.origin {
        return Err(OpenError::OriginMismatch {
            envelope: printable(&envelope.origin),
            notice: printable(&notice.origin),
        });
    }
    validate::notice(&notice)?;
    Ok(notice)
}

/// Short, printable form of a peer-supplied label for error messages.
fn printable(s: &str) -> String {
    s.chars().take(40).filter(char::is_ascii_graphic).collect()
}

/// A digest of what an importer controls (body, distribution, marking,
/// serial), so that re-importing an unchanged record is recognised.
pub fn content_hash(notice: &Notice) -> [u8; 32] {
    let mut n = notice.clone();
    n.origin.clear();
    n.version = 0;
    n.issued_at = 0;
    n.seq = 0;
    Sha256::digest(n.encode_to_vec()).into()
}
