//! The holder side: for each peer it serves, the labelled index of the
//! notices that peer may see, kept as a log of deltas the peer replicates.
//!
//! Tree `holder_index`:
//!
//! ```text
//! d peer 0 pos:be64        -> IndexDelta (what the peer pulls)
//! q peer 0                 -> last pos:be64
//! r peer 0 serial          -> where that notice's live rows are: pos:be64 first:be32 count:be32
//!                             (rows first..first+count of the delta at pos)
//! i                        -> own feed seq indexed so far:be64
//! ```
//!
//! [`HolderIndex`] is the tree; [`Indexer`] is the worker that follows this
//! node's own feed: every new version of a notice removes the rows of the
//! previous one and adds rows for the new one if it is in force and the
//! peer is among its recipients. Deltas and the cursor are written in one
//! batch, so a crash never loses or doubles a change. Row building (one
//! OPRF evaluation per key) runs on all cores.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prost::Message;
use tessera_proto::v1::{IndexDelta, Notice, StoredNotice};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::keys::{KeyError, KeyRing};
use super::labels;
use crate::identity::AgencyId;
use crate::notice::store::{NoticeStore, NoticeStoreError};
use crate::policy::DisclosureLevel;
use crate::privacy::{self, IndexEntry, OprfKey};
use crate::store::keys::{Key, Tree};
use crate::store::{Store, StoreError};
use crate::wake::Wakers;

const TREE: &str = "holder_index";
const DELTA: &str = "index delta";
const LAST_POS: &str = "last delta position";
const ROWS: &str = "live rows";
const INDEXED: &str = "indexed feed position";
/// Own feed entries indexed per batch. A notice gives some 60 rows of about 150 bytes
/// with its fuzzy names: 32 keep a delta (one sled value) near 300 KB, under sled's
/// 512 KiB segment, where large values take a slower and less trodden path.
const CHUNK: usize = 32;
const ROW_ID: usize = privacy::TAG_LEN + privacy::NONCE_LEN;

/// Holder-side index errors.
#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building index rows: {0}")]
    Privacy(#[from] privacy::PrivacyError),
    #[error("{0} is not a configured peer")]
    UnknownPeer(AgencyId),
    #[error(transparent)]
    Notices(#[from] NoticeStoreError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("the index task stopped before it finished")]
    Task,
}

impl From<HolderError> for tonic::Status {
    fn from(e: HolderError) -> Self {
        match e {
            HolderError::UnknownPeer(_) => Self::invalid_argument(e.to_string()),
            HolderError::Store(e) => e.into(),
            HolderError::Notices(e) => e.into(),
            HolderError::Privacy(_) | HolderError::Keys(_) | HolderError::Task => {
                Self::internal(e.to_string())
            }
        }
    }
}

fn delta_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'd').field(peer.as_str())
}

fn last_pos_key(peer: &AgencyId) -> Key {
    Key::tag(b'q').field(peer.as_str())
}

fn rows_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'r').field(peer.as_str())
}

const INDEXED_KEY: &[u8] = b"i";

/// Typed access to the holder's index log.
pub struct HolderIndex {
    tree: Tree,
    write: Mutex<()>,
    /// The positions as last written, read by every evaluation for a peer: from memory,
    /// not from the store, where a long write of an import could hold the read up.
    known: parking_lot::RwLock<Positions>,
}

/// Each peer's newest delta position (by its `last_pos_key`) and our feed position
/// indexed so far.
#[derive(Default)]
struct Positions {
    last_pos: std::collections::HashMap<Vec<u8>, u64>,
    indexed: u64,
}

impl std::fmt::Debug for HolderIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderIndex").finish_non_exhaustive()
    }
}

impl HolderIndex {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let tree = Tree::open(store, TREE)?;
        let mut known = Positions {
            indexed: tree.u64_at(INDEXED_KEY, INDEXED)?,
            ..Positions::default()
        };
        for kv in tree.scan(Key::tag(b'q'), LAST_POS) {
            let (k, v) = kv?;
            known
                .last_pos
                .insert(k.to_vec(), tree.u64_of(&v, LAST_POS)?);
        }
        Ok(Self {
            tree,
            write: Mutex::new(()),
            known: parking_lot::RwLock::new(known),
        })
    }

    /// Applies `batch`, which sets the positions in `last_pos` (and our feed position
    /// indexed, if `indexed`), and remembers them.
    fn commit(
        &self,
        batch: sled::Batch,
        last_pos: Vec<(&AgencyId, u64)>,
        indexed: Option<u64>,
    ) -> Result<(), StoreError> {
        self.tree.apply(batch, DELTA)?;
        let mut known = self.known.write();
        for (peer, pos) in last_pos {
            known.last_pos.insert(last_pos_key(peer).into(), pos);
        }
        if let Some(n) = indexed {
            known.indexed = n;
        }
        Ok(())
    }

    /// One writer at a time: deciding a delta reads what the last one wrote.
    fn writer(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Own feed position indexed so far.
    pub fn indexed_through(&self) -> Result<u64, StoreError> {
        Ok(self.known.read().indexed)
    }

    /// Notices of our own feed not indexed yet: what a peer screening against us now
    /// cannot have seen (an import being indexed).
    pub fn unindexed(&self, feed: &NoticeStore) -> Result<u64, StoreError> {
        let last = match feed.last_seq() {
            Ok(n) => n,
            Err(NoticeStoreError::Store(e)) => return Err(e),
            Err(_) => 0,
        };
        Ok(last.saturating_sub(self.indexed_through()?))
    }

    /// Deltas for `peer` after `after`, in order.
    pub fn deltas_after(
        &self,
        peer: &AgencyId,
        after: u64,
    ) -> impl Iterator<Item = Result<IndexDelta, StoreError>> + '_ {
        let prefix = delta_prefix(peer);
        let start = prefix.clone().u64(after.saturating_add(1));
        self.tree
            .sled()
            .range(start..)
            .take_while(move |kv| {
                kv.as_ref()
                    .map_or(true, |(k, _)| k.starts_with(prefix.as_ref()))
            })
            .map(|kv| {
                let (_, v) = kv.map_err(self.tree.failed(DELTA))?;
                self.tree.decode(&v, DELTA)
            })
    }

    /// The newest delta position for `peer` (0: none yet).
    pub fn last_pos(&self, peer: &AgencyId) -> Result<u64, StoreError> {
        let key: Vec<u8> = last_pos_key(peer).into();
        Ok(self.known.read().last_pos.get(&key).copied().unwrap_or(0))
    }

    /// The serial of our notice whose live row for `peer` has `tag`: the rows under the
    /// tag in the deltas, then the notice whose live rows are one of them.
    pub fn serial_for_tag(
        &self,
        peer: &AgencyId,
        tag: &[u8],
    ) -> Result<Option<String>, StoreError> {
        let mut found: Vec<(u64, u32)> = Vec::new();
        let mut ids: Vec<[u8; ROW_ID]> = Vec::new();
        for delta in self.deltas_after(peer, 0) {
            let delta = delta?;
            for (i, add) in delta.adds.iter().enumerate() {
                if add.get(..privacy::TAG_LEN) == Some(tag) {
                    found.push((delta.pos, i as u32));
                    if let Some(id) = add.get(..ROW_ID).and_then(|id| id.try_into().ok()) {
                        ids.push(id);
                    }
                }
            }
        }
        if found.is_empty() {
            return Ok(None);
        }
        let prefix = rows_prefix(peer);
        for kv in self.tree.scan(&prefix, ROWS) {
            let (k, v) = kv?;
            let live = match LiveRows::parse(&v).ok_or_else(|| self.tree.corrupt(ROWS))? {
                LiveRows::At { pos, first, count } => found
                    .iter()
                    .any(|&(p, i)| p == pos && (first..first.saturating_add(count)).contains(&i)),
                LiveRows::Ids(held) => held
                    .chunks_exact(ROW_ID)
                    .any(|id| ids.iter().any(|t| t == id)),
            };
            if live {
                let serial =
                    std::str::from_utf8(&k[prefix.len()..]).map_err(|_| self.tree.corrupt(ROWS))?;
                return Ok(Some(serial.to_owned()));
            }
        }
        Ok(None)
    }

    /// Rows currently live for `peer`.
    pub fn live_rows(&self, peer: &AgencyId) -> Result<usize, StoreError> {
        let mut n = 0;
        for kv in self.tree.scan(rows_prefix(peer), ROWS) {
            n += match LiveRows::parse(&kv?.1).ok_or_else(|| self.tree.corrupt(ROWS))? {
                LiveRows::At { count, .. } => count as usize,
                LiveRows::Ids(ids) => ids.len() / ROW_ID,
            };
        }
        Ok(n)
    }

    /// The ids (`tag‖nonce`) of the live rows a record names, read from their delta.
    fn live_ids(
        &self,
        peer: &AgencyId,
        record: &[u8],
        read: &mut Option<IndexDelta>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        match LiveRows::parse(record).ok_or_else(|| self.tree.corrupt(ROWS))? {
            LiveRows::Ids(ids) => Ok(ids.chunks_exact(ROW_ID).map(<[u8]>::to_vec).collect()),
            LiveRows::At { pos, first, count } => {
                if read.as_ref().is_none_or(|d| d.pos != pos) {
                    *read = Some(
                        self.tree
                            .message(delta_prefix(peer).u64(pos), DELTA)?
                            .ok_or_else(|| self.tree.corrupt(ROWS))?,
                    );
                }
                let delta = read.as_ref().ok_or_else(|| self.tree.corrupt(ROWS))?;
                let end = first as usize + count as usize;
                delta
                    .adds
                    .get(first as usize..end)
                    .ok_or_else(|| self.tree.corrupt(ROWS))?
                    .iter()
                    .map(|a| {
                        a.get(..ROW_ID)
                            .map(<[u8]>::to_vec)
                            .ok_or_else(|| self.tree.corrupt(ROWS))
                    })
                    .collect()
            }
        }
    }
}

/// A notice's live-row record: where its rows are in the delta that added them (16 bytes,
/// whatever the rows), or, as written before, every row's id (40 bytes each).
///
/// The ids cost 40 bytes a row, some 1.2 KB a notice: for 100,000 notices indexed for a
/// peer and for ourselves, about 230 MB more that sled kept in memory.
enum LiveRows<'a> {
    At { pos: u64, first: u32, count: u32 },
    Ids(&'a [u8]),
}

impl<'a> LiveRows<'a> {
    const AT_LEN: usize = 16;

    fn at(pos: u64, first: usize, count: usize) -> Vec<u8> {
        let mut v = pos.to_be_bytes().to_vec();
        // A delta holds far fewer than 2^32 rows (a message is at most 4 GiB).
        v.extend_from_slice(&(first as u32).to_be_bytes());
        v.extend_from_slice(&(count as u32).to_be_bytes());
        v
    }

    /// 16 bytes are a position (a multiple of 40 never is).
    fn parse(v: &'a [u8]) -> Option<Self> {
        if v.len() == Self::AT_LEN {
            Some(Self::At {
                pos: crate::store::keys::read_u64(v)?,
                first: crate::store::keys::read_u32(v.get(8..)?)?,
                count: crate::store::keys::read_u32(v.get(12..)?)?,
            })
        } else if v.len().is_multiple_of(ROW_ID) {
            Some(Self::Ids(v))
        } else {
            None
        }
    }
}

/// What goes into each served peer's index: its disclosure level, and the
/// contact pointer of this agency's labels.
#[derive(Debug, Clone)]
pub struct IndexPolicy {
    pub levels: BTreeMap<AgencyId, DisclosureLevel>,
    pub contact: String,
}

impl IndexPolicy {
    fn level(&self, peer: &AgencyId) -> Result<DisclosureLevel, HolderError> {
        self.levels
            .get(peer)
            .copied()
            .ok_or_else(|| HolderError::UnknownPeer(peer.clone()))
    }
}

/// One notice version to index for one peer: the rows it adds.
struct Change {
    serial: String,
    adds: Vec<IndexEntry>,
}

/// The indexer: keeps every served peer's index in step with our own feed.
#[derive(Debug)]
pub struct Indexer {
    pub holder: Arc<HolderIndex>,
    pub notices: Arc<NoticeStore>,
    pub keys: Arc<KeyRing>,
    pub policy: IndexPolicy,
    pub agency: AgencyId,
    pub store: Store,
    pub wakers: Wakers,
}

impl Indexer {
    fn key(&self, peer: &AgencyId) -> Result<Arc<OprfKey>, HolderError> {
        self.keys
            .get(peer)
            .ok_or_else(|| HolderError::UnknownPeer(peer.clone()))
    }

    /// Indexes own feed entries after the cursor, up to one chunk. Returns
    /// how many feed entries it consumed.
    pub fn index_pending(&self) -> Result<usize, HolderError> {
        let holder = &self.holder;
        let _one = holder.writer();
        let after = holder.indexed_through()?;
        let mut chunk: Vec<(u64, StoredNotice, Notice)> = Vec::new();
        for entry in self.notices.feed_after(after).take(CHUNK) {
            let (seq, stored) = entry?;
            let Some(env) = &stored.envelope else {
                continue;
            };
            let notice = decode_own(&env.notice)?;
            chunk.push((seq, stored, notice));
        }
        let Some(last) = chunk.last().map(|(seq, _, _)| *seq) else {
            return Ok(0);
        };
        let mut batch = sled::Batch::default();
        let mut positions = Vec::new();
        for (peer, &level) in &self.policy.levels {
            let key = self.key(peer)?;
            // The newest version in this chunk decides a serial's rows; a
            // serial left with none has its old rows removed.
            let mut newest: BTreeMap<&str, (&StoredNotice, &Notice)> = BTreeMap::new();
            for (_, stored, notice) in &chunk {
                newest.insert(notice.serial.as_str(), (stored, notice));
            }
            let changes = self.changes(peer, level, &key, newest.into_values(), true)?;
            let pos = holder.last_pos(peer)? + 1;
            if let Some(delta) = self.delta_for(peer, &key, pos, changes, &mut batch)? {
                batch.insert(delta_prefix(peer).u64(pos), delta.encode_to_vec());
                batch.insert(last_pos_key(peer), pos.to_be_bytes().as_slice());
                positions.push((peer, pos));
            }
        }
        batch.insert(INDEXED_KEY, last.to_be_bytes().as_slice());
        holder.commit(batch, positions, Some(last))?;
        Ok(chunk.len())
    }

    /// The rows each of `notices` gives `peer` at `level`, built under
    /// `key` (one OPRF evaluation per row, on all cores), as one change per
    /// notice; with `keep_empty`, a notice with no rows is a change too.
    fn changes<'a>(
        &self,
        peer: &AgencyId,
        level: DisclosureLevel,
        key: &OprfKey,
        notices: impl Iterator<Item = (&'a StoredNotice, &'a Notice)>,
        keep_empty: bool,
    ) -> Result<Vec<Change>, HolderError> {
        let mut rows: Vec<privacy::RowSource> = Vec::new();
        let mut owners: Vec<usize> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        let own = std::slice::from_ref(peer)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        for (stored, notice) in notices {
            // Our own index (for screening our own lists) holds every notice in force.
            let recipients = if *peer == self.agency {
                &own
            } else {
                &stored.recipients
            };
            let new_rows = labels::sources_for_peer(
                notice,
                recipients,
                peer.as_str(),
                level,
                &self.policy.contact,
            )?;
            if new_rows.is_empty() && !keep_empty {
                continue;
            }
            owners.extend(std::iter::repeat_n(changes.len(), new_rows.len()));
            rows.extend(new_rows);
            changes.push(Change {
                serial: notice.serial.clone(),
                adds: Vec::new(),
            });
        }
        let built = match index_pool() {
            Some(pool) => pool.install(|| privacy::build_sources(key, &rows))?,
            None => privacy::build_sources(key, &rows)?,
        };
        for (entry, owner) in built.into_iter().zip(owners) {
            changes[owner].adds.push(entry);
        }
        Ok(changes)
    }

    /// Turns per-serial changes into one delta at `pos`, updating the live-row records.
    fn delta_for(
        &self,
        peer: &AgencyId,
        key: &OprfKey,
        pos: u64,
        changes: Vec<Change>,
        batch: &mut sled::Batch,
    ) -> Result<Option<IndexDelta>, HolderError> {
        let mut delta = IndexDelta {
            pos,
            epoch: key.epoch(),
            public_key: key.public_key_bytes().to_vec(),
            ..IndexDelta::default()
        };
        let mut read = None;
        for change in changes {
            let rkey = rows_prefix(peer).text(&change.serial);
            if let Some(old) = self.holder.tree.get(&rkey, ROWS)? {
                delta
                    .removes
                    .extend(self.holder.live_ids(peer, &old, &mut read)?);
            }
            if change.adds.is_empty() {
                batch.remove(rkey);
            } else {
                batch.insert(rkey, LiveRows::at(pos, delta.adds.len(), change.adds.len()));
                delta
                    .adds
                    .extend(change.adds.iter().map(IndexEntry::to_bytes));
            }
        }
        Ok((!delta.adds.is_empty() || !delta.removes.is_empty()).then_some(delta))
    }

    /// After a key rotation: a reset delta carrying every live row under the new key.
    pub fn rebuild_for(&self, peer: &AgencyId) -> Result<(), HolderError> {
        let holder = &self.holder;
        let _one = holder.writer();
        let key = self.key(peer)?;
        let level = self.policy.level(peer)?;
        let own = self.notices.list_latest(Some(self.agency.as_str()))?;
        let mut batch = sled::Batch::default();
        for kv in holder.tree.scan(rows_prefix(peer), ROWS) {
            batch.remove(kv?.0);
        }
        let mut decoded = Vec::with_capacity(own.len());
        for stored in &own {
            let Some(env) = &stored.envelope else {
                continue;
            };
            decoded.push((stored, decode_own(&env.notice)?));
        }
        let changes = self.changes(
            peer,
            level,
            &key,
            decoded.iter().map(|(s, n)| (*s, n)),
            false,
        )?;
        let pos = holder.last_pos(peer)? + 1;
        let mut delta = IndexDelta {
            pos,
            epoch: key.epoch(),
            public_key: key.public_key_bytes().to_vec(),
            reset: true,
            ..IndexDelta::default()
        };
        for change in changes {
            if change.adds.is_empty() {
                continue;
            }
            batch.insert(
                rows_prefix(peer).text(&change.serial),
                LiveRows::at(pos, delta.adds.len(), change.adds.len()),
            );
            delta
                .adds
                .extend(change.adds.iter().map(IndexEntry::to_bytes));
        }
        batch.insert(delta_prefix(peer).u64(pos), delta.encode_to_vec());
        batch.insert(last_pos_key(peer), pos.to_be_bytes().as_slice());
        Ok(holder.commit(batch, vec![(peer, pos)], None)?)
    }

    /// Gives every peer that has no index yet an empty one (epoch and public
    /// key), so that "nothing shared with you" is an answer, not an absence.
    pub fn ensure_initial(&self) -> Result<(), HolderError> {
        let holder = &self.holder;
        let _one = holder.writer();
        let mut batch = sled::Batch::default();
        let mut positions = Vec::new();
        for peer in self.policy.levels.keys() {
            if holder.last_pos(peer)? > 0 {
                continue;
            }
            let key = self.key(peer)?;
            let delta = IndexDelta {
                pos: 1,
                epoch: key.epoch(),
                public_key: key.public_key_bytes().to_vec(),
                reset: true,
                ..IndexDelta::default()
            };
            batch.insert(delta_prefix(peer).u64(1), delta.encode_to_vec());
            batch.insert(last_pos_key(peer), 1u64.to_be_bytes().as_slice());
            positions.push((peer, 1));
        }
        if !positions.is_empty() {
            holder.commit(batch, positions, None)?;
        }
        Ok(())
    }

    /// A new key (the next epoch) for `peer`, and its index rebuilt under
    /// it, durably. Returns the new epoch.
    pub async fn rotate(self: &Arc<Self>, peer: &AgencyId) -> Result<u32, HolderError> {
        let key = self.keys.rotate(peer)?;
        let this = self.clone();
        let p = peer.clone();
        tokio::task::spawn_blocking(move || this.rebuild_for(&p))
            .await
            .map_err(|_| HolderError::Task)??;
        self.store.flush().await?;
        Ok(key.epoch())
    }

    /// The worker: indexes new own notices whenever woken, and every few
    /// seconds as a safety net; each peer's push worker then announces the
    /// new index position.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        if let Err(error) = self.ensure_initial() {
            tracing::error!(%error, "cannot write the initial indexes");
        }
        let wake: Arc<Notify> = self.wakers.indexer();
        loop {
            loop {
                // A long backlog is indexed chunk by chunk: a shutdown waits for one chunk
                // at most, never for the whole backlog (a blocking task cannot be stopped).
                if stop.is_cancelled() {
                    return;
                }
                let this = self.clone();
                match tokio::task::spawn_blocking(move || this.index_pending()).await {
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => {
                        tracing::debug!(notices = n, "indexed");
                        if let Err(error) = self.store.flush().await {
                            tracing::error!(%error, "cannot flush the index");
                        }
                        self.wakers.push_all();
                        self.wakers.own_indexed();
                    }
                    Ok(Err(error)) => {
                        tracing::error!(%error, "indexing failed; will retry");
                        break;
                    }
                    Err(error) => {
                        tracing::error!(%error, "indexing task failed");
                        break;
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

/// The threads that build index rows: one per core, at the lowest scheduling priority, so
/// a long import's indexing takes the CPU that screening leaves (an officer waits on a
/// screening; nobody waits on the hundred-thousandth row of an import). None if the pool
/// cannot be made: rows are then built on the shared pool.
fn index_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("tessera-index-{i}"))
            .start_handler(|_| {
                // Lowering one's own priority needs no privilege; if refused anyway, the
                // thread runs at normal priority.
                if let Err(error) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::debug!(?error, "index thread kept its priority");
                }
            })
            .build()
            .ok()
    })
    .as_ref()
}

/// One of our notices as stored.
fn decode_own(bytes: &[u8]) -> Result<Notice, StoreError> {
    Notice::decode(bytes).map_err(|_| StoreError::Corrupt {
        tree: "notices",
        record: "notice version",
    })
}

#[cfg(test)]
mod tests;
