//! The applications this member checked and decided, for its pilot
//! figures. A record holds the reference, dates, the answer and counts —
//! never a party.
//!
//! Layout of the `applications` tree:
//!
//! ```text
//! r reference -> ApplicationRecord as JSON
//! ```

use serde::{Deserialize, Serialize};

use super::BlocError;
use crate::store::Store;
use crate::store::keys::{Key, Tree};

const TREE: &str = "applications";
const RECORD: &str = "application record";

/// One checked application, as the pilot counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationRecord {
    pub reference: String,
    pub bloc: String,
    /// YYYY-MM-DD.
    pub received_on: String,
    pub checked_on: String,
    /// consult, clear, trusted or not-fully-screened (the last check).
    pub answer: String,
    pub bloc_denials_matched: u32,
    pub trusted_hits: u32,
    /// The application's control entries and destination, for the annual
    /// report (empty in records kept before they were recorded).
    #[serde(default)]
    pub control_entries: Vec<String>,
    #[serde(default)]
    pub destination: String,
    /// Consultations opened from the check.
    pub consultations: Vec<String>,
    /// granted or refused; empty while pending.
    pub decision: String,
    pub decided_on: String,
}

/// The `applications` tree.
#[derive(Debug)]
pub struct ApplicationBook {
    tree: Tree,
}

impl ApplicationBook {
    pub fn open(store: &Store) -> Result<Self, crate::store::StoreError> {
        Ok(Self {
            tree: Tree::open(store, TREE)?,
        })
    }

    fn key(reference: &str) -> Key {
        Key::tag(b'r').text(reference)
    }

    pub fn get(&self, reference: &str) -> Result<Option<ApplicationRecord>, BlocError> {
        match self.tree.get(Self::key(reference), RECORD)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|_| self.tree.corrupt(RECORD).into()),
            None => Ok(None),
        }
    }

    pub fn put(&self, record: &ApplicationRecord) -> Result<(), BlocError> {
        let bytes = serde_json::to_vec(record).map_err(|_| self.tree.corrupt(RECORD))?;
        self.tree
            .insert(Self::key(&record.reference), bytes, RECORD)?;
        Ok(())
    }

    /// Every record, of every bloc.
    pub fn all(&self) -> Result<Vec<ApplicationRecord>, BlocError> {
        self.tree
            .scan([b'r'], RECORD)
            .map(|kv| {
                let (_, v) = kv?;
                serde_json::from_slice(&v).map_err(|_| self.tree.corrupt(RECORD).into())
            })
            .collect()
    }

    /// Every record of `bloc`.
    pub fn of_bloc(&self, bloc: &str) -> Result<Vec<ApplicationRecord>, BlocError> {
        let mut all = self.all()?;
        all.retain(|r| r.bloc == bloc);
        Ok(all)
    }
}
