//! The querier side: local copies of each peer's labelled index for us,
//! replicated by cursor, kept in sled and as an in-memory lookup by tag.
//!
//! Tree `peer_index`:
//!
//! ```text
//! e peer                           -> epoch:be32 public_key:32
//! c peer                           -> last delta pos applied:be64 generation:be32 [mirrored:u8]
//! b peer 0 gen:be32 pos:be64 part:be32 -> a delta as received (IndexDelta), or part of a snapshot
//! ```
//!
//! The rows are kept as the deltas that brought them, one sled value per delta, and the
//! lookup is rebuilt from them at start. One value per row cost sled some 180 bytes of
//! memory a row (it keeps what it wrote in memory): 2.9 million rows of one peer's copy
//! took over 500 MiB. A delta written ahead of the cursor (a crash between the two) is
//! not replayed, and is written over when it comes again. A reset starts a new
//! generation; the old one is dropped once the cursor names the new. When the deltas
//! held come to more than twice the rows they leave (removals, amendments), the rows are
//! written again as a snapshot in a new generation ([`SNAPSHOT_WHEN`]).
//!
//! Our own index is held the same way, but mirrored: its deltas are the holder's own
//! (`matching::holder`), so only the cursor is kept here, and [`Replicas::restore`]
//! replays the holder's deltas up to it after a start.
//!
//! Rows are opaque here: a row can only be opened with the OPRF output of
//! the key that made its tag, which only an evaluation by the holder yields.
//!
//! [`Replicas`] is the tree and the lookups; [`ReplicaSync`] pulls a peer's
//! deltas through a [`PeerClient`] and hands the new rows to the watch list.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use prost::Message;
use tessera_proto::v1::IndexDelta;

use super::watch::Watcher;
use crate::exchange::client::{PeerClient, PeerError};
use crate::identity::AgencyId;
use crate::privacy::{self, ELEMENT_LEN, IndexEntry, IndexLookup, IndexLookupBuilder};
use crate::store::keys::{Key, Tree, read_u32, read_u64};
use crate::store::{Store, StoreError};

const TREE: &str = "peer_index";
const EPOCH: &str = "replica epoch";
const CURSOR: &str = "replica cursor";
const DELTA: &str = "replica delta";
/// The rows of one peer's copy before they were kept as deltas (read once, at start).
const OLD_ROW: &str = "replica row";
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
    #[error("our own index's copy is not restored since the start: restore it first")]
    NotRestored,
}

/// `e peer`: the epoch and public key the replica is under.
fn epoch_key(peer: &AgencyId) -> Key {
    Key::tag(b'e').text(peer.as_str())
}

/// `c peer`: the last delta position applied.
fn cursor_key(peer: &AgencyId) -> Key {
    Key::tag(b'c').text(peer.as_str())
}

/// `w peer`: in the layout before deltas were kept, a crash mark (dropped at start).
fn writing_key(peer: &AgencyId) -> Key {
    Key::tag(b'w').text(peer.as_str())
}

/// `x peer 0`: the rows, one value each, in the layout before deltas were kept.
fn old_rows_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'x').field(peer.as_str())
}

/// `b peer 0`: every generation's deltas.
fn deltas_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'b').field(peer.as_str())
}

/// `b peer 0 gen`: one generation's deltas, in order of position.
fn generation_prefix(peer: &AgencyId, generation: u32) -> Key {
    deltas_prefix(peer).u32(generation)
}

/// `b peer 0 gen pos part`: a delta (part 0), or part of a snapshot at `pos`.
fn delta_key(peer: &AgencyId, generation: u32, pos: u64, part: u32) -> Key {
    generation_prefix(peer, generation).u64(pos).u32(part)
}

/// Rows of a snapshot's part: a few hundred KB, under sled's 512 KiB segment.
const SNAPSHOT_PART_ROWS: usize = 4096;

/// A copy is written again as a snapshot when the rows its deltas hold (added and
/// removed) pass twice the rows it has plus this many.
const SNAPSHOT_WHEN: usize = 100_000;

/// `c peer`: where the copy is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cursor {
    /// The last delta position applied.
    pos: u64,
    /// The generation of deltas the rows are in.
    generation: u32,
    /// The deltas are the holder's own (our own index), not kept here.
    mirrored: bool,
}

impl Cursor {
    fn to_bytes(self) -> Vec<u8> {
        let mut v = self.pos.to_be_bytes().to_vec();
        v.extend_from_slice(&self.generation.to_be_bytes());
        v.push(u8::from(self.mirrored));
        v
    }

    /// The layout before generations: the position alone.
    fn parse(v: &[u8]) -> Option<Self> {
        let pos = read_u64(v)?;
        match v.len() {
            8 => Some(Self {
                pos,
                ..Self::default()
            }),
            13 => Some(Self {
                pos,
                generation: read_u32(v.get(8..)?)?,
                mirrored: match v[12] {
                    0 => false,
                    1 => true,
                    _ => return None,
                },
            }),
            _ => None,
        }
    }
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
    /// The generation of stored deltas the rows are in.
    generation: u32,
    /// Rows the stored deltas of this generation hold, added or removed.
    stored_rows: usize,
    /// A mirrored copy whose rows are not in memory yet (see [`Replicas::restore`]).
    unrestored: bool,
}

/// Every peer's replica.
pub struct Replicas {
    tree: Tree,
    map: RwLock<BTreeMap<AgencyId, Arc<PeerReplica>>>,
    write: std::sync::Mutex<()>,
    /// [`SNAPSHOT_WHEN`], or less in tests.
    snapshot_when: usize,
}

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas").finish_non_exhaustive()
    }
}

/// The rows `deltas` leave, and how many rows they hold (added or removed). The deltas
/// are read twice, in order: the first pass finds the last reset and the rows removed
/// since, the second puts the rows that stay straight into the compact table, so no row
/// is held twice on the way (a start rebuilds millions of rows). Row ids are unique (they
/// hold a random nonce), so a removal only ever removes a row added before it.
fn replay<I>(deltas: impl Fn() -> I) -> Result<(IndexLookup, usize), ReplicaError>
where
    I: Iterator<Item = Result<IndexDelta, ReplicaError>>,
{
    let bad = |pos: u64, problem: String| ReplicaError::Malformed { pos, problem };
    let mut start = 0;
    let mut removes: HashSet<[u8; ROW_ID]> = HashSet::new();
    let mut stored_rows = 0;
    for (i, delta) in deltas().enumerate() {
        let delta = delta?;
        if delta.reset {
            start = i;
            removes.clear();
            stored_rows = 0;
        }
        stored_rows += delta.adds.len() + delta.removes.len();
        for r in &delta.removes {
            let id: [u8; ROW_ID] = r
                .as_slice()
                .try_into()
                .map_err(|_| bad(delta.pos, "a removed row id is not 40 bytes".into()))?;
            removes.insert(id);
        }
    }
    let mut builder = IndexLookupBuilder::default();
    for delta in deltas().skip(start) {
        let delta = delta?;
        for a in &delta.adds {
            let entry = IndexEntry::from_bytes(a).map_err(|e| bad(delta.pos, e.to_string()))?;
            if !removes.contains(&row_id(&entry.tag, &entry.nonce)) {
                builder.push(&entry.tag, &entry.nonce, &entry.sealed)?;
            }
        }
    }
    Ok((builder.finish(), stored_rows))
}

impl Replicas {
    /// Opens the tree and loads every stored replica into memory. `mirrored` is our own
    /// agency, whose copy is restored from the holder's deltas ([`Replicas::restore`]).
    pub fn open(
        store: &Store,
        peers: &[AgencyId],
        mirrored: Option<&AgencyId>,
    ) -> Result<Self, ReplicaError> {
        let tree = Tree::open(store, TREE)?;
        let mut map = BTreeMap::new();
        for peer in peers {
            let Some(e) = tree.get(epoch_key(peer), EPOCH)? else {
                continue;
            };
            let (epoch, public_key) = parse_epoch(&e).ok_or_else(|| tree.corrupt(EPOCH))?;
            let mut cursor = match tree.get(cursor_key(peer), CURSOR)? {
                Some(v) => Cursor::parse(&v).ok_or_else(|| tree.corrupt(CURSOR))?,
                None => Cursor::default(),
            };
            let is_own = mirrored == Some(peer);
            let old = Self::read_old_rows(&tree, peer)?;
            let mut replica = PeerReplica {
                epoch,
                public_key,
                lookup: RowSet::default(),
                cursor: cursor.pos,
                generation: cursor.generation,
                stored_rows: 0,
                unrestored: is_own,
            };
            if is_own {
                // The holder's deltas are our own copy's rows: none kept here.
                if old.is_some() || !cursor.mirrored {
                    Self::drop_rows(&tree, peer)?;
                    cursor.mirrored = true;
                    tree.insert(cursor_key(peer), cursor.to_bytes(), CURSOR)?;
                }
            } else if cursor.mirrored {
                // Held as our own copy before (our agency changed?): nothing of it is
                // kept here, so it is pulled again from the start.
                Self::drop_rows(&tree, peer)?;
                tree.remove(epoch_key(peer), EPOCH)?;
                tree.remove(cursor_key(peer), CURSOR)?;
                continue;
            } else if let Some(rows) = old {
                // Kept one value a row before: written again as deltas, once.
                replica.lookup = RowSet {
                    parts: vec![Arc::new(rows)],
                };
                Self::snapshot(&tree, peer, &mut replica)?;
                Self::drop_old_rows(&tree, peer)?;
            } else {
                // Another generation's deltas: left by a reset or a snapshot a crash cut.
                Self::drop_other_generations(&tree, peer, cursor.generation)?;
                let prefix = generation_prefix(peer, cursor.generation);
                let upto = cursor.pos;
                let stored = || {
                    tree.scan(&prefix, DELTA)
                        .map(|kv| -> Result<IndexDelta, ReplicaError> {
                            let (_, v) = kv?;
                            Ok(tree.decode(&v, DELTA)?)
                        })
                        // Written ahead of the cursor by a crash: it comes again.
                        .filter(move |d| d.as_ref().map_or(true, |d| d.pos <= upto))
                };
                let (rows, stored_rows) = replay(stored).map_err(|e| match e {
                    ReplicaError::Malformed { .. } => tree.corrupt(DELTA).into(),
                    e => e,
                })?;
                replica.stored_rows = stored_rows;
                replica.lookup = RowSet {
                    parts: vec![Arc::new(rows)],
                };
            }
            map.insert(peer.clone(), Arc::new(replica));
        }
        Ok(Self {
            tree,
            map: RwLock::new(map),
            write: std::sync::Mutex::new(()),
            snapshot_when: SNAPSHOT_WHEN,
        })
    }

    /// The rows of `peer` kept one value a row, in the layout before deltas were kept.
    fn read_old_rows(tree: &Tree, peer: &AgencyId) -> Result<Option<IndexLookup>, ReplicaError> {
        let prefix = old_rows_prefix(peer);
        let mut builder = IndexLookupBuilder::default();
        let mut any = false;
        for kv in tree.scan(&prefix, OLD_ROW) {
            let (k, v) = kv?;
            let id = k
                .get(prefix.len()..)
                .filter(|id| id.len() == ROW_ID)
                .ok_or_else(|| tree.corrupt(OLD_ROW))?;
            let (tag, nonce) = id.split_at(privacy::TAG_LEN);
            builder.push(
                tag.try_into().map_err(|_| tree.corrupt(OLD_ROW))?,
                nonce.try_into().map_err(|_| tree.corrupt(OLD_ROW))?,
                &v,
            )?;
            any = true;
        }
        Ok(any.then(|| builder.finish()))
    }

    fn drop_old_rows(tree: &Tree, peer: &AgencyId) -> Result<(), ReplicaError> {
        for kv in tree.scan(old_rows_prefix(peer), OLD_ROW) {
            tree.remove(kv?.0, OLD_ROW)?;
        }
        tree.remove(writing_key(peer), CURSOR)?;
        Ok(())
    }

    /// Drops every row kept for `peer`, in either layout.
    fn drop_rows(tree: &Tree, peer: &AgencyId) -> Result<(), ReplicaError> {
        Self::drop_old_rows(tree, peer)?;
        for kv in tree.scan(deltas_prefix(peer), DELTA) {
            tree.remove(kv?.0, DELTA)?;
        }
        Ok(())
    }

    /// Drops the deltas of every generation but `keep` (left by a reset or a snapshot
    /// that a crash interrupted, before or after its cursor was written).
    fn drop_other_generations(tree: &Tree, peer: &AgencyId, keep: u32) -> Result<(), ReplicaError> {
        let prefix = deltas_prefix(peer);
        for kv in tree.scan(&prefix, DELTA) {
            let (k, _) = kv?;
            let generation = k.get(prefix.len()..).and_then(read_u32);
            if generation != Some(keep) {
                tree.remove(k, DELTA)?;
            }
        }
        Ok(())
    }

    /// Writes `replica`'s rows as a snapshot at its cursor in a new generation, then the
    /// cursor that names it, then drops the old generation.
    fn snapshot(
        tree: &Tree,
        peer: &AgencyId,
        replica: &mut PeerReplica,
    ) -> Result<(), ReplicaError> {
        let generation = replica.generation.wrapping_add(1);
        let rows: Vec<_> = replica
            .lookup
            .parts
            .iter()
            .flat_map(|p| p.iter())
            .map(|e| e.to_entry().to_bytes())
            .collect();
        for (part, chunk) in (0u32..).zip(rows.chunks(SNAPSHOT_PART_ROWS)) {
            let delta = IndexDelta {
                pos: replica.cursor,
                epoch: replica.epoch,
                public_key: replica.public_key.to_vec(),
                reset: part == 0,
                adds: chunk.to_vec(),
                removes: Vec::new(),
            };
            tree.insert(
                delta_key(peer, generation, replica.cursor, part),
                delta.encode_to_vec(),
                DELTA,
            )?;
        }
        let cursor = Cursor {
            pos: replica.cursor,
            generation,
            mirrored: false,
        };
        tree.insert(cursor_key(peer), cursor.to_bytes(), CURSOR)?;
        replica.generation = generation;
        replica.stored_rows = rows.len();
        Self::drop_other_generations(tree, peer, generation)
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

    /// Whether `peer`'s copy is mirrored and its rows are not in memory yet.
    pub fn needs_restore(&self, peer: &AgencyId) -> bool {
        self.get(peer).is_some_and(|r| r.unrestored)
    }

    /// Rebuilds a mirrored copy's rows from the holder's deltas (read twice, in order)
    /// up to its cursor: they were applied before the start; nothing is written, no row
    /// is new.
    pub fn restore<I>(&self, peer: &AgencyId, deltas: impl Fn() -> I) -> Result<(), ReplicaError>
    where
        I: Iterator<Item = Result<IndexDelta, StoreError>>,
    {
        let _guard = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(current) = self.get(peer).filter(|r| r.unrestored) else {
            return Ok(());
        };
        let upto = current.cursor;
        let (rows, _) = replay(|| {
            deltas()
                .map(|d| d.map_err(ReplicaError::from))
                .filter(move |d| d.as_ref().map_or(true, |d| d.pos <= upto))
        })?;
        self.put(
            peer,
            PeerReplica {
                epoch: current.epoch,
                public_key: current.public_key,
                lookup: RowSet {
                    parts: vec![Arc::new(rows)],
                },
                cursor: current.cursor,
                generation: current.generation,
                stored_rows: current.stored_rows,
                unrestored: false,
            },
        );
        Ok(())
    }

    fn put(&self, peer: &AgencyId, replica: PeerReplica) {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(peer.clone(), Arc::new(replica));
    }

    /// Applies a peer's deltas in order (stale ones are skipped), keeping them, and
    /// returns the rows added under the resulting epoch, for continuous screening.
    pub fn apply(
        &self,
        peer: &AgencyId,
        deltas: &[IndexDelta],
    ) -> Result<Vec<IndexEntry>, ReplicaError> {
        self.apply_as(peer, deltas, false)
    }

    /// [`Replicas::apply`] for our own index, whose deltas the holder keeps: only the
    /// cursor is written. A copy not restored since the start ([`Replicas::restore`]) is
    /// refused: its rows would be missing.
    pub fn apply_mirrored(
        &self,
        peer: &AgencyId,
        deltas: &[IndexDelta],
    ) -> Result<Vec<IndexEntry>, ReplicaError> {
        self.apply_as(peer, deltas, true)
    }

    fn apply_as(
        &self,
        peer: &AgencyId,
        deltas: &[IndexDelta],
        mirrored: bool,
    ) -> Result<Vec<IndexEntry>, ReplicaError> {
        let _guard = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.get(peer);
        if current.as_ref().is_some_and(|r| r.unrestored) {
            return Err(ReplicaError::NotRestored);
        }
        let mut cursor = current.as_ref().map_or(0, |r| r.cursor);
        let old_generation = current.as_ref().map_or(0, |r| r.generation);
        let mut generation = old_generation;
        let mut stored_rows = current.as_ref().map_or(0, |r| r.stored_rows);
        let mut epoch = current.as_ref().map(|r| r.epoch);
        let mut public_key = current.as_ref().map(|r| r.public_key);
        let mut reset = false;
        let mut adds: Vec<IndexEntry> = Vec::new();
        let mut removes: HashSet<[u8; ROW_ID]> = HashSet::new();
        let mut writes: Vec<(Key, Vec<u8>)> = Vec::new();
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
                // A new generation: the old one's deltas go once its cursor is written.
                generation = old_generation.wrapping_add(1);
                stored_rows = 0;
                writes.clear();
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
                adds.retain(|e| !(e.tag == id[..16] && e.nonce == id[16..]));
                removes.insert(id);
            }
            for a in &delta.adds {
                let entry = IndexEntry::from_bytes(a).map_err(|e| bad(&e.to_string()))?;
                removes.remove(&row_id(&entry.tag, &entry.nonce));
                adds.push(entry);
            }
            stored_rows += delta.adds.len() + delta.removes.len();
            if !mirrored {
                let mut kept = delta.clone();
                // The first delta of a generation starts it, whatever the peer said.
                kept.reset = reset && writes.is_empty();
                writes.push((
                    delta_key(peer, generation, delta.pos, 0),
                    kept.encode_to_vec(),
                ));
            }
            cursor = delta.pos;
        }
        let (Some(epoch), Some(public_key)) = (epoch, public_key) else {
            return Ok(Vec::new());
        };
        // The deltas first, one value each, then the epoch and the cursor together: a
        // delta written ahead of its cursor is not replayed, and a copy whose cursor is
        // behind the peer's position is never taken for a clear.
        for (key, value) in writes {
            self.tree.insert(key, value, DELTA)?;
        }
        let mut e = epoch.to_be_bytes().to_vec();
        e.extend_from_slice(&public_key);
        let mut commit = sled::Batch::default();
        commit.insert(epoch_key(peer).as_ref(), e);
        let stored = Cursor {
            pos: cursor,
            generation,
            mirrored,
        };
        commit.insert(cursor_key(peer).as_ref(), stored.to_bytes());
        self.tree.apply(commit, CURSOR)?;
        if generation != old_generation && !mirrored {
            Self::drop_other_generations(&self.tree, peer, generation)?;
        }

        let base = match (reset, &current) {
            (false, Some(r)) => r.lookup.clone(),
            _ => RowSet::default(),
        };
        let lookup = base.apply(adds.clone(), &removes)?;
        let mut replica = PeerReplica {
            epoch,
            public_key,
            lookup,
            cursor,
            generation,
            stored_rows,
            unrestored: false,
        };
        if !mirrored && stored_rows > 2 * replica.lookup.len() + self.snapshot_when {
            Self::snapshot(&self.tree, peer, &mut replica)?;
        }
        self.put(peer, replica);
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
