//! The `consult` sled tree: consultations as both sides keep them, and the
//! outbox of signed steps not yet acknowledged by the peer.
//!
//! ```text
//! c id                    -> Consultation
//! n                       -> last consultation number:be64
//! s                       -> last step sent by us:be64
//! o peer 0 step:be64      -> SignedMessage (to deliver)
//! ```

use prost::Message;
use tessera_proto::v1::{Consultation, SignedMessage};

use crate::identity::AgencyId;
use crate::store::{Store, StoreError};

const TREE: &str = "consult";

fn sled_err(op: &'static str) -> impl FnOnce(sled::Error) -> StoreError {
    move |source| StoreError::Sled { op, source }
}

fn be64(v: &[u8]) -> u64 {
    v.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Typed access to the consultation tree.
pub struct ConsultStore {
    tree: sled::Tree,
    lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for ConsultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsultStore").finish_non_exhaustive()
    }
}

fn ckey(id: &str) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend_from_slice(id.as_bytes());
    k
}

fn okey(peer: &AgencyId, step: u64) -> Vec<u8> {
    let mut k = vec![b'o'];
    k.extend_from_slice(peer.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&step.to_be_bytes());
    k
}

impl ConsultStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: store.tree(TREE)?,
            lock: std::sync::Mutex::new(()),
        })
    }

    /// Serialises read-modify-write changes.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn counter(&self, key: &[u8]) -> Result<u64, StoreError> {
        let v = self
            .tree
            .update_and_fetch(key, |old| {
                Some((old.map_or(0, be64) + 1).to_be_bytes().to_vec())
            })
            .map_err(sled_err("counting"))?;
        Ok(v.map_or(1, |v| be64(&v)))
    }

    /// The next consultation number.
    pub fn next_number(&self) -> Result<u64, StoreError> {
        self.counter(b"n")
    }

    /// The next step number for a message we send.
    pub fn next_step(&self) -> Result<u64, StoreError> {
        self.counter(b"s")
    }

    pub fn get(&self, id: &str) -> Result<Option<Consultation>, StoreError> {
        self.tree
            .get(ckey(id))
            .map_err(sled_err("reading a consultation"))?
            .map(|v| {
                Consultation::decode(v.as_ref()).map_err(|_| StoreError::Corrupt { tree: TREE })
            })
            .transpose()
    }

    pub fn list(&self) -> Result<Vec<Consultation>, StoreError> {
        self.tree
            .scan_prefix([b'c'])
            .map(|kv| {
                let (_, v) = kv.map_err(sled_err("listing consultations"))?;
                Consultation::decode(v.as_ref()).map_err(|_| StoreError::Corrupt { tree: TREE })
            })
            .collect()
    }

    /// Stores a consultation and, in the same batch, queues `outgoing` for `peer`.
    pub fn save(
        &self,
        c: &Consultation,
        outgoing: Option<(&AgencyId, u64, &SignedMessage)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(ckey(&c.id), c.encode_to_vec());
        if let Some((peer, step, msg)) = outgoing {
            batch.insert(okey(peer, step), msg.encode_to_vec());
        }
        crate::store::apply_batch(&self.tree, batch).map_err(sled_err("storing a consultation"))
    }

    /// Steps waiting for `peer`, oldest first.
    pub fn outbox(&self, peer: &AgencyId) -> Vec<(u64, SignedMessage)> {
        let mut prefix = vec![b'o'];
        prefix.extend_from_slice(peer.as_str().as_bytes());
        prefix.push(0);
        self.tree
            .scan_prefix(&prefix)
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                Some((
                    be64(&k[prefix.len()..]),
                    SignedMessage::decode(v.as_ref()).ok()?,
                ))
            })
            .collect()
    }

    /// Steps for `consultation` still waiting (for display).
    pub fn undelivered(&self, peer: &AgencyId) -> u32 {
        self.outbox(peer).len() as u32
    }

    pub fn delivered(&self, peer: &AgencyId, step: u64) -> Result<(), StoreError> {
        self.tree
            .remove(okey(peer, step))
            .map(|_| ())
            .map_err(sled_err("clearing the consultation outbox"))
    }
}
