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
//!
//! [`Replicas`] is the tree and the lookups; [`ReplicaSync`] pulls a peer's
//! deltas through a [`PeerClient`] and hands the new rows to the watch list.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use tessera_proto::v1::IndexDelta;

use super::watch::Watcher;
use crate::exchange::client::{PeerClient, PeerError};
use crate::identity::AgencyId;
use crate::privacy::{self, ELEMENT_LEN, IndexEntry, IndexLookup, IndexLookupBuilder};
use crate::store::keys::{Key, RowWrites, Tree, read_u32};
use crate::store::{Store, StoreError};

const TREE: &str = "peer_index";
const EPOCH: &str = "replica epoch";
const CURSOR: &str = "replica cursor";
const ROW: &str = "replica row";
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
    #[error(transparent)]
    Peer(#[from] PeerError),
}

/// `e peer`: the epoch and public key the replica is under.
fn epoch_key(peer: &AgencyId) -> Key {
    Key::tag(b'e').text(peer.as_str())
}

/// `c peer`: the last delta position applied.
fn cursor_key(peer: &AgencyId) -> Key {
    Key::tag(b'c').text(peer.as_str())
}

/// `w peer`: while the rows of an apply are written, the position it writes up to. Found
/// at start, it says rows up to there may stand ahead of the cursor (a crash cut the
/// apply short), so the deltas that bring them again must not count them twice.
fn writing_key(peer: &AgencyId) -> Key {
    Key::tag(b'w').text(peer.as_str())
}

/// `x peer 0`: the rows; a row's key ends with its tag and nonce.
fn rows_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'x').field(peer.as_str())
}

/// Most rows a merge makes: larger segments are left as they are, so that a merge never
/// holds two copies of a large part of the table at once (about 25 MB at most).
const MERGED_ROWS_MAX: usize = 1 << 18;

/// Most segments a row set keeps: with [`MERGED_ROWS_MAX`], only a table of over 30 million
/// rows, or many removals, makes more, and then the smallest neighbours are joined.
const MAX_SEGMENTS: usize = 256;

/// A peer's rows as a few sorted segments, newest last: a delta adds a small segment
/// instead of rebuilding the whole table. A segment merges into the one before it while
/// that one is less than twice its size and the two hold at most [`MERGED_ROWS_MAX`] rows,
/// so sizes at least double from the newest to the oldest up to that size: a row is copied
/// O(log n) times over n rows replicated (merging everything every few deltas copied the
/// whole table each time, quadratic over an import), and a lookup searches a few dozen
/// segments at most.
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

    /// How many segments the rows are in.
    pub fn segments(&self) -> usize {
        self.parts.len()
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
                    // Found by tag, not by a walk of every row of every segment.
                    let touched = removes.iter().any(|id| {
                        let (tag, nonce) = id.split_at(privacy::TAG_LEN);
                        tag.try_into()
                            .is_ok_and(|tag| p.get(tag).any(|e| e.nonce[..] == *nonce))
                    });
                    if touched {
                        Arc::new(p.retained(|e| !removes.contains(&row_id(e.tag, e.nonce))))
                    } else {
                        p.clone()
                    }
                })
                .collect()
        };
        parts.retain(|p| !p.is_empty());
        if !adds.is_empty() {
            parts.push(Arc::new(IndexLookup::from_entries(adds)?));
        }
        while let [.., older, newest] = parts.as_slice()
            && older.len() < 2 * newest.len()
            && older.len() + newest.len() <= MERGED_ROWS_MAX
        {
            let merged = IndexLookup::merge(&[older.as_ref(), newest.as_ref()])?;
            parts.truncate(parts.len() - 2);
            parts.push(Arc::new(merged));
        }
        // Removals can leave small segments behind larger ones; never let them pile up.
        join_smallest_neighbours(&mut parts, MAX_SEGMENTS)?;
        Ok(Self { parts })
    }
}

/// Joins the two neighbouring segments smallest together, one pair at a time, until at
/// most `max` are left (never all at once: a join holds two segments and their copy).
fn join_smallest_neighbours(
    parts: &mut Vec<Arc<IndexLookup>>,
    max: usize,
) -> Result<(), ReplicaError> {
    while parts.len() > max.max(1) {
        let i = (0..parts.len() - 1)
            .min_by_key(|&i| parts[i].len() + parts[i + 1].len())
            .unwrap_or(0);
        let merged = IndexLookup::merge(&[parts[i].as_ref(), parts[i + 1].as_ref()])?;
        parts.splice(i..=i + 1, [Arc::new(merged)]);
    }
    Ok(())
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
    /// The last delta position applied, as stored with the rows.
    pub cursor: u64,
    /// Rows of deltas up to this position may be held already (see [`writing_key`]).
    rewritten_until: u64,
}

/// Every peer's replica.
pub struct Replicas {
    tree: Tree,
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
        let tree = Tree::open(store, TREE)?;
        let mut map = BTreeMap::new();
        for peer in peers {
            let Some(e) = tree.get(epoch_key(peer), EPOCH)? else {
                continue;
            };
            let (epoch, public_key) = parse_epoch(&e).ok_or_else(|| tree.corrupt(EPOCH))?;
            let mut builder = IndexLookupBuilder::default();
            let prefix = rows_prefix(peer);
            for kv in tree.scan(&prefix, ROW) {
                let (k, v) = kv?;
                let id = k
                    .get(prefix.len()..)
                    .filter(|id| id.len() == ROW_ID)
                    .ok_or_else(|| tree.corrupt(ROW))?;
                let (tag, nonce) = id.split_at(privacy::TAG_LEN);
                builder.push(
                    tag.try_into().map_err(|_| tree.corrupt(ROW))?,
                    nonce.try_into().map_err(|_| tree.corrupt(ROW))?,
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
                    cursor: tree.u64_at(cursor_key(peer), CURSOR)?,
                    rewritten_until: tree.u64_at(writing_key(peer), CURSOR)?,
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

    /// The last delta position applied from `peer` (0: none).
    /// Read from memory: a screening asks it, and a long write to the store must not
    /// hold the screening up.
    pub fn cursor(&self, peer: &AgencyId) -> Result<u64, StoreError> {
        Ok(self.get(peer).map_or(0, |r| r.cursor))
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
        let current = self.get(peer);
        let mut cursor = current.as_ref().map_or(0, |r| r.cursor);
        let rewritten_until = current.as_ref().map_or(0, |r| r.rewritten_until);
        let start = cursor;
        let mut epoch = current.as_ref().map(|r| r.epoch);
        let mut public_key = current.as_ref().map(|r| r.public_key);
        let mut reset = false;
        let mut adds: Vec<IndexEntry> = Vec::new();
        let mut removes: HashSet<[u8; ROW_ID]> = HashSet::new();
        let mut batch = RowWrites::default();
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
                for kv in self.tree.scan(rows_prefix(peer), ROW) {
                    batch.remove(kv?.0);
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
                batch.remove(rows_prefix(peer).bytes(&id));
                adds.retain(|e| !(e.tag == id[..16] && e.nonce == id[16..]));
                removes.insert(id);
            }
            for a in &delta.adds {
                let entry = IndexEntry::from_bytes(a).map_err(|e| bad(&e.to_string()))?;
                let id = row_id(&entry.tag, &entry.nonce);
                removes.remove(&id);
                batch.insert(rows_prefix(peer).bytes(&id), entry.sealed.clone());
                adds.push(entry);
            }
            cursor = delta.pos;
        }
        let (Some(epoch), Some(public_key)) = (epoch, public_key) else {
            return Ok(Vec::new());
        };
        let mut e = epoch.to_be_bytes().to_vec();
        e.extend_from_slice(&public_key);
        // Rows first, the epoch and the cursor after them. Rows of a delta written ahead
        // of the cursor are real rows of the peer's index (or removals it made), and a
        // copy whose cursor is behind the peer's position is never taken for a clear.
        // Rows a crash cut short may have written already: counted once.
        let dedupe = !reset && rewritten_until > start;
        self.tree.insert(
            writing_key(peer),
            rewritten_until.max(cursor).to_be_bytes().as_slice(),
            CURSOR,
        )?;
        batch.commit(epoch_key(peer), e);
        batch.commit(cursor_key(peer), cursor.to_be_bytes().as_slice());
        let rewritten_until = if cursor >= rewritten_until {
            batch.commit_remove(writing_key(peer));
            0
        } else {
            rewritten_until
        };
        self.tree.apply_rows(batch, ROW)?;

        let base = match (reset, current) {
            (false, Some(r)) => r.lookup.clone(),
            _ => RowSet::default(),
        };
        if dedupe {
            adds.retain(|a| !base.get(&a.tag).any(|e| *e.nonce == a.nonce));
        }
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
                    cursor,
                    rewritten_until,
                }),
            );
        Ok(adds)
    }
}

fn parse_epoch(v: &[u8]) -> Option<(u32, [u8; ELEMENT_LEN])> {
    let epoch = read_u32(v)?;
    let pk = v.get(4..36)?.try_into().ok()?;
    Some((epoch, pk))
}

/// Keeps our replicas of the peers' indexes current: pulls a peer's
/// deltas after our cursor, applies them durably, and has the watch list
/// check the rows they add.
#[derive(Debug)]
pub struct ReplicaSync {
    replicas: Arc<Replicas>,
    client: Arc<dyn PeerClient>,
    store: Store,
    watcher: Arc<Watcher>,
}

impl ReplicaSync {
    pub fn new(
        replicas: Arc<Replicas>,
        client: Arc<dyn PeerClient>,
        store: Store,
        watcher: Arc<Watcher>,
    ) -> Self {
        Self {
            replicas,
            client,
            store,
            watcher,
        }
    }

    /// Pulls `peer`'s index deltas after our cursor, applies them in
    /// batches (each durable before the next), and checks the added rows
    /// against the watch list. Returns the rows added.
    pub async fn pull(&self, peer: &AgencyId) -> Result<usize, ReplicaError> {
        let after = self.replicas.cursor(peer)?;
        let mut stream = self.client.pull_index(peer, after).await?;
        let mut added = 0usize;
        let mut batch = Vec::new();
        loop {
            let next = stream.next().await;
            let done = match next {
                Some(Ok(d)) => {
                    batch.push(d);
                    false
                }
                Some(Err(e)) => return Err(e.into()),
                None => true,
            };
            if batch.len() >= PULL_BATCH || (done && !batch.is_empty()) {
                let deltas = std::mem::take(&mut batch);
                let reset = deltas.iter().any(|d| d.reset);
                let adds = self.replicas.apply(peer, &deltas)?;
                added += adds.len();
                self.store.flush().await?;
                if let Some(replica) = self.replicas.get(peer) {
                    self.watcher
                        .check_new_rows(peer, &replica, &adds, reset)
                        .await;
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
}

#[cfg(test)]
mod tests;
