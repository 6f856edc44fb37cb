//! Anchors: each node keeps its peers' newest signed checkpoints, so that a
//! chain rewritten by someone with full access to one node's disk is caught
//! against the others ([`compare`], `tessera audit verify --against-peers`).
//!
//! A worker ([`AnchorPuller`]) asks every peer for its newest checkpoint
//! (`AuditHead`) each round, checks it under the peer's pinned key and keeps
//! it if it is newer than the last one kept, at most [`MAX_ANCHORS`] per peer
//! (the oldest go first). A peer asks for the anchors kept of its own chain
//! (`HeldAnchors`). A peer can only ever fill its own slots, with checkpoints
//! signed by its own key.
//!
//! ```text
//! tree `anchors`:  peer 0x00 seq:be64 -> AuditCheckpoint (protobuf)
//! ```

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tessera_proto::v1::AuditCheckpoint;
use tokio_util::sync::CancellationToken;

use super::entry::{CHECKPOINT_TAG, Checkpoint, key_seq};
use super::{AuditError, AuditLog};
use crate::exchange::client::PeerClient;
use crate::identity::AgencyId;
use crate::peers::PinnedKeys;
use crate::signing::PublicKey;
use crate::store::{Store, StoreError};

const TREE: &str = "anchors";
/// Most checkpoints kept per peer.
pub const MAX_ANCHORS: usize = 1000;

impl From<&Checkpoint> for AuditCheckpoint {
    fn from(c: &Checkpoint) -> Self {
        Self {
            seq: c.seq,
            entry_hash: c.entry_hash.to_vec(),
            key_id: c.key_id.clone(),
            signature: c.signature.clone(),
        }
    }
}

/// A checkpoint off the wire, if well-formed.
fn checkpoint(c: &AuditCheckpoint) -> Option<Checkpoint> {
    Some(Checkpoint {
        seq: c.seq,
        entry_hash: c.entry_hash.as_slice().try_into().ok()?,
        key_id: c.key_id.clone(),
        signature: c.signature.clone(),
    })
}

fn prefix(peer: &AgencyId) -> Vec<u8> {
    let mut k = peer.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

/// The peers' checkpoints this node keeps.
#[derive(Debug)]
pub struct AnchorStore {
    tree: sled::Tree,
}

impl AnchorStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: store.tree(TREE)?,
        })
    }

    fn read(
        &self,
        peer: &AgencyId,
        newest_first: bool,
    ) -> Result<Vec<AuditCheckpoint>, AuditError> {
        let scan = self.tree.scan_prefix(prefix(peer));
        let kvs: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = if newest_first
        {
            Box::new(scan.rev())
        } else {
            Box::new(scan)
        };
        kvs.take(MAX_ANCHORS)
            .map(|kv| {
                let (_, v) = kv.map_err(StoreError::sled("reading anchors"))?;
                AuditCheckpoint::decode(v.as_ref()).map_err(|_| AuditError::Corrupt {
                    seq: 0,
                    problem: "a kept anchor is unreadable".into(),
                })
            })
            .collect()
    }

    /// `peer`'s checkpoints kept here, newest first.
    pub fn held(&self, peer: &AgencyId) -> Result<Vec<AuditCheckpoint>, AuditError> {
        self.read(peer, true)
    }

    /// Keeps `c` (already verified) if it is newer than the newest kept;
    /// drops the oldest beyond [`MAX_ANCHORS`]. Returns whether it was kept.
    pub fn keep(&self, peer: &AgencyId, c: &AuditCheckpoint) -> Result<bool, AuditError> {
        let newest = self.held(peer)?.first().map_or(0, |n| n.seq);
        if c.seq <= newest {
            return Ok(false);
        }
        let mut key = prefix(peer);
        key.extend_from_slice(&c.seq.to_be_bytes());
        self.tree
            .insert(key, c.encode_to_vec())
            .map_err(StoreError::sled("keeping an anchor"))?;
        let all = self.tree.scan_prefix(prefix(peer)).keys().count();
        for k in self
            .tree
            .scan_prefix(prefix(peer))
            .keys()
            .take(all.saturating_sub(MAX_ANCHORS))
        {
            let k = k.map_err(StoreError::sled("trimming anchors"))?;
            self.tree
                .remove(k)
                .map_err(StoreError::sled("trimming anchors"))?;
        }
        Ok(true)
    }
}

impl AuditLog {
    /// The newest checkpoint written, if any.
    pub fn newest_checkpoint(&self) -> Result<Option<Checkpoint>, AuditError> {
        let Some(kv) = self.tree.scan_prefix([CHECKPOINT_TAG]).next_back() else {
            return Ok(None);
        };
        let (k, v) = kv.map_err(StoreError::sled("reading audit checkpoints"))?;
        let seq = key_seq(&k).unwrap_or(0);
        serde_json::from_slice(&v)
            .map(Some)
            .map_err(|_| AuditError::Corrupt {
                seq,
                problem: "its checkpoint is unreadable".into(),
            })
    }
}

/// Compares our chain with the checkpoints `peer` keeps of it: every one
/// signed by `own` must match the entry at its seq. Returns what does not.
pub fn compare(
    log: &AuditLog,
    own: &PublicKey,
    peer: &AgencyId,
    held: &[AuditCheckpoint],
) -> Result<(), String> {
    let head = log.len();
    for c in held {
        let Some(c) = checkpoint(c).filter(|c| c.verify(std::slice::from_ref(own)).is_ok()) else {
            return Err(format!(
                "{peer} keeps a checkpoint that our key did not sign"
            ));
        };
        let seq = c.seq;
        match log.entry(seq) {
            Ok(Some(e)) if e.hash == c.entry_hash => {}
            Ok(Some(_)) => {
                return Err(format!(
                    "entry {seq} differs from the checkpoint {peer} keeps: the history was rewritten"
                ));
            }
            Ok(None) => {
                return Err(format!(
                    "entry {seq} missing: {peer} keeps our checkpoint at {seq}, the chain ends at {head}"
                ));
            }
            Err(e) => return Err(format!("entry {seq}: {e}")),
        }
    }
    Ok(())
}

/// Pulls every peer's newest checkpoint into the anchor store.
#[derive(Debug)]
pub struct AnchorPuller {
    pub peers: Vec<AgencyId>,
    pub client: Arc<dyn PeerClient>,
    pub pinned: PinnedKeys,
    pub anchors: Arc<AnchorStore>,
    pub interval: Duration,
}

impl AnchorPuller {
    /// One round: asks each peer, keeps what verifies. Returns how many
    /// checkpoints were kept.
    pub async fn round(&self) -> usize {
        let mut kept = 0;
        for peer in &self.peers {
            let Ok(head) = self.client.audit_head(peer).await else {
                continue;
            };
            let Some(key) = self.pinned.get(peer) else {
                continue;
            };
            let verified = checkpoint(&head).is_some_and(|c| c.verify(&[key]).is_ok());
            if !verified {
                tracing::warn!(peer = %peer, "a peer's audit checkpoint does not verify; not kept");
                continue;
            }
            match self.anchors.keep(peer, &head) {
                Ok(true) => kept += 1,
                Ok(false) => {}
                Err(error) => tracing::error!(peer = %peer, %error, "cannot keep an anchor"),
            }
        }
        kept
    }

    pub async fn run(self, stop: CancellationToken) {
        loop {
            self.round().await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::chain::tests::{fill, fixture};
    use super::*;
    use crate::signing::SigningKey;
    use crate::test_support::agency;

    #[test]
    fn a_cut_or_rewritten_chain_differs_from_the_anchors() {
        let f = fixture(2);
        fill(&f.log, 4);
        let own = *f.key.public();
        let b = agency("FR-SBDU");
        let held: Vec<AuditCheckpoint> = [2, 4]
            .iter()
            .map(|&s| {
                let e = f.log.entry(s).unwrap().unwrap();
                AuditCheckpoint::from(&Checkpoint::sign(s, e.hash, &f.key))
            })
            .collect();
        assert_eq!(compare(&f.log, &own, &b, &held), Ok(()));
        // Kept by a peer: only newer ones, at most MAX_ANCHORS.
        let store = AnchorStore::open(&f.store).unwrap();
        assert!(store.keep(&b, &held[0]).unwrap());
        assert!(store.keep(&b, &held[1]).unwrap());
        assert!(!store.keep(&b, &held[0]).unwrap(), "older than the newest");
        assert_eq!(
            store.held(&b).unwrap(),
            vec![held[1].clone(), held[0].clone()]
        );
        assert!(store.held(&agency("US-BIS")).unwrap().is_empty());

        // One the chain no longer reaches: a cut tail.
        let beyond = AuditCheckpoint::from(&Checkpoint::sign(9, [7; 32], &f.key));
        assert_eq!(
            compare(&f.log, &own, &b, &[beyond]),
            Err("entry 9 missing: FR-SBDU keeps our checkpoint at 9, the chain ends at 4".into())
        );
        // Another hash at a seq the chain has: a rewrite.
        let other = AuditCheckpoint::from(&Checkpoint::sign(2, [7; 32], &f.key));
        assert!(
            compare(&f.log, &own, &b, &[other])
                .unwrap_err()
                .contains("rewritten")
        );
        // Not signed by us: refused as evidence either way.
        let stranger = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let forged = AuditCheckpoint::from(&Checkpoint::sign(2, [7; 32], &stranger));
        assert!(
            compare(&f.log, &own, &b, &[forged])
                .unwrap_err()
                .contains("did not sign")
        );
    }
}
