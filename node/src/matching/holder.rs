//! The holder side: for each peer it serves, the labelled index of the
//! notices that peer may see, kept as a log of deltas the peer replicates.
//!
//! Tree `holder_index`:
//!
//! ```text
//! d peer 0 pos:be64        -> IndexDelta (what the peer pulls)
//! q peer                   -> last pos:be64
//! r peer 0 serial          -> tag||nonce of each live row of that notice
//! i                        -> own feed seq indexed so far:be64
//! ```
//!
//! The indexer follows this node's own feed: every new version of a notice
//! removes the rows of the previous one and adds rows for the new one if it
//! is in force and the peer is among its recipients. Deltas and the cursor
//! are written in one batch, so a crash never loses or doubles a change.
//! Row building (one OPRF evaluation per key) runs on all cores.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tessera_proto::v1::{IndexDelta, Notice, StoredNotice};
use tokio_util::sync::CancellationToken;

use super::labels;
use crate::context::Context;
use crate::identity::AgencyId;
use crate::privacy::{self, IndexEntry, OprfKey};
use crate::store::{Store, StoreError};

const TREE: &str = "holder_index";
/// Own feed entries indexed per batch.
const CHUNK: usize = 256;
const ROW_ID: usize = privacy::TAG_LEN + privacy::NONCE_LEN;

/// Holder-side index errors.
#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("building index rows: {0}")]
    Privacy(#[from] privacy::PrivacyError),
    #[error("{0} is not a configured peer")]
    UnknownPeer(String),
    #[error(transparent)]
    Notices(#[from] crate::notice::store::NoticeStoreError),
}

fn sled_err(op: &'static str) -> impl FnOnce(sled::Error) -> HolderError {
    move |source| HolderError::Store(StoreError::Sled { op, source })
}

fn corrupt() -> HolderError {
    HolderError::Store(StoreError::Corrupt { tree: TREE })
}

fn pkey(tag: u8, peer: &AgencyId, rest: &[u8]) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(peer.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

/// Typed access to the holder's index log.
pub struct HolderIndex {
    tree: sled::Tree,
    lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for HolderIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HolderIndex").finish_non_exhaustive()
    }
}

fn be64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

impl HolderIndex {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: store.tree(TREE)?,
            lock: std::sync::Mutex::new(()),
        })
    }

    fn u64_at(&self, k: &[u8]) -> Result<u64, HolderError> {
        match self
            .tree
            .get(k)
            .map_err(sled_err("reading the index log"))?
        {
            Some(v) => be64(&v).ok_or_else(corrupt),
            None => Ok(0),
        }
    }

    /// Own feed position indexed so far.
    pub fn indexed_through(&self) -> Result<u64, HolderError> {
        self.u64_at(b"i")
    }

    /// Deltas for `peer` after `after`, in order.
    pub fn deltas_after(
        &self,
        peer: &AgencyId,
        after: u64,
    ) -> impl Iterator<Item = Result<IndexDelta, HolderError>> + '_ {
        let start = pkey(b'd', peer, &(after.saturating_add(1)).to_be_bytes());
        let prefix = pkey(b'd', peer, &[]);
        self.tree
            .range(start..)
            .take_while(move |kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .map(|kv| {
                let (_, v) = kv.map_err(sled_err("reading the index log"))?;
                IndexDelta::decode(v.as_ref()).map_err(|_| corrupt())
            })
    }

    /// The newest delta position for `peer`.
    pub fn last_pos(&self, peer: &AgencyId) -> u64 {
        self.u64_at(&pkey(b'q', peer, &[])).unwrap_or(0)
    }

    /// The serial of our notice whose live row for `peer` has `tag`.
    pub fn serial_for_tag(&self, peer: &AgencyId, tag: &[u8]) -> Option<String> {
        let prefix = pkey(b'r', peer, &[]);
        self.tree
            .scan_prefix(&prefix)
            .filter_map(Result::ok)
            .find_map(|(k, v)| {
                v.chunks_exact(ROW_ID)
                    .any(|id| &id[..privacy::TAG_LEN] == tag)
                    .then(|| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            })
    }

    /// Rows currently live for `peer` (for overlap counting and tests).
    pub fn live_rows(&self, peer: &AgencyId) -> usize {
        self.tree
            .scan_prefix(pkey(b'r', peer, &[]))
            .filter_map(Result::ok)
            .map(|(_, v)| v.len() / ROW_ID)
            .sum()
    }
}

/// One notice version to index for one peer: rows to add, rows to drop.
struct Change {
    serial: String,
    adds: Vec<IndexEntry>,
}

/// Indexes own feed entries after the cursor, up to one chunk. Returns how
/// many feed entries it consumed.
pub fn index_pending(ctx: &Context) -> Result<usize, HolderError> {
    let holder = &ctx.holder;
    let _guard = holder
        .lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let after = holder.indexed_through()?;
    let mut chunk: Vec<(u64, StoredNotice, Notice)> = Vec::new();
    for entry in ctx.notices.feed_after(after).take(CHUNK) {
        let (seq, stored) = entry?;
        let Some(env) = &stored.envelope else {
            continue;
        };
        let notice = Notice::decode(env.notice.as_slice()).map_err(|_| corrupt())?;
        chunk.push((seq, stored, notice));
    }
    let Some(last) = chunk.last().map(|(seq, _, _)| *seq) else {
        return Ok(0);
    };
    let mut batch = sled::Batch::default();
    for peer in ctx.peers.agencies() {
        let key = ctx
            .keys
            .get(&peer)
            .ok_or_else(|| HolderError::UnknownPeer(peer.to_string()))?;
        let level = ctx.config.disclosure_for(&peer).to_owned();
        // The newest version in this chunk decides a serial's rows.
        let mut newest: BTreeMap<&str, &(u64, StoredNotice, Notice)> = BTreeMap::new();
        for item in &chunk {
            newest.insert(item.2.serial.as_str(), item);
        }
        let mut rows: Vec<(String, privacy::Label)> = Vec::new();
        let mut owners: Vec<usize> = Vec::new();
        let mut changes: Vec<Change> = Vec::new();
        for (serial, (_, stored, notice)) in &newest {
            let new_rows = labels::rows_for_peer(
                notice,
                &stored.recipients,
                peer.as_str(),
                &level,
                &ctx.config.privacy.contact,
            );
            owners.extend(std::iter::repeat_n(changes.len(), new_rows.len()));
            rows.extend(new_rows);
            changes.push(Change {
                serial: (*serial).to_owned(),
                adds: Vec::new(),
            });
        }
        for (entry, owner) in privacy::build(&key, &rows)?.into_iter().zip(owners) {
            changes[owner].adds.push(entry);
        }
        let delta = delta_for(holder, &peer, &key, changes, &mut batch)?;
        if let Some(delta) = delta {
            let pos = holder.u64_at(&pkey(b'q', &peer, &[]))? + 1;
            let delta = IndexDelta { pos, ..delta };
            batch.insert(pkey(b'd', &peer, &pos.to_be_bytes()), delta.encode_to_vec());
            batch.insert(pkey(b'q', &peer, &[]), pos.to_be_bytes().as_slice());
        }
    }
    batch.insert(b"i".as_slice(), last.to_be_bytes().as_slice());
    crate::store::apply_batch(&holder.tree, batch).map_err(sled_err("writing index deltas"))?;
    Ok(chunk.len())
}

/// Turns per-serial changes into one delta, updating the live-row records.
fn delta_for(
    holder: &HolderIndex,
    peer: &AgencyId,
    key: &OprfKey,
    changes: Vec<Change>,
    batch: &mut sled::Batch,
) -> Result<Option<IndexDelta>, HolderError> {
    let mut delta = IndexDelta {
        epoch: key.epoch(),
        public_key: key.public_key_bytes().to_vec(),
        ..IndexDelta::default()
    };
    for change in changes {
        let rkey = pkey(b'r', peer, change.serial.as_bytes());
        if let Some(old) = holder
            .tree
            .get(&rkey)
            .map_err(sled_err("reading live rows"))?
        {
            delta
                .removes
                .extend(old.chunks_exact(ROW_ID).map(<[u8]>::to_vec));
        }
        if change.adds.is_empty() {
            batch.remove(rkey);
        } else {
            let mut ids = Vec::with_capacity(change.adds.len() * ROW_ID);
            for e in &change.adds {
                ids.extend_from_slice(&e.tag);
                ids.extend_from_slice(&e.nonce);
            }
            batch.insert(rkey, ids);
            delta
                .adds
                .extend(change.adds.iter().map(IndexEntry::to_bytes));
        }
    }
    Ok((!delta.adds.is_empty() || !delta.removes.is_empty()).then_some(delta))
}

/// After a key rotation: a reset delta carrying every live row under the new key.
pub fn rebuild_for(ctx: &Context, peer: &AgencyId) -> Result<(), HolderError> {
    let holder = &ctx.holder;
    let _guard = holder
        .lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = ctx
        .keys
        .get(peer)
        .ok_or_else(|| HolderError::UnknownPeer(peer.to_string()))?;
    let level = ctx.config.disclosure_for(peer).to_owned();
    let own = ctx.notices.list_latest(Some(ctx.agency.as_str()))?;
    let mut batch = sled::Batch::default();
    for kv in holder.tree.scan_prefix(pkey(b'r', peer, &[])) {
        let (k, _) = kv.map_err(sled_err("reading live rows"))?;
        batch.remove(k);
    }
    let mut changes = Vec::new();
    let mut rows = Vec::new();
    let mut owners = Vec::new();
    for stored in &own {
        let Some(env) = &stored.envelope else {
            continue;
        };
        let notice = Notice::decode(env.notice.as_slice()).map_err(|_| corrupt())?;
        let new_rows = labels::rows_for_peer(
            &notice,
            &stored.recipients,
            peer.as_str(),
            &level,
            &ctx.config.privacy.contact,
        );
        if new_rows.is_empty() {
            continue;
        }
        owners.extend(std::iter::repeat_n(changes.len(), new_rows.len()));
        rows.extend(new_rows);
        changes.push(Change {
            serial: notice.serial.clone(),
            adds: Vec::new(),
        });
    }
    for (entry, owner) in privacy::build(&key, &rows)?.into_iter().zip(owners) {
        changes[owner].adds.push(entry);
    }
    let mut delta = IndexDelta {
        epoch: key.epoch(),
        public_key: key.public_key_bytes().to_vec(),
        reset: true,
        ..IndexDelta::default()
    };
    for change in changes {
        if change.adds.is_empty() {
            continue;
        }
        let mut ids = Vec::with_capacity(change.adds.len() * ROW_ID);
        for e in &change.adds {
            ids.extend_from_slice(&e.tag);
            ids.extend_from_slice(&e.nonce);
        }
        batch.insert(pkey(b'r', peer, change.serial.as_bytes()), ids);
        delta
            .adds
            .extend(change.adds.iter().map(IndexEntry::to_bytes));
    }
    let pos = holder.u64_at(&pkey(b'q', peer, &[]))? + 1;
    delta.pos = pos;
    batch.insert(pkey(b'd', peer, &pos.to_be_bytes()), delta.encode_to_vec());
    batch.insert(pkey(b'q', peer, &[]), pos.to_be_bytes().as_slice());
    crate::store::apply_batch(&holder.tree, batch).map_err(sled_err("writing index deltas"))
}

/// Gives every peer that has no index yet an empty one (epoch and public
/// key), so that "nothing shared with you" is an answer, not an absence.
pub fn ensure_initial(ctx: &Context) -> Result<(), HolderError> {
    let holder = &ctx.holder;
    let _guard = holder
        .lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut batch = sled::Batch::default();
    let mut any = false;
    for peer in ctx.peers.agencies() {
        if holder.last_pos(&peer) > 0 {
            continue;
        }
        let key = ctx
            .keys
            .get(&peer)
            .ok_or_else(|| HolderError::UnknownPeer(peer.to_string()))?;
        let delta = IndexDelta {
            pos: 1,
            epoch: key.epoch(),
            public_key: key.public_key_bytes().to_vec(),
            reset: true,
            ..IndexDelta::default()
        };
        batch.insert(
            pkey(b'd', &peer, &1u64.to_be_bytes()),
            delta.encode_to_vec(),
        );
        batch.insert(pkey(b'q', &peer, &[]), 1u64.to_be_bytes().as_slice());
        any = true;
    }
    if any {
        crate::store::apply_batch(&holder.tree, batch)
            .map_err(sled_err("writing initial index deltas"))?;
    }
    Ok(())
}

/// The indexer worker: indexes new own notices whenever woken, and every
/// few seconds as a safety net.
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    if let Err(error) = ensure_initial(&ctx) {
        tracing::error!(%error, "cannot write the initial indexes");
    }
    loop {
        loop {
            let c = ctx.clone();
            match tokio::task::spawn_blocking(move || index_pending(&c)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => {
                    tracing::debug!(notices = n, "indexed");
                    if let Err(error) = ctx.store.flush().await {
                        tracing::error!(%error, "cannot flush the index");
                    }
                    // The push workers tell each peer that its index moved.
                    ctx.wake_push(&ctx.peers.agencies());
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
            () = ctx.indexer_wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
