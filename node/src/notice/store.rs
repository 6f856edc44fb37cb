//! The `notices` sled tree: every version of every notice this node holds,
//! its own feed, the outbox of what peers have not yet acknowledged, and the
//! cursors into peers' feeds.
//!
//! Layout (one tree, so that each change is one atomic batch):
//!
//! ```text
//! v origin 0 serial 0 version:be32  -> StoredNotice
//! l origin 0 serial                 -> version:be32 content_hash:32  (own notices)
//! f seq:be64                        -> serial 0 version:be32        (own feed)
//! o peer 0 seq:be64                 -> prev_seq:be64               (own outbox)
//! p peer                            -> last seq queued for peer:be64
//! c peer                            -> cursor in peer's feed:be64
//! n origin                          -> versions stored:be64
//! mseq                              -> last own seq:be64
//! ```
//!
//! Writes go through one lock; callers flush (`Store::flush`) before they
//! acknowledge. Received notices never enter the feed or the outbox, so a
//! receiver cannot re-share them. A received notice is one `v` entry: its
//! newest version is the last `v` key under its serial (versions sort as
//! big-endian numbers), which keeps applying a peer's feed to one insert per
//! notice.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use prost::Message;
use tessera_proto::v1::{FeedItem, Notice, SignedNotice, StoredNotice};

use super::seal::{content_hash, seal};
use crate::identity::AgencyId;
use crate::peers::now_ms;
use crate::signing::SigningKey;
use crate::store::keys::{Key, Tree, read_u32};
use crate::store::{Store, StoreError};

const TREE: &str = "notices";

/// A verified notice to apply, with its feed position.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub seq: u64,
    pub prev_seq: u64,
    pub envelope: &'a SignedNotice,
    pub notice: &'a Notice,
}

/// What applying a received notice did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Stored,
    Duplicate,
}

/// Errors of the notice store.
#[derive(Debug, thiserror::Error)]
pub enum NoticeStoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{origin}/{serial} version {version} is already stored with different content")]
    Conflict {
        origin: String,
        serial: String,
        version: u32,
    },
}

type Result<T> = std::result::Result<T, NoticeStoreError>;

/// Typed access to the `notices` tree.
pub struct NoticeStore {
    tree: Tree,
    own: AgencyId,
    write: Mutex<()>,
    /// The last seq of our own feed as stored, read by every evaluation for a peer: from
    /// memory, not from the store, where a long write of an import could hold it up.
    last_seq: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for NoticeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticeStore").finish_non_exhaustive()
    }
}

impl From<NoticeStoreError> for tonic::Status {
    fn from(e: NoticeStoreError) -> Self {
        match e {
            NoticeStoreError::Store(e) => e.into(),
            NoticeStoreError::Conflict { .. } => Self::already_exists(e.to_string()),
        }
    }
}

// Record kinds, as errors name them.
const VERSION: &str = "notice version";
const LATEST: &str = "newest version";
const FEED: &str = "own feed entry";
const OUTBOX: &str = "outbox item";
const QUEUED: &str = "last queued position";
const CURSOR: &str = "feed cursor";
const COUNT: &str = "notice count";
const LAST_SEQ: &str = "own feed position";

/// `v origin 0 serial 0`: every version of one notice.
fn versions_prefix(origin: &str, serial: &str) -> Key {
    Key::tag(b'v').field(origin).field(serial)
}

/// `v origin 0 serial 0 version`.
fn version_key(origin: &str, serial: &str, version: u32) -> Key {
    versions_prefix(origin, serial).u32(version)
}

/// `l origin 0 serial`: our newest version and its content hash.
fn latest_key(origin: &str, serial: &str) -> Key {
    Key::tag(b'l').field(origin).text(serial)
}

/// `f seq`: our own feed.
fn feed_key(seq: u64) -> Key {
    Key::tag(b'f').u64(seq)
}

/// `serial 0 version`: what a feed entry points at.
fn feed_value(serial: &str, version: u32) -> Vec<u8> {
    Key::name(serial.as_bytes())
        .bytes(&[0])
        .u32(version)
        .into_vec()
}

/// `o peer 0`: a peer's outbox.
fn outbox_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'o').field(peer.as_str())
}

/// `p peer`, `c peer`, `n origin`.
fn queued_key(peer: &AgencyId) -> Key {
    Key::tag(b'p').text(peer.as_str())
}

fn cursor_key(peer: &AgencyId) -> Key {
    Key::tag(b'c').text(peer.as_str())
}

fn count_key(origin: &str) -> Key {
    Key::tag(b'n').text(origin)
}

const LAST_SEQ_KEY: &[u8] = b"mseq";

/// A received notice as stored: a `StoredNotice` with no recipients,
/// encoded from a borrowed envelope (no copy of the envelope first).
fn encode_received(envelope: &SignedNotice, stored_at_ms: i64) -> Vec<u8> {
    use prost::encoding::{int64, message};
    let mut buf = Vec::with_capacity(message::encoded_len(1, envelope) + 11);
    message::encode(1, envelope, &mut buf);
    if stored_at_ms != 0 {
        int64::encode(3, &stored_at_ms, &mut buf);
    }
    buf
}

/// The newest version of a notice and the hash of its importable content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest {
    pub version: u32,
    pub content_hash: [u8; 32],
}

/// Exclusive write access, held while deciding and writing a change.
pub struct Writer<'a> {
    store: &'a NoticeStore,
    _guard: MutexGuard<'a, ()>,
}

impl NoticeStore {
    /// Opens the tree for the node of agency `own`.
    pub fn open(store: &Store, own: AgencyId) -> std::result::Result<Self, StoreError> {
        let tree = Tree::open(store, TREE)?;
        let last_seq = tree.u64_at(LAST_SEQ_KEY, LAST_SEQ)?;
        Ok(Self {
            tree,
            own,
            write: Mutex::new(()),
            last_seq: last_seq.into(),
        })
    }

    /// Takes the write lock.
    pub fn writer(&self) -> Writer<'_> {
        Writer {
            store: self,
            _guard: self
                .write
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        }
    }

    fn get_raw(&self, k: impl AsRef<[u8]>, record: &'static str) -> Result<Option<sled::IVec>> {
        Ok(self.tree.get(k, record)?)
    }

    fn u64_at(&self, k: impl AsRef<[u8]>, record: &'static str) -> Result<u64> {
        Ok(self.tree.u64_at(k, record)?)
    }

    fn corrupt(&self, record: &'static str) -> NoticeStoreError {
        self.tree.corrupt(record).into()
    }

    fn failed(&self, record: &'static str) -> impl FnOnce(sled::Error) -> NoticeStoreError {
        let failed = self.tree.failed(record);
        move |e| failed(e).into()
    }

    /// The newest version of `origin/serial`, if any. Only our own notices
    /// carry a content hash (for import); a received one has zeros there.
    pub fn latest_entry(&self, origin: &str, serial: &str) -> Result<Option<Latest>> {
        if origin != self.own.as_str() {
            let prefix = versions_prefix(origin, serial);
            let Some(kv) = self.tree.sled().scan_prefix(&prefix).next_back() else {
                return Ok(None);
            };
            let (k, _) = kv.map_err(self.failed(VERSION))?;
            let version = k
                .get(prefix.len()..)
                .and_then(read_u32)
                .ok_or_else(|| self.corrupt(VERSION))?;
            return Ok(Some(Latest {
                version,
                content_hash: [0; 32],
            }));
        }
        let Some(v) = self.get_raw(latest_key(origin, serial), LATEST)? else {
            return Ok(None);
        };
        let version = read_u32(&v).ok_or_else(|| self.corrupt(LATEST))?;
        let content_hash: [u8; 32] = v
            .get(4..36)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| self.corrupt(LATEST))?;
        Ok(Some(Latest {
            version,
            content_hash,
        }))
    }

    /// One stored version.
    pub fn get(&self, origin: &str, serial: &str, version: u32) -> Result<Option<StoredNotice>> {
        Ok(self
            .tree
            .message(version_key(origin, serial, version), VERSION)?)
    }

    /// Whether exactly these signed bytes are already stored for
    /// `origin/serial` `version` (so they need no second verification).
    pub fn already_stored(
        &self,
        origin: &str,
        serial: &str,
        version: u32,
        bytes: &[u8],
    ) -> Result<bool> {
        Ok(self
            .get(origin, serial, version)?
            .and_then(|s| s.envelope)
            .is_some_and(|e| e.notice == bytes))
    }

    /// The newest stored version.
    pub fn latest(&self, origin: &str, serial: &str) -> Result<Option<StoredNotice>> {
        match self.latest_entry(origin, serial)? {
            Some(l) => self.get(origin, serial, l.version),
            None => Ok(None),
        }
    }

    /// Every stored version, oldest first.
    pub fn versions(&self, origin: &str, serial: &str) -> Result<Vec<StoredNotice>> {
        Ok(self
            .tree
            .messages(versions_prefix(origin, serial), VERSION)?
            .into_iter()
            .map(|(_, s)| s)
            .collect())
    }

    /// The newest version of every notice, optionally of one origin: the
    /// last `v` entry under each serial.
    pub fn list_latest(&self, origin: Option<&str>) -> Result<Vec<StoredNotice>> {
        let prefix = match origin {
            Some(o) => Key::tag(b'v').field(o),
            None => Key::tag(b'v'),
        };
        self.latest_under(prefix)
    }

    /// The newest version of every notice of `origin` whose serial starts
    /// with `serial_prefix` (charters, trusted-operator records).
    pub fn list_latest_with_prefix(
        &self,
        origin: &str,
        serial_prefix: &str,
    ) -> Result<Vec<StoredNotice>> {
        self.latest_under(Key::tag(b'v').field(origin).text(serial_prefix))
    }

    fn latest_under(&self, prefix: Key) -> Result<Vec<StoredNotice>> {
        let mut out = Vec::new();
        // (origin 0 serial 0) of the entry held back, and its value.
        let mut held: Option<(Vec<u8>, sled::IVec)> = None;
        for kv in self.tree.scan(prefix, VERSION) {
            let (k, v) = kv?;
            let name = k
                .len()
                .checked_sub(4)
                .and_then(|end| k.get(1..end))
                .ok_or_else(|| self.corrupt(VERSION))?;
            if let Some((prev, value)) = held.take()
                && prev != name
            {
                out.push(self.tree.decode(&value, VERSION)?);
            }
            held = Some((name.to_vec(), v));
        }
        if let Some((_, value)) = held {
            out.push(self.tree.decode(&value, VERSION)?);
        }
        Ok(out)
    }

    /// Versions stored per origin.
    pub fn counts(&self) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for kv in self.tree.scan([b'n'], COUNT) {
            let (k, v) = kv?;
            let origin = String::from_utf8(k[1..].to_vec()).map_err(|_| self.corrupt(COUNT))?;
            out.insert(origin, self.tree.u64_of(&v, COUNT)?);
        }
        Ok(out)
    }

    /// Our cursor in `peer`'s feed.
    pub fn cursor(&self, peer: &AgencyId) -> Result<u64> {
        self.u64_at(cursor_key(peer), CURSOR)
    }

    /// The last seq of our own feed.
    pub fn last_seq(&self) -> Result<u64> {
        Ok(self.last_seq.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Own feed entries after `after`, in order, as (seq, stored notice).
    pub fn feed_after(&self, after: u64) -> impl Iterator<Item = Result<(u64, StoredNotice)>> + '_ {
        let start = feed_key(after.saturating_add(1));
        self.tree
            .sled()
            .range(start..)
            .take_while(|kv| kv.as_ref().map_or(true, |(k, _)| k.first() == Some(&b'f')))
            .map(move |kv| {
                let (k, _) = kv.map_err(self.failed(FEED))?;
                let seq = self.tree.u64_in_key(&k, 1, FEED)?;
                Ok((seq, self.own_at(seq)?))
            })
    }

    /// Our own notice at feed position `seq`.
    fn own_at(&self, seq: u64) -> Result<StoredNotice> {
        let entry = self
            .get_raw(feed_key(seq), FEED)?
            .ok_or_else(|| self.corrupt(FEED))?;
        let sep = entry
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.corrupt(FEED))?;
        let serial = std::str::from_utf8(&entry[..sep]).map_err(|_| self.corrupt(FEED))?;
        let version = read_u32(&entry[sep + 1..]).ok_or_else(|| self.corrupt(FEED))?;
        self.get(self.own.as_str(), serial, version)?
            .ok_or_else(|| self.corrupt(FEED))
    }

    /// Up to `max` outbox items for `peer`, oldest first.
    pub fn outbox(&self, peer: &AgencyId, max: usize) -> Result<Vec<FeedItem>> {
        let prefix = outbox_prefix(peer);
        let mut items = Vec::new();
        for kv in self.tree.scan(&prefix, OUTBOX).take(max) {
            let (k, v) = kv?;
            let seq = self.tree.u64_in_key(&k, prefix.len(), OUTBOX)?;
            let prev_seq = self.tree.u64_of(&v, OUTBOX)?;
            let stored = self.own_at(seq)?;
            items.push(FeedItem {
                seq,
                prev_seq,
                notice: stored.envelope,
            });
        }
        Ok(items)
    }

    /// How many items wait for `peer`.
    pub fn outbox_len(&self, peer: &AgencyId) -> Result<usize> {
        Ok(self.tree.count(outbox_prefix(peer), OUTBOX)?)
    }

    /// Removes every item up to and including `seq` from `peer`'s outbox:
    /// a pull from after `seq` says the peer durably holds all of them.
    /// Returns how many were removed.
    pub fn outbox_ack_through(&self, peer: &AgencyId, seq: u64) -> Result<usize> {
        let prefix = outbox_prefix(peer);
        let end = prefix.clone().u64(seq);
        // Collected first: no sled iterator stays open during the batch.
        let keys: Vec<sled::IVec> = self
            .tree
            .sled()
            .range(prefix..=end)
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(self.failed(OUTBOX))?;
        if keys.is_empty() {
            return Ok(0);
        }
        let mut batch = sled::Batch::default();
        for k in &keys {
            batch.remove(k.clone());
        }
        self.tree.apply(batch, OUTBOX)?;
        Ok(keys.len())
    }

    /// Removes acknowledged items from `peer`'s outbox.
    pub fn outbox_ack(&self, peer: &AgencyId, seqs: &[u64]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for seq in seqs {
            batch.remove(outbox_prefix(peer).u64(*seq));
        }
        Ok(self.tree.apply(batch, OUTBOX)?)
    }
}

impl NoticeStore {
    /// Makes the derived entries agree with the stored versions, after a
    /// restore: a backup reads the tree while the node writes, so its
    /// counts, own feed and newest-version entries (which sort before the
    /// versions) may be older than the versions it holds. Rebuilds the
    /// per-origin counts, our own feed entries and `mseq`, and the `l`
    /// entries of our own notices from the `v` entries. Returns how many
    /// versions it read.
    pub fn repair(&self) -> Result<u64> {
        let own = self.own.as_str();
        let mut batch = sled::Batch::default();
        // Writes `value` at `k` unless it is there already.
        let set =
            |batch: &mut sled::Batch, k: Key, value: Vec<u8>, record: &'static str| -> Result<()> {
                if self.get_raw(&k, record)?.as_deref() != Some(value.as_slice()) {
                    batch.insert(k, value);
                }
                Ok(())
            };
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut max_seq = 0;
        // Our newest version seen so far, of the serial being read.
        let mut newest: Option<Notice> = None;
        let latest_of = |n: &Notice| {
            let mut latest = n.version.to_be_bytes().to_vec();
            latest.extend_from_slice(&content_hash(n));
            (latest_key(&n.origin, &n.serial), latest)
        };
        let mut read = 0u64;
        for kv in self.tree.scan([b'v'], VERSION) {
            let (_, v) = kv?;
            let notice = StoredNotice::decode(v.as_ref())
                .ok()
                .and_then(|s| s.envelope)
                .and_then(|e| Notice::decode(e.notice.as_slice()).ok())
                .ok_or_else(|| self.corrupt(VERSION))?;
            read += 1;
            *counts.entry(notice.origin.clone()).or_default() += 1;
            if notice.origin != own {
                continue;
            }
            set(
                &mut batch,
                feed_key(notice.seq),
                feed_value(&notice.serial, notice.version),
                FEED,
            )?;
            max_seq = max_seq.max(notice.seq);
            if let Some(done) = newest.take_if(|n| n.serial != notice.serial) {
                let (k, v) = latest_of(&done);
                set(&mut batch, k, v, LATEST)?;
            }
            newest = Some(notice);
        }
        if let Some(done) = newest {
            let (k, v) = latest_of(&done);
            set(&mut batch, k, v, LATEST)?;
        }
        for kv in self.tree.scan([b'n'], COUNT) {
            let (k, _) = kv?;
            let origin = std::str::from_utf8(&k[1..]).map_err(|_| self.corrupt(COUNT))?;
            if !counts.contains_key(origin) {
                batch.remove(k);
            }
        }
        for (origin, n) in counts {
            set(
                &mut batch,
                count_key(&origin),
                n.to_be_bytes().to_vec(),
                COUNT,
            )?;
        }
        // Against what is stored, which a restore may have left behind.
        if max_seq > self.u64_at(LAST_SEQ_KEY, LAST_SEQ)? {
            batch.insert(LAST_SEQ_KEY, max_seq.to_be_bytes().as_slice());
        }
        self.tree.apply(batch, VERSION)?;
        self.last_seq
            .fetch_max(max_seq, std::sync::atomic::Ordering::AcqRel);
        Ok(read)
    }
}

impl Writer<'_> {
    /// The newest version of `origin/serial`, if any.
    pub fn latest_entry(&self, origin: &str, serial: &str) -> Result<Option<Latest>> {
        self.store.latest_entry(origin, serial)
    }

    /// Appends one of our own notices: assigns the next feed seq, signs,
    /// stores, and queues it for each recipient, in one atomic batch.
    /// Returns the seq and the envelope.
    pub fn append_own(
        &self,
        mut notice: Notice,
        recipients: &[AgencyId],
        key_pair: &SigningKey,
    ) -> Result<(u64, SignedNotice)> {
        let s = self.store;
        let seq = s.last_seq()? + 1;
        notice.seq = seq;
        let envelope = seal(&notice, key_pair);
        let origin = notice.origin.as_str();
        let serial = notice.serial.as_str();
        let mut batch = sled::Batch::default();
        let stored = StoredNotice {
            envelope: Some(envelope.clone()),
            recipients: recipients.iter().map(ToString::to_string).collect(),
            stored_at_ms: now_ms(),
        };
        batch.insert(
            version_key(origin, serial, notice.version),
            stored.encode_to_vec(),
        );
        let mut latest = notice.version.to_be_bytes().to_vec();
        latest.extend_from_slice(&content_hash(&notice));
        batch.insert(latest_key(origin, serial), latest);
        batch.insert(feed_key(seq), feed_value(serial, notice.version));
        batch.insert(LAST_SEQ_KEY, seq.to_be_bytes().as_slice());
        let count = count_key(origin);
        let n = s.u64_at(&count, COUNT)? + 1;
        batch.insert(count, n.to_be_bytes().as_slice());
        for peer in recipients {
            let last_key = queued_key(peer);
            let prev = s.u64_at(&last_key, QUEUED)?;
            batch.insert(outbox_prefix(peer).u64(seq), prev.to_be_bytes().as_slice());
            batch.insert(last_key, seq.to_be_bytes().as_slice());
        }
        s.tree.apply(batch, VERSION)?;
        s.last_seq.store(seq, std::sync::atomic::Ordering::Release);
        Ok((seq, envelope))
    }

    /// Moves our cursor in `from`'s feed to `seq` when it stands at
    /// `prev_seq` or beyond: `from` says none of its entries after
    /// `prev_seq` up to `seq` is for us (a watermark ending a pull).
    pub fn advance_cursor(&self, from: &AgencyId, prev_seq: u64, seq: u64) -> Result<()> {
        let cursor_key = cursor_key(from);
        let cursor = self.store.u64_at(&cursor_key, CURSOR)?;
        if prev_seq <= cursor && seq > cursor {
            let mut batch = sled::Batch::default();
            batch.insert(cursor_key, seq.to_be_bytes().as_slice());
            self.store.tree.apply(batch, CURSOR)?;
        }
        Ok(())
    }

    /// Stores verified notices received from their origin `from`, each at
    /// feed position `seq` (whose predecessor visible to us is `prev_seq`),
    /// in one atomic batch. Applying the same version twice is a no-op;
    /// different content under the same version is refused (that item only).
    pub fn apply_received(
        &self,
        from: &AgencyId,
        items: &[Incoming<'_>],
    ) -> Result<Vec<Result<Applied>>> {
        let s = self.store;
        let mut batch = sled::Batch::default();
        let mut fresh: std::collections::HashMap<Vec<u8>, &[u8]> = std::collections::HashMap::new();
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        let cursor_key = cursor_key(from);
        let start_cursor = s.u64_at(&cursor_key, CURSOR)?;
        let mut cursor = start_cursor;
        let stored_at_ms = now_ms();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let notice = item.notice;
            let vkey = version_key(&notice.origin, &notice.serial, notice.version).into_vec();
            // Whether this version is held already (in this batch or the
            // tree), and if so whether with exactly these bytes.
            let same_bytes: Option<bool> = match fresh.get(&vkey) {
                Some(bytes) => Some(*bytes == item.envelope.notice.as_slice()),
                None => s
                    .tree
                    .message::<StoredNotice>(&vkey, VERSION)?
                    .map(|e| e.envelope.is_some_and(|e| e.notice == item.envelope.notice)),
            };
            let applied = match same_bytes {
                Some(true) => Ok(Applied::Duplicate),
                Some(false) => Err(NoticeStoreError::Conflict {
                    origin: notice.origin.clone(),
                    serial: notice.serial.clone(),
                    version: notice.version,
                }),
                None => {
                    batch.insert(
                        vkey.as_slice(),
                        encode_received(item.envelope, stored_at_ms),
                    );
                    fresh.insert(vkey, item.envelope.notice.as_slice());
                    *counts.entry(notice.origin.as_str()).or_default() += 1;
                    Ok(Applied::Stored)
                }
            };
            if applied.is_ok() && item.prev_seq <= cursor && item.seq > cursor {
                cursor = item.seq;
            }
            out.push(applied);
        }
        for (origin, n) in counts {
            let count = count_key(origin);
            let total = s.u64_at(&count, COUNT)? + n;
            batch.insert(count, total.to_be_bytes().as_slice());
        }
        if cursor != start_cursor {
            batch.insert(cursor_key, cursor.to_be_bytes().as_slice());
        }
        s.tree.apply(batch, VERSION)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
