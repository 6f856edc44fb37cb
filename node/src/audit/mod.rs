//! The audit chain: an append-only, hash-chained, signed record of what this
//! node disclosed, to whom, and what it refused.
//!
//! Every evaluation served (the count only), match disclosed, notice sent,
//! received or refused, consultation step, deconfliction alert, refused call,
//! budget refusal and configuration reload is one [`Entry`] in the sled tree
//! `audit`. Every `checkpoint_every` entries, and on demand (at shutdown), the
//! node signs the head of the chain with its Ed25519 key. `tessera audit
//! verify` re-walks the chain ([`AuditLog::verify`]) and `tessera audit export`
//! writes it as JSON Lines ([`AuditLog::export`]) that an oversight body can
//! check on its own ([`verify_jsonl`]) or with a re-implementation of the
//! encoding below.
//!
//! # THE RULE: no party data in the audit chain
//!
//! The chain is handed to oversight bodies and kept for years. `actor`,
//! `object` and `details` must hold only agency ids, operator names, notice
//! serials, consultation ids, key ids, epochs, counts, hashes and tags —
//! **never a party's name, identifier, address, birth date or match key, and
//! never a query's content**. An evaluation is audited as a count
//! (`{"keys": 250}`), a disclosure as the notice reference and disclosure level,
//! not as the matched party. The action is an [`Action`] so that callers cannot
//! invent free-text kinds; details are limited to what canonicalises (below),
//! but the rule itself cannot be checked by code: reviewers check it.
//!
//! This module never logs entry contents; it never rewrites or deletes an
//! entry.
//!
//! # Layout of the `audit` tree
//!
//! ```text
//! e seq:be64 -> entry as JSON (the export line, see below)
//! c seq:be64 -> checkpoint as JSON (the object inside the export line)
//! m every    -> the last checkpoint interval recorded, be64 (a cache; see `interval`)
//! ```
//!
//! Beside the database, the file `audit.watermark` names the newest entry
//! known to be on disk (see `watermark`).
//!
//! An entry and the checkpoint that falls on it are written in one batch.
//! Writes go through one lock; the caller flushes ([`AuditLog::flush`] or
//! `Store::flush`) before it acknowledges what it audited. What the node
//! discloses to a peer (an evaluation, an overlap count) goes through
//! [`AuditSink::disclosed`]: the entry is on disk before the answer is sent,
//! and concurrent callers share one flush.
//!
//! # Entry hash (normative)
//!
//! All integers are unsigned big-endian; `str32(s)` is the length of the UTF-8
//! bytes of `s` as u32 followed by those bytes; `||` is concatenation.
//!
//! ```text
//! details_hash = SHA-256( JCS(details) )
//! entry_hash   = SHA-256( "tessera/audit-entry/v1" || 0x00
//!                         || u64(seq) || u64(time)
//!                         || str32(actor) || str32(action) || str32(object)
//!                         || details_hash (32 bytes) || prev_hash (32 bytes) )
//! ```
//!
//! - `seq` counts from 1 with no gaps; `time` is unix milliseconds (UTC) and
//!   never decreases along the chain (the node clamps it to the previous entry's).
//! - `prev_hash` is the `entry_hash` of entry `seq - 1`; for entry 1 it is 32
//!   zero bytes.
//! - `JCS` is the JSON Canonicalization Scheme, RFC 8785. Details may hold only
//!   `null`, booleans, strings, arrays, objects and integers with
//!   `|n| <= 2^53 - 1` (no fractions, no exponents), so every JCS
//!   implementation gives the same bytes.
//! - `action` is one of the snake_case names of [`Action`].
//!
//! A checkpoint signs the head of the chain at `seq` with the agency's Ed25519
//! key, through `crate::signing`'s framing:
//!
//! ```text
//! signed message = "tessera/audit-checkpoint/v1" || 0x00 || u64(seq) || entry_hash(seq)
//! ```
//!
//! # Export (JSON Lines)
//!
//! One line per entry, in seq order, each checkpoint on the line after its
//! entry. Hashes and signatures are lowercase hex.
//!
//! ```text
//! {"seq":1,"time":1767225600000,"actor":"peer:US-BIS","action":"evaluation_served","object":"index:epoch-3","details":{"keys":250},"details_hash":"…","prev_hash":"00…00","hash":"…"}
//! {"checkpoint":{"seq":1000,"entry_hash":"…","key_id":"…","signature":"…"}}
//! ```
//!
//! # What the chain proves, and what it does not
//!
//! Any edit, gap or reordering is found and the first bad entry named. A
//! checkpoint that the recorded interval asks for and that is missing is
//! named (see `interval`). A truncation of the newest entries is found only
//! back to the last checkpoint (the node checkpoints at shutdown for that
//! reason) or, while the node runs, against the count it holds in memory;
//! `verify` reports the unsigned tail after the last checkpoint.
//!
//! Someone who can write the data directory can still rewrite the whole
//! chain from an entry on and re-sign nothing: the checkpoints after it
//! vanish, and with them every local trace. That is what peers' anchors are
//! for (`anchor`): every peer keeps our newest checkpoints, signed by our
//! key, and `tessera audit verify --against-peers` compares the chain with
//! them.

mod action;
pub mod anchor;
mod canonical;
mod chain;
mod entry;
mod export;
mod interval;
mod journal;
mod sink;
mod verify;
mod watermark;

pub use action::Action;
pub use canonical::{MAX_SAFE_INTEGER, canonical_json};
pub use chain::AuditLog;
pub use entry::{
    CHECKPOINT_CONTEXT, Checkpoint, Entry, GENESIS_PREV_HASH, checkpoint_message, details_hash,
    entry_hash,
};
pub use export::Since;
pub use sink::{AuditSink, withheld};
pub use verify::{VerifyReport, verify_jsonl};

use crate::store::StoreError;

/// Errors of the audit chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record cannot be read back; the chain cannot be extended.
    #[error("audit entry {seq} is unreadable: {problem}")]
    Corrupt { seq: u64, problem: String },
    /// What a caller asked to record does not fit the rules above.
    #[error("refused to record: {field} {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    /// Verification found a gap, an edit, a reordering or a bad signature.
    /// `seq` is the first bad entry (or the checkpoint's seq); `problem` says
    /// what, starting with "entry N:" or "checkpoint at N:".
    #[error("audit chain broken: {problem}")]
    Broken { seq: u64, problem: String },
    #[error("writing the audit export: {0}")]
    Write(#[source] std::io::Error),
    /// The audit journal could not be written or read (see `journal`).
    #[error("audit journal: {0}")]
    Journal(#[source] std::io::Error),
    #[error("reading the audit export, line {line}: {problem}")]
    Read { line: u64, problem: String },
}

impl AuditError {
    fn broken(seq: u64, problem: impl Into<String>) -> Self {
        Self::Broken {
            seq,
            problem: problem.into(),
        }
    }
}
