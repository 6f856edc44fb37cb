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
use tessera_proto::v1::{ConsultMessage, Consultation, SignedMessage};

use crate::identity::AgencyId;
use crate::store::keys::{Key, Tree};
use crate::store::{Store, StoreError};

const TREE: &str = "consult";
const CONSULTATION: &str = "consultation";
const COUNTER: &str = "consultation counter";
const STEP: &str = "queued step";

/// Typed access to the consultation tree.
pub struct ConsultStore {
    tree: Tree,
    lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for ConsultStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsultStore").finish_non_exhaustive()
    }
}

fn consultation_key(id: &str) -> Key {
    Key::tag(b'c').text(id)
}

fn outbox_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'o').field(peer.as_str())
}

impl ConsultStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: Tree::open(store, TREE)?,
            lock: std::sync::Mutex::new(()),
        })
    }

    /// Serialises read-modify-write changes.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next consultation number.
    pub fn next_number(&self) -> Result<u64, StoreError> {
        self.tree.next(Key::name(b"n"), COUNTER)
    }

    /// The next step number for a message we send.
    pub fn next_step(&self) -> Result<u64, StoreError> {
        self.tree.next(Key::name(b"s"), COUNTER)
    }

    pub fn get(&self, id: &str) -> Result<Option<Consultation>, StoreError> {
        self.tree.message(consultation_key(id), CONSULTATION)
    }

    pub fn list(&self) -> Result<Vec<Consultation>, StoreError> {
        Ok(self
            .tree
            .messages([b'c'], CONSULTATION)?
            .into_iter()
            .map(|(_, c)| c)
            .collect())
    }

    /// Stores a consultation and, in the same batch, queues `outgoing` for `peer`.
    pub fn save(
        &self,
        c: &Consultation,
        outgoing: Option<(&AgencyId, u64, &SignedMessage)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(consultation_key(&c.id), c.encode_to_vec());
        if let Some((peer, step, msg)) = outgoing {
            batch.insert(outbox_prefix(peer).u64(step), msg.encode_to_vec());
        }
        self.tree.apply(batch, CONSULTATION)
    }

    /// Steps waiting for `peer`, oldest first, by step number.
    pub fn outbox(&self, peer: &AgencyId) -> Result<Vec<(u64, SignedMessage)>, StoreError> {
        let prefix = outbox_prefix(peer);
        self.tree
            .messages(&prefix, STEP)?
            .into_iter()
            .map(|(k, m)| Ok((self.tree.u64_in_key(&k, prefix.len(), STEP)?, m)))
            .collect()
    }

    /// How many steps of consultation `id` wait for `peer` (for display).
    pub fn undelivered(&self, peer: &AgencyId, id: &str) -> Result<u32, StoreError> {
        let waiting = self
            .outbox(peer)?
            .iter()
            .filter(|(_, signed)| {
                ConsultMessage::decode(signed.body.as_slice())
                    .is_ok_and(|m| m.consultation_id == id)
            })
            .count();
        Ok(u32::try_from(waiting).unwrap_or(u32::MAX))
    }

    pub fn delivered(&self, peer: &AgencyId, step: u64) -> Result<(), StoreError> {
        self.tree.remove(outbox_prefix(peer).u64(step), STEP)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{agency, temp_store};

    fn signed(n: u8) -> SignedMessage {
        signed_for("DE-BAFA-C1", n)
    }

    fn signed_for(id: &str, n: u8) -> SignedMessage {
        SignedMessage {
            body: ConsultMessage {
                consultation_id: id.into(),
                step: u64::from(n),
                ..ConsultMessage::default()
            }
            .encode_to_vec(),
            ..SignedMessage::default()
        }
    }

    #[test]
    fn steps_wait_per_peer_in_order_until_delivered() {
        let (_dir, store) = temp_store();
        let consults = ConsultStore::open(&store).unwrap();
        let (b, c) = (agency("FR-SBDU"), agency("US-BIS"));
        let one = Consultation {
            id: "DE-BAFA-C1".into(),
            ..Consultation::default()
        };
        assert_eq!(consults.next_step().unwrap(), 1);
        consults.save(&one, Some((&b, 1, &signed(1)))).unwrap();
        consults.save(&one, Some((&c, 2, &signed(2)))).unwrap();
        consults.save(&one, Some((&b, 300, &signed(3)))).unwrap();
        let waiting: Vec<u64> = consults
            .outbox(&b)
            .unwrap()
            .iter()
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(waiting, [1, 300]);
        assert_eq!(consults.undelivered(&b, "DE-BAFA-C1").unwrap(), 2);
        consults.delivered(&b, 1).unwrap();
        assert_eq!(consults.undelivered(&b, "DE-BAFA-C1").unwrap(), 1);
        assert_eq!(consults.undelivered(&c, "DE-BAFA-C1").unwrap(), 1);
        // Another consultation's step to the same peer is not counted here.
        consults
            .save(&one, Some((&b, 301, &signed_for("DE-BAFA-C2", 4))))
            .unwrap();
        assert_eq!(consults.undelivered(&b, "DE-BAFA-C1").unwrap(), 1);
        assert_eq!(consults.undelivered(&b, "DE-BAFA-C2").unwrap(), 1);
        assert_eq!(consults.get("DE-BAFA-C1").unwrap(), Some(one));
        assert_eq!(consults.list().unwrap().len(), 1);
        assert_eq!(consults.get("DE-BAFA-C2").unwrap(), None);
    }

    #[test]
    fn an_unreadable_queued_step_is_an_error_not_an_empty_outbox() {
        let (_dir, store) = temp_store();
        let consults = ConsultStore::open(&store).unwrap();
        let b = agency("FR-SBDU");
        store
            .tree(TREE)
            .unwrap()
            .insert(outbox_prefix(&b).u64(1), vec![0xff, 0xff])
            .unwrap();
        let err = consults.outbox(&b).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stored queued step in tree consult is corrupt"
        );
    }
}
