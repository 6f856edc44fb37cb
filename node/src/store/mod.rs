//! The node's sled database and its trees.
//!
//! One typed wrapper per tree lives with the concern that owns it; this module
//! opens the database, makes writes durable, and ([`keys`]) encodes and decodes
//! every key and value, so that a storage failure always reaches the caller
//! as a [`StoreError`] naming the tree and the kind of record. A write that an
//! RPC acknowledges has been flushed to disk first.
//!
//! | tree | owner |
//! |---|---|
//! | `notices` | `notice::store` |
//! | `holder_index` | `matching::holder` |
//! | `peer_index` | `matching::replica` |
//! | `watch` | `matching::watch` (watch list, outputs), `matching::deconflict` (hits), `alerts` (alerts) |
//! | `consult` | `consult::store` |
//! | `audit` | `audit` |
//! | `budgets` | `matching::budgets` |

pub mod keys;
pub mod paced;

use std::path::Path;

/// Orders our batch writes against our flushes, process-wide. sled 0.34
/// applies a batch under a process-wide write lock, and a flush waits for
/// I/O buffers while holding that lock's read side; a batch queued during a
/// flush then blocks sled's own flusher thread, which the flush waits for:
/// a deadlock. No batch starts while one of our flushes runs.
///
/// Flushes take the gate even while a batch waits for it (`read_recursive`):
/// a flush is what an answer waits on before it leaves (its audit entry must
/// be on disk), a batch is mostly an import's or a replica's bulk write, and
/// it goes as soon as no flush runs.
static GATE: parking_lot::RwLock<()> = parking_lot::const_rwlock(());

/// Applies `batch` to `tree` atomically (see [`GATE`]).
pub fn apply_batch(tree: &sled::Tree, batch: sled::Batch) -> sled::Result<()> {
    let _gate = GATE.write();
    tree.apply_batch(batch)
}

/// Holds off batch writes while a flush runs (see [`GATE`]).
pub fn flush_gate() -> parking_lot::RwLockReadGuard<'static, ()> {
    GATE.read_recursive()
}

/// Makes every write of `db` durable (see [`GATE`]); blocking.
pub fn flush_blocking(db: &sled::Db) -> sled::Result<usize> {
    let _gate = flush_gate();
    db.flush()
}

/// A storage failure. The message names the operation or the tree and the
/// kind of record, never a stored value or a key's bytes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error while {op}: {source}")]
    Sled {
        op: &'static str,
        #[source]
        source: sled::Error,
    },
    #[error("storage error on {record} in tree {tree}: {source}")]
    Access {
        tree: &'static str,
        record: &'static str,
        #[source]
        source: sled::Error,
    },
    #[error("stored {record} in tree {tree} is corrupt")]
    Corrupt {
        tree: &'static str,
        record: &'static str,
    },
    #[error("the flush to disk did not finish (its task {0})")]
    FlushTask(&'static str),
    /// The database files cannot be read back: bytes changed on disk.
    #[error("the database in {dir} is damaged ({problem})")]
    Damaged { dir: String, problem: String },
}

impl From<StoreError> for tonic::Status {
    fn from(e: StoreError) -> Self {
        Self::internal(e.to_string())
    }
}

/// The message of a caught panic, for an error line.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "an unexplained failure".into())
}

impl StoreError {
    /// Whether the data on disk is damaged (as opposed to an I/O or a
    /// transient failure): the node cannot run on it.
    pub fn is_damaged(&self) -> bool {
        matches!(
            self,
            Self::Damaged { .. }
                | Self::Corrupt { .. }
                | Self::Sled {
                    source: sled::Error::Corruption { .. },
                    ..
                }
                | Self::Access {
                    source: sled::Error::Corruption { .. },
                    ..
                }
        )
    }

    pub fn sled(op: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |source| Self::Sled { op, source }
    }
}

/// The page cache sled keeps by default, in MiB (`storage.cache_mb`). sled's own
/// default, 1 GiB, let a node importing 100,000 notices grow past 1.8 GiB.
pub const DEFAULT_CACHE_MB: u64 = 128;

/// The open database.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the database in `dir`. Files that sled cannot
    /// read back (it reports them, or panics on some) are
    /// [`StoreError::Damaged`], never a panic.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, DEFAULT_CACHE_MB)
    }

    /// [`Store::open`], letting sled keep up to `cache_mb` MiB of pages in memory.
    pub fn open_with_cache(dir: &Path, cache_mb: u64) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_mb.saturating_mul(1024 * 1024))
            .mode(sled::Mode::HighThroughput);
        let damaged = |problem: String| StoreError::Damaged {
            dir: dir.display().to_string(),
            problem,
        };
        // sled 0.34 panics on some damaged files instead of reporting them.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())) {
            Ok(Ok(db)) => Ok(Self { db }),
            Ok(Err(sled::Error::Corruption { .. })) => {
                Err(damaged("sled found a corrupt record".into()))
            }
            Ok(Err(e)) => Err(StoreError::sled("opening the database")(e)),
            Err(panic) => Err(damaged(format!(
                "sled could not read it back: {}",
                panic_text(panic.as_ref())
            ))),
        }
    }

    /// Wraps a database opened elsewhere (a restore's staging copy).
    pub fn from_db(db: sled::Db) -> Self {
        Self { db }
    }

    /// A named tree.
    pub fn tree(&self, name: &'static str) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(name)
            .map_err(StoreError::sled("opening a tree"))
    }

    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Makes every write so far durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || flush_blocking(&db))
            .await
            .map_err(|e| {
                StoreError::FlushTask(if e.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                })
            })?
            .map(|_| ())
            .map_err(StoreError::sled("flushing to disk"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_errors_reach_the_wire_as_internal_naming_tree_and_record() {
        let status = tonic::Status::from(StoreError::Corrupt {
            tree: "notices",
            record: "feed entry",
        });
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(
            status.message(),
            "stored feed entry in tree notices is corrupt"
        );
    }

    #[test]
    fn a_flush_makes_writes_durable_across_a_reopen() {
        crate::test_support::run(async {
            let dir = tempfile::tempdir().unwrap();
            {
                let store = Store::open(dir.path()).unwrap();
                store.tree("t").unwrap().insert(b"k", b"v").unwrap();
                store.flush().await.unwrap();
            }
            let store = crate::test_support::reopen(dir.path());
            assert_eq!(
                store
                    .tree("t")
                    .unwrap()
                    .get(b"k")
                    .unwrap()
                    .unwrap()
                    .as_ref(),
                b"v"
            );
        });
    }
}
