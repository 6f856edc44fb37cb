//! The node's sled database and its trees.
//!
//! One typed wrapper per tree lives with the concern that owns it; this module
//! opens the database, names the trees, and makes writes durable. A write that
//! an RPC acknowledges has been flushed to disk first.

use std::path::Path;

/// A storage failure. The message names the operation, never a stored value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error while {op}: {source}")]
    Sled {
        op: &'static str,
        #[source]
        source: sled::Error,
    },
    #[error("stored record is corrupt in tree {tree}")]
    Corrupt { tree: &'static str },
}

impl StoreError {
    pub fn sled(op: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |source| Self::Sled { op, source }
    }
}

/// The open database.
#[derive(Clone, Debug)]
pub struct Store {
    db: sled::Db,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(StoreError::sled("opening the database"))?;
        Ok(Self { db })
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
        self.db
            .flush_async()
            .await
            .map(|_| ())
            .map_err(StoreError::sled("flushing to disk"))
    }
}
