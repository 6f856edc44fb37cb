//! The checkpoint interval, as the chain itself records it: whenever the
//! node opens its chain with another `checkpoint_every` than the last one
//! recorded, it appends a `config_reloaded` entry on object `audit` with
//! details `{"checkpoint_every": N}`. From that entry on, verification
//! expects a checkpoint on every N-th entry, so deleting signed checkpoints
//! is found without trusting anything outside the chain. The last interval
//! recorded is cached under the key `m every` (a cache only: the entries
//! are the record).

use serde_json::Value;

use super::entry::Entry;

/// The object of an interval entry.
pub(super) const OBJECT: &str = "audit";
/// The key of the cached last interval in the `audit` tree.
pub(super) const CACHE_KEY: &[u8] = b"m every";

/// The interval an entry sets, if it is an interval entry.
pub(super) fn of(e: &Entry) -> Option<u64> {
    if e.action != "config_reloaded" || e.object != OBJECT {
        return None;
    }
    e.details.get("checkpoint_every")?.as_u64()
}

/// The details of an interval entry.
pub(super) fn details(every: u64) -> Value {
    serde_json::json!({ "checkpoint_every": every })
}
