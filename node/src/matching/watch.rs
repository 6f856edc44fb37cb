//! Continuous screening and deconfliction: a watch list of our parties
//! (pending applications, investigation subjects) whose OPRF outputs at each
//! peer we keep, so that every index delta a peer sends is checked locally
//! and a new denial or investigation anywhere raises an alert with no new
//! query.
//!
//! Tree `watch`:
//!
//! ```text
//! w id:be64                         -> WatchEntry
//! n                                 -> last id:be64
//! y peer 0 epoch:be32 tag:16        -> WatchKeyRecords (our outputs for that tag)
//! a seq:be64                        -> Alert
//! m                                 -> last alert seq:be64
//! s watch:be64 peer 0 origin 0 serial -> () (one alert per watch entry and notice)
//! r key                             -> () (one operator reminder per key)
//! h peer 0 seq:be64                 -> DeconflictHitRequest (a hit to tell the peer, until delivered)
//! hseq                              -> last hit seq:be64
//! ```
//!
//! Log lines and alerts name watch ids, peers and serials, never the party.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::{
    Alert, DeconflictHitRequest, PeerProblem, WatchEntry, WatchKeyRecord, WatchKeyRecords,
};
use tokio_util::sync::CancellationToken;

use super::replica::PeerReplica;
use super::screen::{evaluate_at, problem, to_match};
use crate::context::Context;
use crate::identity::AgencyId;
use crate::notice::json::party_from_wire;
use crate::party;
use crate::peers::now_ms;
use crate::privacy::{self, IndexEntry, Label, OprfOutput};
use crate::store::{Store, StoreError};

const TREE: &str = "watch";

/// Typed access to the watch tree.
pub struct WatchStore {
    tree: sled::Tree,
    lock: std::sync::Mutex<()>,
}

impl std::fmt::Debug for WatchStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStore").finish_non_exhaustive()
    }
}

fn be64(v: &[u8]) -> u64 {
    v.get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn ykey(peer: &AgencyId, epoch: u32, tag: &[u8]) -> Vec<u8> {
    let mut k = vec![b'y'];
    k.extend_from_slice(peer.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(&epoch.to_be_bytes());
    k.extend_from_slice(tag);
    k
}

impl WatchStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: store.tree(TREE)?,
            lock: std::sync::Mutex::new(()),
        })
    }

    fn next(&self, counter: &[u8]) -> Result<u64, sled::Error> {
        let v = self.tree.update_and_fetch(counter, |old| {
            Some((old.map_or(0, be64) + 1).to_be_bytes().to_vec())
        })?;
        Ok(v.map_or(1, |v| be64(&v)))
    }

    /// Stores new entries and returns their ids.
    pub fn add(&self, entries: Vec<WatchEntry>) -> Result<Vec<WatchEntry>, sled::Error> {
        let mut out = Vec::with_capacity(entries.len());
        for mut e in entries {
            e.id = self.next(b"n")?;
            e.added_at_ms = now_ms();
            let mut k = vec![b'w'];
            k.extend_from_slice(&e.id.to_be_bytes());
            self.tree.insert(k, e.encode_to_vec())?;
            out.push(e);
        }
        Ok(out)
    }

    pub fn get(&self, id: u64) -> Option<WatchEntry> {
        let mut k = vec![b'w'];
        k.extend_from_slice(&id.to_be_bytes());
        self.tree
            .get(k)
            .ok()
            .flatten()
            .and_then(|v| WatchEntry::decode(v.as_ref()).ok())
    }

    pub fn list(&self) -> Vec<WatchEntry> {
        self.tree
            .scan_prefix([b'w'])
            .filter_map(Result::ok)
            .filter_map(|(_, v)| WatchEntry::decode(v.as_ref()).ok())
            .collect()
    }

    /// Removes an entry; its stored outputs stop matching at once.
    pub fn remove(&self, id: u64) -> Result<bool, sled::Error> {
        let mut k = vec![b'w'];
        k.extend_from_slice(&id.to_be_bytes());
        Ok(self.tree.remove(k)?.is_some())
    }

    fn add_records(
        &self,
        peer: &AgencyId,
        epoch: u32,
        tag: &[u8],
        records: Vec<WatchKeyRecord>,
    ) -> Result<(), sled::Error> {
        let _g = self
            .lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let k = ykey(peer, epoch, tag);
        let mut all = self
            .tree
            .get(&k)?
            .and_then(|v| WatchKeyRecords::decode(v.as_ref()).ok())
            .unwrap_or_default();
        for r in records {
            if !all
                .records
                .iter()
                .any(|o| o.watch_id == r.watch_id && o.y == r.y)
            {
                all.records.push(r);
            }
        }
        self.tree.insert(k, all.encode_to_vec())?;
        Ok(())
    }

    fn records(&self, peer: &AgencyId, epoch: u32, tag: &[u8]) -> Vec<WatchKeyRecord> {
        self.tree
            .get(ykey(peer, epoch, tag))
            .ok()
            .flatten()
            .and_then(|v| WatchKeyRecords::decode(v.as_ref()).ok())
            .map(|r| r.records)
            .unwrap_or_default()
    }

    /// Stores an alert unless the same watch entry already alerted for the
    /// same notice of the same peer. Returns it when new.
    fn alert(&self, alert: Alert) -> Result<Option<Alert>, sled::Error> {
        let m = alert.r#match.clone().unwrap_or_default();
        let mut dedupe = vec![b's'];
        dedupe.extend_from_slice(&alert.watch_id.to_be_bytes());
        for part in [&m.peer, &m.origin, &m.serial] {
            dedupe.extend_from_slice(part.as_bytes());
            dedupe.push(0);
        }
        self.store_once(dedupe, alert)
    }

    /// Stores `alert` unless `dedupe` was seen before.
    fn store_once(&self, dedupe: Vec<u8>, mut alert: Alert) -> Result<Option<Alert>, sled::Error> {
        if self.tree.insert(dedupe, &[])?.is_some() {
            return Ok(None);
        }
        alert.seq = self.next(b"m")?;
        alert.at_ms = now_ms();
        let mut k = vec![b'a'];
        k.extend_from_slice(&alert.seq.to_be_bytes());
        self.tree.insert(k, alert.encode_to_vec())?;
        Ok(Some(alert))
    }

    /// Alerts after `after`, oldest first.
    pub fn alerts(&self, after: u64) -> Vec<Alert> {
        let mut start = vec![b'a'];
        start.extend_from_slice(&(after.saturating_add(1)).to_be_bytes());
        self.tree
            .range(start..)
            .filter_map(Result::ok)
            .take_while(|(k, _)| k.first() == Some(&b'a'))
            .filter_map(|(_, v)| Alert::decode(v.as_ref()).ok())
            .collect()
    }

    /// Stores an operator alert once per `key` (a reminder raised again on
    /// the next check is not stored twice). Returns it when new.
    pub fn alert_once(&self, alert: Alert, key: &str) -> Result<Option<Alert>, sled::Error> {
        let mut dedupe = b"r".to_vec();
        dedupe.extend_from_slice(key.as_bytes());
        self.store_once(dedupe, alert)
    }

    /// Queues a deconfliction hit for delivery to `peer`.
    pub fn queue_hit(
        &self,
        peer: &AgencyId,
        request: &DeconflictHitRequest,
    ) -> Result<(), sled::Error> {
        let mut k = hit_prefix(peer);
        k.extend_from_slice(&self.next(b"hseq")?.to_be_bytes());
        self.tree.insert(k, request.encode_to_vec())?;
        Ok(())
    }

    /// Hits waiting for delivery to `peer`, oldest first, with their keys.
    pub fn pending_hits(&self, peer: &AgencyId) -> Vec<(sled::IVec, DeconflictHitRequest)> {
        self.tree
            .scan_prefix(hit_prefix(peer))
            .filter_map(Result::ok)
            .filter_map(|(k, v)| {
                DeconflictHitRequest::decode(v.as_ref())
                    .ok()
                    .map(|r| (k, r))
            })
            .collect()
    }

    /// Drops a delivered (or refused) hit.
    pub fn hit_done(&self, key: &[u8]) -> Result<(), sled::Error> {
        self.tree.remove(key).map(|_| ())
    }

    /// Raises a deconfliction alert on our side, from a peer's notice of a hit.
    pub fn deconfliction_alert(&self, alert: Alert) -> Result<Option<Alert>, sled::Error> {
        self.alert(alert)
    }
}

/// Match keys of watch entries, with the entry each comes from.
fn keys_of(entries: &[WatchEntry]) -> (Vec<String>, Vec<(u64, String, String)>) {
    let mut keys = Vec::new();
    let mut meta = Vec::new();
    for e in entries {
        let Some(p) = &e.party else { continue };
        for k in party::match_keys(&party_from_wire(p)) {
            let meta_row = (
                e.id,
                k.kind.as_str().to_owned(),
                k.strength.as_str().to_owned(),
            );
            if e.purpose == "investigation" {
                // Also against the peers' own investigation subjects.
                keys.push(format!("{}{}", super::labels::DECONFLICT_PREFIX, k.value));
                meta.push(meta_row.clone());
            }
            keys.push(k.value);
            meta.push(meta_row);
        }
    }
    (keys, meta)
}

/// Evaluates `entries` at `peer`, stores the outputs, and alerts on rows
/// already in our replica. Returns how many alerts were raised.
pub async fn evaluate_entries(
    ctx: &Context,
    peer: &AgencyId,
    entries: &[WatchEntry],
) -> Result<u32, String> {
    let Some(replica) = ctx.replicas.get(peer) else {
        return Err("no index received from this peer yet".into());
    };
    let (keys, meta) = keys_of(entries);
    if keys.is_empty() {
        return Ok(0);
    }
    let ys = evaluate_at(ctx, peer, &replica, &keys).await?;
    let mut by_tag: std::collections::BTreeMap<privacy::Tag, Vec<WatchKeyRecord>> =
        std::collections::BTreeMap::new();
    for (y, (id, kind, strength)) in ys.iter().zip(meta) {
        by_tag
            .entry(privacy::tag_of(y))
            .or_default()
            .push(WatchKeyRecord {
                watch_id: id,
                y: y.to_vec(),
                key_kind: kind,
                strength,
            });
    }
    let mut raised = 0;
    for (tag, records) in by_tag {
        ctx.watch
            .add_records(peer, replica.epoch, &tag, records.clone())
            .map_err(|e| e.to_string())?;
        for entry in replica.lookup.get(&tag) {
            raised += alert_on(ctx, peer, &records, &entry.to_entry());
        }
    }
    ctx.store.flush().await.map_err(|e| e.to_string())?;
    Ok(raised)
}

/// Adds entries to the watch list and evaluates them at every peer.
pub async fn add(
    ctx: Arc<Context>,
    entries: Vec<WatchEntry>,
) -> Result<(Vec<u64>, u32, Vec<PeerProblem>), String> {
    let entries = ctx.watch.add(entries).map_err(|e| e.to_string())?;
    ctx.store.flush().await.map_err(|e| e.to_string())?;
    let ids = entries.iter().map(|e| e.id).collect();
    let mut alerts = 0;
    let mut problems = Vec::new();
    for peer in ctx.peers.agencies() {
        match evaluate_entries(&ctx, &peer, &entries).await {
            Ok(n) => alerts += n,
            Err(reason) => problems.push(problem(&peer, reason)),
        }
    }
    Ok((ids, alerts, problems))
}

/// Checks rows a peer just added against our stored outputs. After a key
/// rotation (`reset`), the whole watch list is evaluated again at that peer.
pub async fn check_new_rows(
    ctx: &Context,
    peer: &AgencyId,
    replica: &PeerReplica,
    adds: &[IndexEntry],
    reset: bool,
) {
    if reset {
        let entries = ctx.watch.list();
        if !entries.is_empty()
            && let Err(reason) = evaluate_entries(ctx, peer, &entries).await
        {
            tracing::warn!(peer = %peer, reason = %reason, "watch list not re-evaluated after the peer's key rotation");
        }
        return;
    }
    for entry in adds {
        let records = ctx.watch.records(peer, replica.epoch, &entry.tag);
        if !records.is_empty() {
            alert_on(ctx, peer, &records, entry);
        }
    }
}

/// Opens `entry` with each record's output; a label that opens is a hit.
fn alert_on(ctx: &Context, peer: &AgencyId, records: &[WatchKeyRecord], entry: &IndexEntry) -> u32 {
    let mut raised = 0;
    for r in records {
        let Ok(y) = <OprfOutput>::try_from(r.y.as_slice()) else {
            continue;
        };
        let Ok(label) = entry.open(&y) else { continue };
        let Some(watched) = ctx.watch.get(r.watch_id) else {
            continue;
        };
        if raise(ctx, peer, &watched, &label, entry) {
            raised += 1;
        }
    }
    raised
}

fn raise(
    ctx: &Context,
    peer: &AgencyId,
    watched: &WatchEntry,
    label: &Label,
    entry: &IndexEntry,
) -> bool {
    let investigation = watched.purpose == "investigation";
    let deconflict = investigation && label.authority_ref == "investigation-opened";
    let alert = Alert {
        watch_id: watched.id,
        reference: watched.reference.clone(),
        r#match: Some(to_match(peer, label)),
        kind: if deconflict {
            "deconfliction"
        } else {
            watched.purpose.as_str()
        }
        .to_owned(),
        ..Alert::default()
    };
    match ctx.watch.alert(alert) {
        Ok(Some(a)) => {
            tracing::warn!(
                alert = a.seq,
                watch = watched.id,
                peer = %peer,
                origin = %label.origin,
                serial = %label.serial,
                strength = %label.strength,
                kind = %a.kind,
                "watch-list match"
            );
            ctx.audit_alert(peer, &a);
            if deconflict {
                notify_peer(ctx, peer, &entry.tag, &watched.contact);
            }
            true
        }
        Ok(None) => false,
        Err(error) => {
            tracing::error!(%error, "cannot store an alert");
            false
        }
    }
}

fn hit_prefix(peer: &AgencyId) -> Vec<u8> {
    let mut k = vec![b'h'];
    k.extend_from_slice(peer.as_str().as_bytes());
    k.push(0);
    k
}

/// Tells the peer which of its rows matched one of our subjects, with our
/// case contact, so that its unit gets our pointer as we got theirs: queued
/// durably and delivered by [`deliver_hits`], retried until the peer has it.
fn notify_peer(ctx: &Context, peer: &AgencyId, tag: &[u8], contact: &str) {
    let request = DeconflictHitRequest {
        tag: tag.to_vec(),
        contact: contact.to_owned(),
    };
    if let Err(error) = ctx.watch.queue_hit(peer, &request) {
        tracing::error!(%error, "cannot queue a deconfliction hit");
        return;
    }
    if let Some(w) = ctx.wakers.get(peer) {
        w.deconflict.notify_one();
    }
}

/// Delivers queued deconfliction hits to `peer`, retrying with back-off
/// while it is unreachable. A hit the peer refuses for good (its row is
/// gone, or the request is malformed) is dropped with a warning.
pub async fn deliver_hits(ctx: Arc<Context>, peer: AgencyId, stop: CancellationToken) {
    let wake = ctx.wakers(&peer);
    let min = Duration::from_millis(ctx.config.sync.retry_min_ms);
    let max = Duration::from_millis(ctx.config.sync.retry_max_ms);
    let mut backoff = min;
    loop {
        let mut waiting = false;
        for (key, request) in ctx.watch.pending_hits(&peer) {
            let sent = match ctx.peers.channel(&peer, &ctx.tls) {
                Ok(channel) => FederationClient::new(channel)
                    .deconflict_hit(request)
                    .await
                    .map_err(|s| (s.code(), crate::dial::explain(&s))),
                Err(e) => Err((tonic::Code::Unavailable, e)),
            };
            match sent {
                Ok(_) => {}
                Err((tonic::Code::NotFound | tonic::Code::InvalidArgument, reason)) => {
                    tracing::warn!(peer = %peer, %reason, "deconfliction hit refused by the peer; dropped");
                }
                Err((_, reason)) => {
                    tracing::debug!(peer = %peer, %reason, "deconfliction hit not delivered; will retry");
                    waiting = true;
                    break;
                }
            }
            if let Err(error) = ctx.watch.hit_done(&key) {
                tracing::error!(%error, "cannot clear a delivered deconfliction hit");
            }
        }
        let pause = if waiting {
            let p = backoff;
            backoff = (backoff * 2).min(max);
            p
        } else {
            backoff = min;
            max
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
            () = wake.deconflict.notified() => {}
        }
    }
}

/// A peer found one of our investigation subjects (our notice `serial`):
/// alert our unit with the peer's case contact, and nothing else.
pub fn peer_found_ours(
    ctx: &Context,
    peer: &AgencyId,
    serial: &str,
    contact: &str,
) -> Result<(), String> {
    let alert = Alert {
        kind: "deconfliction".into(),
        r#match: Some(tessera_proto::v1::Match {
            peer: peer.to_string(),
            origin: ctx.agency.to_string(),
            serial: serial.to_owned(),
            contact: contact.to_owned(),
            disclosure: "pointer".into(),
            ..Default::default()
        }),
        ..Alert::default()
    };
    if let Some(a) = ctx
        .watch
        .deconfliction_alert(alert)
        .map_err(|e| e.to_string())?
    {
        tracing::warn!(alert = a.seq, peer = %peer, serial = %serial, "deconfliction: a peer investigates the same party");
        ctx.audit_alert(peer, &a);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_hits_wait_per_peer_until_done_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let b: AgencyId = "FR-SBDU".parse().unwrap();
        let c: AgencyId = "US-BIS".parse().unwrap();
        let hit = |n: u8| DeconflictHitRequest {
            tag: vec![n; privacy::TAG_LEN],
            contact: format!("desk {n}"),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            let watch = WatchStore::open(&store).unwrap();
            watch.queue_hit(&b, &hit(1)).unwrap();
            watch.queue_hit(&c, &hit(2)).unwrap();
            watch.queue_hit(&b, &hit(3)).unwrap();
            let pending = watch.pending_hits(&b);
            assert_eq!(
                pending.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
                [hit(1), hit(3)]
            );
            watch.hit_done(&pending[0].0).unwrap();
            store.db().flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let watch = WatchStore::open(&store).unwrap();
        let left: Vec<_> = watch.pending_hits(&b).into_iter().map(|(_, r)| r).collect();
        assert_eq!(left, [hit(3)]);
        assert_eq!(watch.pending_hits(&c).len(), 1);
    }
}
