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
    tree: sled::Tree,
    own: AgencyId,
    write: Mutex<()>,
}

impl std::fmt::Debug for NoticeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoticeStore").finish_non_exhaustive()
    }
}

fn sled_err(op: &'static str) -> impl FnOnce(sled::Error) -> NoticeStoreError {
    move |source| NoticeStoreError::Store(StoreError::Sled { op, source })
}

fn corrupt() -> NoticeStoreError {
    NoticeStoreError::Store(StoreError::Corrupt { tree: TREE })
}

fn key(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(tag);
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

fn version_key(origin: &str, serial: &str, version: u32) -> Vec<u8> {
    let mut k = key(b'v', &[origin.as_bytes(), serial.as_bytes()]);
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

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

fn be64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

fn be32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?))
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
        Ok(Self {
            tree: store.tree(TREE)?,
            own,
            write: Mutex::new(()),
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

    fn get_raw(&self, k: &[u8]) -> Result<Option<sled::IVec>> {
        self.tree.get(k).map_err(sled_err("reading a notice"))
    }

    /// The newest version of `origin/serial`, if any. Only our own notices
    /// carry a content hash (for import); a received one has zeros there.
    pub fn latest_entry(&self, origin: &str, serial: &str) -> Result<Option<Latest>> {
        if origin != self.own.as_str() {
            let mut prefix = key(b'v', &[origin.as_bytes(), serial.as_bytes()]);
            prefix.push(0);
            let Some(kv) = self.tree.scan_prefix(&prefix).next_back() else {
                return Ok(None);
            };
            let (k, _) = kv.map_err(sled_err("reading a notice"))?;
            let version = be32(&k[prefix.len()..]).ok_or_else(corrupt)?;
            return Ok(Some(Latest {
                version,
                content_hash: [0; 32],
            }));
        }
        let Some(v) = self.get_raw(&key(b'l', &[origin.as_bytes(), serial.as_bytes()]))? else {
            return Ok(None);
        };
        let version = be32(&v).ok_or_else(corrupt)?;
        let content_hash: [u8; 32] = v
            .get(4..36)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(corrupt)?;
        Ok(Some(Latest {
            version,
            content_hash,
        }))
    }

    /// One stored version.
    pub fn get(&self, origin: &str, serial: &str, version: u32) -> Result<Option<StoredNotice>> {
        self.get_raw(&version_key(origin, serial, version))?
            .map(|v| StoredNotice::decode(v.as_ref()).map_err(|_| corrupt()))
            .transpose()
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
        let mut prefix = key(b'v', &[origin.as_bytes(), serial.as_bytes()]);
        prefix.push(0);
        self.tree
            .scan_prefix(prefix)
            .map(|kv| {
                let (_, v) = kv.map_err(sled_err("reading notice versions"))?;
                StoredNotice::decode(v.as_ref()).map_err(|_| corrupt())
            })
            .collect()
    }

    /// The newest version of every notice, optionally of one origin: the
    /// last `v` entry under each serial.
    pub fn list_latest(&self, origin: Option<&str>) -> Result<Vec<StoredNotice>> {
        let prefix = match origin {
            Some(o) => {
                let mut p = key(b'v', &[o.as_bytes()]);
                p.push(0);
                p
            }
            None => vec![b'v'],
        };
        let mut out = Vec::new();
        // (origin 0 serial 0) of the entry held back, and its value.
        let mut held: Option<(Vec<u8>, sled::IVec)> = None;
        for kv in self.tree.scan_prefix(prefix) {
            let (k, v) = kv.map_err(sled_err("listing notices"))?;
            let name = k
                .get(1..k.len().checked_sub(4).ok_or_else(corrupt)?)
                .ok_or_else(corrupt)?;
            if let Some((prev, value)) = held.take()
                && prev != name
            {
                out.push(StoredNotice::decode(value.as_ref()).map_err(|_| corrupt())?);
            }
            held = Some((name.to_vec(), v));
        }
        if let Some((_, value)) = held {
            out.push(StoredNotice::decode(value.as_ref()).map_err(|_| corrupt())?);
        }
        Ok(out)
    }

    /// Versions stored per origin.
    pub fn counts(&self) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for kv in self.tree.scan_prefix([b'n']) {
            let (k, v) = kv.map_err(sled_err("counting notices"))?;
            let origin = String::from_utf8(k[1..].to_vec()).map_err(|_| corrupt())?;
            out.insert(origin, be64(&v).ok_or_else(corrupt)?);
        }
        Ok(out)
    }

    fn u64_at(&self, k: &[u8]) -> Result<u64> {
        Ok(match self.get_raw(k)? {
            Some(v) => be64(&v).ok_or_else(corrupt)?,
            None => 0,
        })
    }

    /// Our cursor in `peer`'s feed.
    pub fn cursor(&self, peer: &AgencyId) -> Result<u64> {
        self.u64_at(&key(b'c', &[peer.as_str().as_bytes()]))
    }

    /// The last seq of our own feed.
    pub fn last_seq(&self) -> Result<u64> {
        self.u64_at(b"mseq")
    }

    /// Own feed entries after `after`, in order, as (seq, stored notice).
    pub fn feed_after(&self, after: u64) -> impl Iterator<Item = Result<(u64, StoredNotice)>> + '_ {
        let start = key(b'f', &[&(after.saturating_add(1)).to_be_bytes()]);
        self.tree
            .range(start..)
            .take_while(|kv| kv.as_ref().map_or(true, |(k, _)| k.first() == Some(&b'f')))
            .map(move |kv| {
                let (k, _) = kv.map_err(sled_err("reading the feed"))?;
                let seq = be64(&k[1..]).ok_or_else(corrupt)?;
                Ok((seq, self.own_at(seq)?))
            })
    }

    /// Our own notice at feed position `seq`.
    fn own_at(&self, seq: u64) -> Result<StoredNotice> {
        let entry = self
            .get_raw(&key(b'f', &[&seq.to_be_bytes()]))?
            .ok_or_else(corrupt)?;
        let sep = entry.iter().position(|&b| b == 0).ok_or_else(corrupt)?;
        let serial = std::str::from_utf8(&entry[..sep]).map_err(|_| corrupt())?;
        let version = be32(&entry[sep + 1..]).ok_or_else(corrupt)?;
        self.get(self.own.as_str(), serial, version)?
            .ok_or_else(corrupt)
    }

    /// Up to `max` outbox items for `peer`, oldest first.
    pub fn outbox(&self, peer: &AgencyId, max: usize) -> Result<Vec<FeedItem>> {
        let mut prefix = key(b'o', &[peer.as_str().as_bytes()]);
        prefix.push(0);
        let mut items = Vec::new();
        for kv in self.tree.scan_prefix(&prefix).take(max) {
            let (k, v) = kv.map_err(sled_err("reading the outbox"))?;
            let seq = be64(&k[prefix.len()..]).ok_or_else(corrupt)?;
            let prev_seq = be64(&v).ok_or_else(corrupt)?;
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
    pub fn outbox_len(&self, peer: &AgencyId) -> usize {
        let mut prefix = key(b'o', &[peer.as_str().as_bytes()]);
        prefix.push(0);
        self.tree.scan_prefix(prefix).count()
    }

    /// Removes every item up to and including `seq` from `peer`'s outbox:
    /// a pull from after `seq` says the peer durably holds all of them.
    /// Returns how many were removed.
    pub fn outbox_ack_through(&self, peer: &AgencyId, seq: u64) -> Result<usize> {
        let mut prefix = key(b'o', &[peer.as_str().as_bytes()]);
        prefix.push(0);
        let mut end = prefix.clone();
        end.extend_from_slice(&seq.to_be_bytes());
        // Collected first: no sled iterator stays open during the batch.
        let keys: Vec<sled::IVec> = self
            .tree
            .range(prefix..=end)
            .keys()
            .collect::<std::result::Result<_, _>>()
            .map_err(sled_err("reading the outbox"))?;
        if keys.is_empty() {
            return Ok(0);
        }
        let mut batch = sled::Batch::default();
        for k in &keys {
            batch.remove(k.clone());
        }
        crate::store::apply_batch(&self.tree, batch).map_err(sled_err("clearing the outbox"))?;
        Ok(keys.len())
    }

    /// Removes acknowledged items from `peer`'s outbox.
    pub fn outbox_ack(&self, peer: &AgencyId, seqs: &[u64]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for seq in seqs {
            let mut k = key(b'o', &[peer.as_str().as_bytes()]);
            k.push(0);
            k.extend_from_slice(&seq.to_be_bytes());
            batch.remove(k);
        }
        crate::store::apply_batch(&self.tree, batch).map_err(sled_err("clearing the outbox"))
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
        let set = |batch: &mut sled::Batch, k: Vec<u8>, value: Vec<u8>| -> Result<()> {
            if self.get_raw(&k)?.as_deref() != Some(value.as_slice()) {
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
            (
                key(b'l', &[n.origin.as_bytes(), n.serial.as_bytes()]),
                latest,
            )
        };
        let mut read = 0u64;
        for kv in self.tree.scan_prefix([b'v']) {
            let (_, v) = kv.map_err(sled_err("repairing notices"))?;
            let notice = StoredNotice::decode(v.as_ref())
                .ok()
                .and_then(|s| s.envelope)
                .and_then(|e| Notice::decode(e.notice.as_slice()).ok())
                .ok_or_else(corrupt)?;
            read += 1;
            *counts.entry(notice.origin.clone()).or_default() += 1;
            if notice.origin != own {
                continue;
            }
            let mut feed = notice.serial.as_bytes().to_vec();
            feed.push(0);
            feed.extend_from_slice(&notice.version.to_be_bytes());
            set(&mut batch, key(b'f', &[&notice.seq.to_be_bytes()]), feed)?;
            max_seq = max_seq.max(notice.seq);
            if let Some(done) = newest.take_if(|n| n.serial != notice.serial) {
                let (k, v) = latest_of(&done);
                set(&mut batch, k, v)?;
            }
            newest = Some(notice);
        }
        if let Some(done) = newest {
            let (k, v) = latest_of(&done);
            set(&mut batch, k, v)?;
        }
        for kv in self.tree.scan_prefix([b'n']) {
            let (k, _) = kv.map_err(sled_err("repairing counts"))?;
            let origin = std::str::from_utf8(&k[1..]).map_err(|_| corrupt())?;
            if !counts.contains_key(origin) {
                batch.remove(k);
            }
        }
        for (origin, n) in counts {
            set(
                &mut batch,
                key(b'n', &[origin.as_bytes()]),
                n.to_be_bytes().to_vec(),
            )?;
        }
        if max_seq > self.last_seq()? {
            batch.insert(b"mseq".as_slice(), max_seq.to_be_bytes().as_slice());
        }
        crate::store::apply_batch(&self.tree, batch).map_err(sled_err("repairing notices"))?;
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
        batch.insert(key(b'l', &[origin.as_bytes(), serial.as_bytes()]), latest);
        let mut feed = serial.as_bytes().to_vec();
        feed.push(0);
        feed.extend_from_slice(&notice.version.to_be_bytes());
        batch.insert(key(b'f', &[&seq.to_be_bytes()]), feed);
        batch.insert(b"mseq".as_slice(), seq.to_be_bytes().as_slice());
        let count_key = key(b'n', &[origin.as_bytes()]);
        batch.insert(
            count_key.clone(),
            (s.u64_at(&count_key)? + 1).to_be_bytes().as_slice(),
        );
        for peer in recipients {
            let last_key = key(b'p', &[peer.as_str().as_bytes()]);
            let prev = s.u64_at(&last_key)?;
            let mut ok = key(b'o', &[peer.as_str().as_bytes()]);
            ok.push(0);
            ok.extend_from_slice(&seq.to_be_bytes());
            batch.insert(ok, prev.to_be_bytes().as_slice());
            batch.insert(last_key, seq.to_be_bytes().as_slice());
        }
        crate::store::apply_batch(&s.tree, batch).map_err(sled_err("storing a notice"))?;
        Ok((seq, envelope))
    }

    /// Moves our cursor in `from`'s feed to `seq` when it stands at
    /// `prev_seq` or beyond: `from` says none of its entries after
    /// `prev_seq` up to `seq` is for us (a watermark ending a pull).
    pub fn advance_cursor(&self, from: &AgencyId, prev_seq: u64, seq: u64) -> Result<()> {
        let cursor_key = key(b'c', &[from.as_str().as_bytes()]);
        let cursor = self.store.u64_at(&cursor_key)?;
        if prev_seq <= cursor && seq > cursor {
            let mut batch = sled::Batch::default();
            batch.insert(cursor_key, seq.to_be_bytes().as_slice());
            crate::store::apply_batch(&self.store.tree, batch)
                .map_err(sled_err("moving a feed cursor"))?;
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
        let cursor_key = key(b'c', &[from.as_str().as_bytes()]);
        let start_cursor = s.u64_at(&cursor_key)?;
        let mut cursor = start_cursor;
        let stored_at_ms = now_ms();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let notice = item.notice;
            let vkey = version_key(&notice.origin, &notice.serial, notice.version);
            // Whether this version is held already (in this batch or the
            // tree), and if so whether with exactly these bytes.
            let same_bytes: Option<bool> = match fresh.get(&vkey) {
                Some(bytes) => Some(*bytes == item.envelope.notice.as_slice()),
                None => s
                    .get_raw(&vkey)?
                    .map(|v| StoredNotice::decode(v.as_ref()).map_err(|_| corrupt()))
                    .transpose()?
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
            let count_key = key(b'n', &[origin.as_bytes()]);
            batch.insert(
                count_key.clone(),
                (s.u64_at(&count_key)? + n).to_be_bytes().as_slice(),
            );
        }
        if cursor != start_cursor {
            batch.insert(cursor_key, cursor.to_be_bytes().as_slice());
        }
        crate::store::apply_batch(&s.tree, batch).map_err(sled_err("storing received notices"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(serial: &str, version: u32, seq: u64) -> (SignedNotice, Notice) {
        let notice = Notice {
            origin: "FR-SBDU".into(),
            serial: serial.into(),
            version,
            seq,
            ..Default::default()
        };
        let envelope = SignedNotice {
            notice: notice.encode_to_vec(),
            origin: "FR-SBDU".into(),
            key_id: "k".into(),
            signature: vec![version as u8; 64],
        };
        (envelope, notice)
    }

    #[test]
    fn received_encoding_is_a_stored_notice() {
        let (envelope, _) = received("S-1", 2, 7);
        let bytes = encode_received(&envelope, 1_770_000_000_123);
        let expected = StoredNotice {
            envelope: Some(envelope),
            recipients: Vec::new(),
            stored_at_ms: 1_770_000_000_123,
        };
        assert_eq!(bytes, expected.encode_to_vec());
    }

    #[test]
    fn a_pull_acknowledges_the_outbox_up_to_its_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ns = NoticeStore::open(&store, "DE-BAFA".parse().unwrap()).unwrap();
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let b: AgencyId = "FR-SBDU".parse().unwrap();
        let c: AgencyId = "US-BIS".parse().unwrap();
        for i in 0..5 {
            let notice = Notice {
                origin: "DE-BAFA".into(),
                serial: format!("S-{i}"),
                version: 1,
                ..Default::default()
            };
            let to = if i == 2 {
                vec![c.clone()]
            } else {
                vec![b.clone(), c.clone()]
            };
            ns.writer().append_own(notice, &to, &key).unwrap();
        }
        let seqs = |peer: &AgencyId| -> Vec<u64> {
            ns.outbox(peer, 100)
                .unwrap()
                .iter()
                .map(|i| i.seq)
                .collect()
        };
        assert_eq!(seqs(&b), [1, 2, 4, 5]);
        assert_eq!(ns.outbox_ack_through(&b, 3).unwrap(), 2);
        assert_eq!(seqs(&b), [4, 5]);
        assert_eq!(ns.outbox_ack_through(&b, 3).unwrap(), 0);
        // Another peer's outbox is untouched.
        assert_eq!(seqs(&c), [1, 2, 3, 4, 5]);
        assert_eq!(ns.outbox_ack_through(&b, u64::MAX).unwrap(), 2);
        assert_eq!(ns.outbox_len(&b), 0);
    }

    #[test]
    fn repair_rebuilds_counts_feed_and_newest_versions_from_the_versions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ns = NoticeStore::open(&store, "DE-BAFA".parse().unwrap()).unwrap();
        let key_pair = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()).unwrap();
        let own = |serial: &str, version: u32| Notice {
            origin: "DE-BAFA".into(),
            serial: serial.into(),
            version,
            issued_at: i64::from(version),
            ..Default::default()
        };
        for (serial, version) in [("S-1", 1), ("S-2", 1), ("S-1", 2)] {
            ns.writer()
                .append_own(own(serial, version), &[], &key_pair)
                .unwrap();
        }
        let (envelope, notice) = received("R-1", 1, 1);
        let from: AgencyId = "FR-SBDU".parse().unwrap();
        ns.writer()
            .apply_received(
                &from,
                &[Incoming {
                    seq: 1,
                    prev_seq: 0,
                    envelope: &envelope,
                    notice: &notice,
                }],
            )
            .unwrap();
        let healthy_latest = ns.latest_entry("DE-BAFA", "S-1").unwrap().unwrap();
        // What a backup taken during writes can hold: derived entries older
        // than the versions.
        let mut stale = sled::Batch::default();
        stale.remove(key(b'f', &[&3u64.to_be_bytes()]));
        stale.insert(b"mseq".as_slice(), 2u64.to_be_bytes().as_slice());
        stale.insert(key(b'n', &[b"DE-BAFA"]), 1u64.to_be_bytes().as_slice());
        stale.remove(key(b'n', &[b"FR-SBDU"]));
        let mut old_latest = 1u32.to_be_bytes().to_vec();
        old_latest.extend_from_slice(&[9; 32]);
        stale.insert(key(b'l', &[b"DE-BAFA", b"S-1"]), old_latest);
        ns.tree.apply_batch(stale).unwrap();

        assert_eq!(ns.repair().unwrap(), 4);
        let counts = ns.counts().unwrap();
        assert_eq!((counts["DE-BAFA"], counts["FR-SBDU"]), (3, 1));
        assert_eq!(ns.last_seq().unwrap(), 3);
        let feed: Vec<u64> = ns.feed_after(0).map(|r| r.unwrap().0).collect();
        assert_eq!(feed, [1, 2, 3]);
        assert_eq!(
            ns.latest_entry("DE-BAFA", "S-1").unwrap().unwrap(),
            healthy_latest
        );
        // Repairing a healthy store changes nothing.
        assert_eq!(ns.repair().unwrap(), 4);
        assert_eq!(ns.counts().unwrap(), counts);
    }

    #[test]
    fn newest_received_version_is_the_last_entry_under_its_serial() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ns = NoticeStore::open(&store, "DE-BAFA".parse().unwrap()).unwrap();
        let from: AgencyId = "FR-SBDU".parse().unwrap();
        let items = [
            received("S-1", 1, 1),
            received("S-1", 2, 2),
            received("S-10", 1, 3),
            received("S-1", 10, 4),
        ];
        let incoming: Vec<Incoming<'_>> = items
            .iter()
            .map(|(envelope, notice)| Incoming {
                seq: notice.seq,
                prev_seq: notice.seq - 1,
                envelope,
                notice,
            })
            .collect();
        let applied = ns.writer().apply_received(&from, &incoming).unwrap();
        assert!(applied.iter().all(|a| matches!(a, Ok(Applied::Stored))));
        assert_eq!(
            ns.latest_entry("FR-SBDU", "S-1").unwrap().unwrap().version,
            10
        );
        assert_eq!(
            ns.latest_entry("FR-SBDU", "S-10").unwrap().unwrap().version,
            1
        );
        assert!(ns.latest_entry("FR-SBDU", "S-2").unwrap().is_none());
        let listed: Vec<(String, u32)> = ns
            .list_latest(Some("FR-SBDU"))
            .unwrap()
            .into_iter()
            .map(|s| {
                let n = Notice::decode(s.envelope.unwrap().notice.as_slice()).unwrap();
                (n.serial, n.version)
            })
            .collect();
        assert_eq!(listed, [("S-1".into(), 10), ("S-10".into(), 1)]);
        assert_eq!(ns.list_latest(None).unwrap().len(), 2);
        assert!(ns.list_latest(Some("FR")).unwrap().is_empty());
        assert_eq!(ns.counts().unwrap()["FR-SBDU"], 4);
        assert_eq!(ns.cursor(&from).unwrap(), 4);
        // The same bytes again are duplicates; other bytes under a stored
        // version are a conflict, and change nothing.
        let again = ns.writer().apply_received(&from, &incoming[..1]).unwrap();
        assert!(matches!(again[0], Ok(Applied::Duplicate)));
        let (mut other, notice) = received("S-1", 2, 2);
        other.signature = vec![0xee; 64];
        other.notice.push(0);
        let conflict = ns
            .writer()
            .apply_received(
                &from,
                &[Incoming {
                    seq: 2,
                    prev_seq: 1,
                    envelope: &other,
                    notice: &notice,
                }],
            )
            .unwrap();
        assert!(matches!(
            conflict[0],
            Err(NoticeStoreError::Conflict { .. })
        ));
        assert_eq!(ns.counts().unwrap()["FR-SBDU"], 4);
    }
}
