//! The querier side: local copies of each peer's labelled index for us,
//! replicated by cursor, kept in sled and as an in-memory lookup by tag.
//!
//! Tree `peer_index`:
//!
//! ```text
//! e peer                    -> epoch:be32 public_key:32
//! c peer                    -> last delta pos applied:be64
//! x peer 0 tag:16 nonce:24  -> sealed label
//! ```
//!
//! Rows are opaque here: a row can only be opened with the OPRF output of
//! the key that made its tag, which only an evaluation by the holder yields.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::{IndexDelta, PullIndexRequest};

use crate::context::Context;
use crate::identity::AgencyId;
use crate::privacy::{self, ELEMENT_LEN, IndexEntry, IndexLookup, IndexLookupBuilder};
use crate::store::{Store, StoreError};

const TREE: &str = "peer_index";
const ROW_ID: usize = privacy::TAG_LEN + privacy::NONCE_LEN;
/// Deltas applied per batch during a pull.
const PULL_BATCH: usize = 64;

/// Replica errors.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the peer sent a malformed index delta at position {pos}: {problem}")]
    Malformed { pos: u64, problem: String },
    #[error("lookup: {0}")]
    Privacy(#[from] privacy::PrivacyError),
}

fn sled_err(op: &'static str) -> impl FnOnce(sled::Error) -> ReplicaError {
    move |source| ReplicaError::Store(StoreError::Sled { op, source })
}

fn corrupt() -> ReplicaError {
    ReplicaError::Store(StoreError::Corrupt { tree: TREE })
}

fn pkey(tag: u8, peer: &AgencyId, rest: &[u8]) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(peer.as_str().as_bytes());
    if tag == b'x' {
        k.push(0);
    }
    k.extend_from_slice(rest);
    k
}

/// Most segments a row set keeps before merging them into one.
const MAX_SEGMENTS: usize = 8;

/// A peer's rows as a few sorted segments: a delta adds a small segment
/// instead of rebuilding the whole table, and segments merge when too many.
#[derive(Debug, Clone, Default)]
pub struct RowSet {
    parts: Vec<Arc<IndexLookup>>,
}

impl RowSet {
    /// Rows under `tag`, in every segment.
    pub fn get<'a>(
        &'a self,
        tag: &privacy::Tag,
    ) -> impl Iterator<Item = privacy::EntryRef<'a>> + 'a {
        let tag = *tag;
        self.parts.iter().flat_map(move |p| p.get(&tag))
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This set without `removes` and with `adds`.
    fn apply(
        &self,
        adds: Vec<IndexEntry>,
        removes: &HashSet<[u8; ROW_ID]>,
    ) -> Result<Self, ReplicaError> {
        let mut parts: Vec<Arc<IndexLookup>> = if removes.is_empty() {
            self.parts.clone()
        } else {
            self.parts
                .iter()
                .map(|p| {
                    let touched = p.iter().any(|e| removes.contains(&row_id(e.tag, e.nonce)));
                    if touched {
                        Arc::new(
                            IndexLookup::clone(p)
                                .retain(|e| !removes.contains(&row_id(e.tag, e.nonce))),
                        )
                    } else {
                        p.clone()
                    }
                })
                .collect()
        };
        if !adds.is_empty() {
            parts.push(Arc::new(IndexLookup::from_entries(adds)?));
        }
        if parts.len() > MAX_SEGMENTS {
            let mut builder = IndexLookupBuilder::default();
            for part in &parts {
                for e in part.iter() {
                    builder.push(e.tag, e.nonce, e.sealed)?;
                }
            }
            parts = vec![Arc::new(builder.finish())];
        }
        parts.retain(|p| !p.is_empty());
        Ok(Self { parts })
    }
}

fn row_id(tag: &[u8; privacy::TAG_LEN], nonce: &[u8; privacy::NONCE_LEN]) -> [u8; ROW_ID] {
    let mut id = [0u8; ROW_ID];
    id[..privacy::TAG_LEN].copy_from_slice(tag);
    id[privacy::TAG_LEN..].copy_from_slice(nonce);
    id
}

/// One peer's index as we hold it.
#[derive(Debug)]
pub struct PeerReplica {
    pub epoch: u32,
    pub public_key: [u8; ELEMENT_LEN],
    pub lookup: RowSet,
}

/// Every peer's replica.
pub struct Replicas {
    tree: sled::Tree,
    map: RwLock<BTreeMap<AgencyId, Arc<PeerReplica>>>,
    write: std::sync::Mutex<()>,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas").finish_non_exhaustive()
    }
}

impl Replicas {
    /// Opens the tree and loads every stored replica into memory.
    pub fn open(store: &Store, peers: &[AgencyId]) -> Result<Self, ReplicaError> {
        let tree = store.tree(TREE)?;
        let mut map = BTreeMap::new();
        for peer in peers {
            let Some(e) = tree
                .get(pkey(b'e', peer, &[]))
                .map_err(sled_err("reading a replica"))?
            else {
                continue;
            };
            let (epoch, public_key) = parse_epoch(&e).ok_or_else(corrupt)?;
            let mut builder = IndexLookupBuilder::default();
            let prefix = pkey(b'x', peer, &[]);
            for kv in tree.scan_prefix(&prefix) {
                let (k, v) = kv.map_err(sled_err("loading a replica"))?;
                let id = k
                    .get(prefix.len()..)
                    .filter(|id| id.len() == ROW_ID)
                    .ok_or_else(corrupt)?;
                let (tag, nonce) = id.split_at(privacy::TAG_LEN);
                builder.push(
                    tag.try_into().map_err(|_| corrupt())?,
                    nonce.try_into().map_err(|_| corrupt())?,
                    &v,
                )?;
            }
            map.insert(
                peer.clone(),
                Arc::new(PeerReplica {
                    epoch,
                    public_key,
                    lookup: RowSet {
                        parts: vec![Arc::new(builder.finish())],
                    },
                }),
            );
        }
        Ok(Self {
            tree,
            map: RwLock::new(map),
            write: std::sync::Mutex::new(()),
        })
    }

    /// The current replica of `peer`'s index, if any was received.
    pub fn get(&self, peer: &AgencyId) -> Option<Arc<PeerReplica>> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(peer)
            .cloned()
    }

    /// The last delta position applied from `peer`.
    pub fn cursor(&self, peer: &AgencyId) -> u64 {
        self.tree
            .get(pkey(b'c', peer, &[]))
            .ok()
            .flatten()
            .and_then(|v| Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?)))
            .unwrap_or(0)
    }

    /// Applies deltas in order (stale ones are skipped) and returns the rows
    /// added under the resulting epoch, for continuous screening.
    pub fn apply(
        &self,
        peer: &AgencyId,
        deltas: &[IndexDelta],
    ) -> Result<Vec<IndexEntry>, ReplicaError> {
        let _guard = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut cursor = self.cursor(peer);
        let current = self.get(peer);
        let mut epoch = current.as_ref().map(|r| r.epoch);
        let mut public_key = current.as_ref().map(|r| r.public_key);
        let mut reset = false;
        let mut adds: Vec<IndexEntry> = Vec::new();
        let mut removes: HashSet<[u8; ROW_ID]> = HashSet::new();
        let mut batch = sled::Batch::default();
        for delta in deltas {
            if delta.pos <= cursor {
                continue;
            }
            let bad = |problem: &str| ReplicaError::Malformed {
                pos: delta.pos,
                problem: problem.to_owned(),
            };
            let pk: [u8; ELEMENT_LEN] = delta
                .public_key
                .as_slice()
                .try_into()
                .map_err(|_| bad("public key is not 32 bytes"))?;
            if delta.reset || epoch.is_none() {
                for kv in self.tree.scan_prefix(pkey(b'x', peer, &[])) {
                    let (k, _) = kv.map_err(sled_err("resetting a replica"))?;
                    batch.remove(k);
                }
                adds.clear();
                removes.clear();
                reset = true;
            } else if Some(delta.epoch) != epoch || Some(pk) != public_key {
                return Err(bad("the key changed without a reset"));
            }
            epoch = Some(delta.epoch);
            public_key = Some(pk);
            for r in &delta.removes {
                let id: [u8; ROW_ID] = r
                    .as_slice()
                    .try_into()
                    .map_err(|_| bad("a removed row id is not 40 bytes"))?;
                batch.remove(pkey(b'x', peer, &id));
                adds.retain(|e| !(e.tag == id[..16] && e.nonce == id[16..]));
                removes.insert(id);
            }
            for a in &delta.adds {
                let entry = IndexEntry::from_bytes(a).map_err(|e| bad(&e.to_string()))?;
                let mut id = [0u8; ROW_ID];
                id[..16].copy_from_slice(&entry.tag);
                id[16..].copy_from_slice(&entry.nonce);
                removes.remove(&id);
                batch.insert(pkey(b'x', peer, &id), entry.sealed.clone());
                adds.push(entry);
            }
            cursor = delta.pos;
        }
        let (Some(epoch), Some(public_key)) = (epoch, public_key) else {
            return Ok(Vec::new());
        };
        let mut e = epoch.to_be_bytes().to_vec();
        e.extend_from_slice(&public_key);
        batch.insert(pkey(b'e', peer, &[]), e);
        batch.insert(pkey(b'c', peer, &[]), cursor.to_be_bytes().as_slice());
        crate::store::apply_batch(&self.tree, batch).map_err(sled_err("applying index deltas"))?;

        let base = match (reset, current) {
            (false, Some(r)) => r.lookup.clone(),
            _ => RowSet::default(),
        };
        let lookup = base.apply(adds.clone(), &removes)?;
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                peer.clone(),
                Arc::new(PeerReplica {
                    epoch,
                    public_key,
                    lookup,
                }),
            );
        Ok(adds)
    }
}

fn parse_epoch(v: &[u8]) -> Option<(u32, [u8; ELEMENT_LEN])> {
    let epoch = u32::from_be_bytes(v.get(..4)?.try_into().ok()?);
    let pk = v.get(4..36)?.try_into().ok()?;
    Some((epoch, pk))
}

/// Pulls `peer`'s index deltas after our cursor, applies them, and checks
/// the added rows against the watch list. Returns the rows added.
pub async fn pull(ctx: &Context, peer: &AgencyId) -> Result<usize, String> {
    let after = ctx.replicas.cursor(peer);
    let channel = ctx.peers.channel(peer, &ctx.tls)?;
    let mut client = FederationClient::new(channel).max_decoding_message_size(256 << 20);
    let mut stream = client
        .pull_index(PullIndexRequest { after })
        .await
        .map_err(|s| crate::dial::explain(&s))?
        .into_inner();
    let mut added = 0usize;
    let mut batch = Vec::new();
    loop {
        let next = stream.next().await;
        let done = match next {
            Some(Ok(d)) => {
                batch.push(d);
                false
            }
            Some(Err(status)) => return Err(crate::dial::explain(&status)),
            None => true,
        };
        if batch.len() >= PULL_BATCH || (done && !batch.is_empty()) {
            let deltas = std::mem::take(&mut batch);
            let reset = deltas.iter().any(|d| d.reset);
            let adds = ctx
                .replicas
                .apply(peer, &deltas)
                .map_err(|e| e.to_string())?;
            added += adds.len();
            ctx.store.flush().await.map_err(|e| e.to_string())?;
            if let Some(replica) = ctx.replicas.get(peer) {
                super::watch::check_new_rows(ctx, peer, &replica, &adds, reset).await;
            }
        }
        if done {
            break;
        }
    }
    if added > 0 {
        tracing::debug!(peer = %peer, rows = added, "index replica updated");
    }
    Ok(added)
}
