//! Private matching, the crypto core (docs/architecture.md, "Private matching"): the RFC 9497 OPRF in
//! VOPRF mode over ristretto255-SHA512, the labelled index a holder builds for each peer it
//! serves, the querier's lookup copy of that index, overlap counting (PSI-cardinality) and
//! the per-peer query budget. Pure code: no networking, no storage, no clock of its own.
//!
//! ## Layout
//!
//! * [`oprf`]: per-peer OPRF keys; blind, evaluate (with a batch proof), finalise.
//! * [`label`] and [`label_bytes`]: what a holder discloses for one index entry, and its
//!   compact byte form.
//! * [`seal`]: sealing a label under an OPRF output (tag, XChaCha20-Poly1305).
//! * [`index`]: index entries and the parallel index build.
//! * [`threshold`]: t-of-n sealing of fuzzy names (Shamir shares, name records).
//! * [`lookup`]: the querier's compact `tag -> entries` copy of a peer's index.
//! * [`cardinality`]: overlap counting with one shared blind and a shuffled answer.
//! * [`budget`]: the per-peer token bucket (keys per day, burst).
//!
//! The protocols are written up in `docs/private-matching.md`.
//!
//! ## What this module must never do
//!
//! Never log, print or return in an error a match-key value, a party name or any secret
//! (OPRF key, blind, OPRF output). Errors name positions (`element 3`), never contents;
//! `Debug` of a key, a blind state or a label never shows the secret or the notice body.
//! Nothing here panics on bytes that came from a peer.

pub mod budget;
pub mod cardinality;
pub mod index;
pub mod label;
pub mod label_bytes;
pub mod lookup;
pub mod oprf;
pub mod seal;
pub mod threshold;

pub use budget::{OverBudget, QueryBudget};
pub use cardinality::{CardinalityHolder, CardinalityQuery, HolderSet};
pub use index::{IndexEntry, RowSource, build, build_sources};
pub use label::{Disclosure, Label, Summary};
pub use lookup::{EntryRef, IndexLookup, IndexLookupBuilder};
pub use oprf::{
    BlindState, ELEMENT_LEN, Element, MAX_BATCH, OprfKey, OprfOutput, PROOF_LEN, Proof, blind,
    evaluate_blinded, finalize,
};
pub use seal::{NONCE_LEN, TAG_LEN, Tag, seal, seal_bytes, tag_of};
pub use threshold::{NameRecord, Record, ShareRecord};

/// Errors of private matching. Positions are named; contents never are.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PrivacyError {
    #[error("input {index} is longer than 65535 bytes")]
    BadInput { index: usize },
    #[error("element {index} has {len} bytes, expected 32")]
    WrongLength { index: usize, len: usize },
    #[error("element {index} is not a valid ristretto255 point (or is the identity)")]
    BadElement { index: usize },
    #[error("batch of {len} elements: a batch holds 1 to 65535")]
    BatchSize { len: usize },
    #[error("answer holds {got} elements for a request of {expected}")]
    CountMismatch { expected: usize, got: usize },
    #[error("the evaluation proof does not verify against the holder's public key")]
    ProofInvalid,
    #[error("the proof is not two canonical scalars (64 bytes)")]
    BadProof,
    #[error("the public key is not a valid ristretto255 point")]
    BadPublicKey,
    #[error("OPRF key bytes are malformed (expected 4-byte epoch + 32-byte non-zero scalar)")]
    BadKey,
    #[error("the label does not open with this OPRF output")]
    LabelOpen,
    #[error("label field {field} is too long to encode")]
    LabelTooLong { field: &'static str },
    #[error("label bytes are malformed at offset {offset}")]
    LabelMalformed { offset: usize },
    #[error("index entry bytes are malformed ({len} bytes)")]
    BadIndexEntry { len: usize },
    #[error("threshold {t} of {n} shares: need 1 <= t <= n <= 255")]
    BadThreshold { t: usize, n: usize },
    #[error("an opened index record is malformed at offset {offset}")]
    RecordMalformed { offset: usize },
    #[error("index too large for the lookup structure (arena over 4 GiB)")]
    IndexTooLarge,
}
