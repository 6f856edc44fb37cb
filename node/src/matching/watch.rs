//! Continuous screening: a watch list of our parties (pending applications,
//! investigation subjects) whose OPRF outputs at each peer we keep, so that
//! every index delta a peer sends is checked locally and a new denial or
//! investigation anywhere raises an alert with no new query.
//!
//! [`WatchStore`] is the list and the outputs; [`Watcher`] evaluates new
//! entries at the peers, checks the rows each index delta adds, and raises
//! alerts through `alerts`. An investigation subject that matches a peer's
//! investigation queues a deconfliction hit (`matching::deconflict`).
//!
//! Keys (tree `watch`, which `alerts` and `deconflict` share under their
//! own tags):
//!
//! ```text
//! w id:be64                         -> WatchEntry
//! n                                 -> last id:be64
//! y peer 0 epoch:be32 tag:16        -> WatchKeyRecords (our outputs for that tag)
//! ```
//!
//! Log lines and alerts name watch ids, peers and serials, never the party.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use prost::Message;
use tessera_proto::v1::{
    Alert, DeconflictHitRequest, Match, PeerProblem, WatchEntry, WatchKeyRecord, WatchKeyRecords,
};

use super::deconflict::HitQueue;
use super::labels;
use super::replica::{PeerReplica, Replicas};
use super::screen::{ScreenError, add_match, evaluate_at, problem};
use crate::alerts::{AlertKind, AlertSink};
use crate::exchange::client::PeerClient;
use crate::identity::AgencyId;
use crate::notice::json::party_from_wire;
use crate::party;
use crate::peers::now_ms;
use crate::privacy::{self, IndexEntry, Label, OprfOutput};
use crate::store::keys::{Key, Tree};
use crate::store::{Store, StoreError};
use crate::wake::Wakers;

const TREE: &str = "watch";
const ENTRY: &str = "watch entry";
const COUNTER: &str = "watch entry counter";
const OUTPUTS: &str = "watch outputs";

/// Why an entry is watched. The wire form (`WatchEntry.purpose`) is
/// [`WatchPurpose::as_str`]; an empty one is `watch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WatchPurpose {
    /// A party of a pending application: alert on any peer's matching notice.
    #[default]
    Watch,
    /// An investigation subject: also matched against the peers' own
    /// investigation subjects, for deconfliction.
    Investigation,
}

impl WatchPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Watch => "watch",
            Self::Investigation => "investigation",
        }
    }

    /// The alert a match of an entry with this purpose raises.
    fn alert_kind(self) -> AlertKind {
        match self {
            Self::Watch => AlertKind::Watch,
            Self::Investigation => AlertKind::Investigation,
        }
    }
}

impl fmt::Display for WatchPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WatchPurpose {
    type Err = WatchError;
    fn from_str(s: &str) -> Result<Self, WatchError> {
        match s {
            "" | "watch" => Ok(Self::Watch),
            "investigation" => Ok(Self::Investigation),
            _ => Err(WatchError::Invalid("purpose: watch or investigation")),
        }
    }
}

/// Watch-list errors.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("no watch entry {0}")]
    NotFound(u64),
    #[error("no index received from this peer yet")]
    NoReplica,
    #[error(transparent)]
    Screen(#[from] ScreenError),
}

impl From<WatchError> for tonic::Status {
    fn from(e: WatchError) -> Self {
        match e {
            WatchError::Store(e) => e.into(),
            WatchError::Invalid(_) => Self::invalid_argument(e.to_string()),
            WatchError::NotFound(_) => Self::not_found(e.to_string()),
            WatchError::NoReplica | WatchError::Screen(_) => Self::unavailable(e.to_string()),
        }
    }
}

fn entry_key(id: u64) -> Key {
    Key::tag(b'w').u64(id)
}

fn outputs_key(peer: &AgencyId, epoch: u32, tag: &[u8]) -> Key {
    Key::tag(b'y').field(peer.as_str()).u32(epoch).bytes(tag)
}

/// The watch list and our stored outputs.
pub struct WatchStore {
    tree: Tree,
    lock: Mutex<()>,
}

impl fmt::Debug for WatchStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStore").finish_non_exhaustive()
    }
}

impl WatchStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: Tree::open(store, TREE)?,
            lock: Mutex::new(()),
        })
    }

    /// Stores new entries and returns them with their ids.
    pub fn add(&self, entries: Vec<WatchEntry>) -> Result<Vec<WatchEntry>, StoreError> {
        let mut out = Vec::with_capacity(entries.len());
        for mut e in entries {
            e.id = self.tree.next(Key::name(b"n"), COUNTER)?;
            e.added_at_ms = now_ms();
            self.tree
                .insert(entry_key(e.id), e.encode_to_vec(), ENTRY)?;
            out.push(e);
        }
        Ok(out)
    }

    pub fn get(&self, id: u64) -> Result<Option<WatchEntry>, StoreError> {
        self.tree.message(entry_key(id), ENTRY)
    }

    pub fn list(&self) -> Result<Vec<WatchEntry>, StoreError> {
        Ok(self
            .tree
            .messages([b'w'], ENTRY)?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    /// Removes an entry; its stored outputs stop matching at once.
    pub fn remove(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.tree.remove(entry_key(id), ENTRY)?.is_some())
    }

    /// Adds our outputs for `tag` at `peer`'s key `epoch` (each record once).
    fn add_records(
        &self,
        peer: &AgencyId,
        epoch: u32,
        tag: &[u8],
        records: Vec<WatchKeyRecord>,
    ) -> Result<(), StoreError> {
        let _one = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let k = outputs_key(peer, epoch, tag);
        let mut all: WatchKeyRecords = self.tree.message(&k, OUTPUTS)?.unwrap_or_default();
        for r in records {
            if !all
                .records
                .iter()
                .any(|o| o.watch_id == r.watch_id && o.y == r.y)
            {
                all.records.push(r);
            }
        }
        self.tree.insert(k, all.encode_to_vec(), OUTPUTS)?;
        Ok(())
    }

    /// Our outputs for `tag` at `peer`'s key `epoch`.
    fn records(
        &self,
        peer: &AgencyId,
        epoch: u32,
        tag: &[u8],
    ) -> Result<Vec<WatchKeyRecord>, StoreError> {
        Ok(self
            .tree
            .message::<WatchKeyRecords>(outputs_key(peer, epoch, tag), OUTPUTS)?
            .map(|r| r.records)
            .unwrap_or_default())
    }
}

/// Match keys of watch entries, with the (entry, kind, strength) each comes from.
fn keys_of(entries: &[WatchEntry]) -> (Vec<String>, Vec<(u64, String, String)>) {
    let mut keys = Vec::new();
    let mut meta = Vec::new();
    for e in entries {
        let Some(p) = &e.party else { continue };
        let purpose: WatchPurpose = e.purpose.parse().unwrap_or_default();
        for k in party::exact_keys(&party_from_wire(p), party::Side::Query) {
            let meta_row = (
                e.id,
                k.kind.as_str().to_owned(),
                k.strength.as_str().to_owned(),
            );
            if purpose == WatchPurpose::Investigation {
                // Also against the peers' own investigation subjects.
                keys.push(format!("{}{}", labels::DECONFLICT_PREFIX, k.value));
                meta.push(meta_row.clone());
            }
            keys.push(k.value);
            meta.push(meta_row);
        }
    }
    (keys, meta)
}

/// A watch record's output that opened a row.
struct Hit {
    watch_id: u64,
    label: Label,
    entry: IndexEntry,
}

/// Opens `entry` with each record's output; a label that opens is a hit.
fn opened(records: &[WatchKeyRecord], entry: &IndexEntry, out: &mut Vec<Hit>) {
    for r in records {
        let Ok(y) = <OprfOutput>::try_from(r.y.as_slice()) else {
            continue;
        };
        if let Ok(label) = entry.open(&y) {
            out.push(Hit {
                watch_id: r.watch_id,
                label,
                entry: entry.clone(),
            });
        }
    }
}

/// The watch-list worker: evaluates entries at the peers and raises an
/// alert for each of their rows that one of our outputs opens.
#[derive(Debug)]
pub struct Watcher {
    pub watch: Arc<WatchStore>,
    pub replicas: Arc<Replicas>,
    pub client: Arc<dyn PeerClient>,
    pub alerts: AlertSink,
    pub hits: Arc<HitQueue>,
    pub wakers: Wakers,
    pub store: Store,
    pub peers: Vec<AgencyId>,
}

impl Watcher {
    pub fn store(&self) -> &WatchStore {
        &self.watch
    }

    /// Evaluates `entries` at `peer`, stores the outputs, and alerts on rows
    /// already in our replica. Returns how many alerts were raised.
    pub async fn evaluate_entries(
        &self,
        peer: &AgencyId,
        entries: &[WatchEntry],
    ) -> Result<u32, WatchError> {
        let Some(replica) = self.replicas.get(peer) else {
            return Err(WatchError::NoReplica);
        };
        let (keys, meta) = keys_of(entries);
        if keys.is_empty() {
            return Ok(0);
        }
        // Rows the replica lacks yet are checked as they arrive (`check_new_rows`).
        let ys = evaluate_at(self.client.as_ref(), peer, &replica, &keys)
            .await?
            .outputs;
        let mut by_tag: BTreeMap<privacy::Tag, Vec<WatchKeyRecord>> = BTreeMap::new();
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
        let mut hits = Vec::new();
        for (tag, records) in by_tag {
            self.watch
                .add_records(peer, replica.epoch, &tag, records.clone())?;
            for entry in replica.lookup.get(&tag) {
                opened(&records, &entry.to_entry(), &mut hits);
            }
        }
        let raised = self.raise_all(peer, hits)?;
        self.store.flush().await?;
        Ok(raised)
    }

    /// Adds entries to the watch list and evaluates them at every peer.
    /// Returns their ids, the alerts raised, and the peers that could not
    /// evaluate them (they are evaluated again after those peers' next
    /// key rotation; their new rows are checked as they come).
    pub async fn add(
        &self,
        entries: Vec<WatchEntry>,
    ) -> Result<(Vec<u64>, u32, Vec<PeerProblem>), WatchError> {
        let entries = self.watch.add(entries)?;
        self.store.flush().await?;
        let ids = entries.iter().map(|e| e.id).collect();
        let mut alerts = 0;
        let mut problems = Vec::new();
        for peer in &self.peers {
            match self.evaluate_entries(peer, &entries).await {
                Ok(n) => alerts += n,
                Err(WatchError::Store(e)) => return Err(e.into()),
                Err(reason) => problems.push(problem(peer, reason.to_string())),
            }
        }
        Ok((ids, alerts, problems))
    }

    /// Checks rows a peer just added against our stored outputs. After a key
    /// rotation (`reset`), the whole watch list is evaluated again at that peer.
    pub async fn check_new_rows(
        &self,
        peer: &AgencyId,
        replica: &PeerReplica,
        adds: &[IndexEntry],
        reset: bool,
    ) {
        if let Err(error) = self.check(peer, replica, adds, reset).await {
            tracing::warn!(peer = %peer, %error, "new index rows not checked against the watch list");
        }
    }

    async fn check(
        &self,
        peer: &AgencyId,
        replica: &PeerReplica,
        adds: &[IndexEntry],
        reset: bool,
    ) -> Result<(), WatchError> {
        if reset {
            let entries = self.watch.list()?;
            if !entries.is_empty() {
                self.evaluate_entries(peer, &entries).await?;
            }
            return Ok(());
        }
        let mut hits = Vec::new();
        for entry in adds {
            let records = self.watch.records(peer, replica.epoch, &entry.tag)?;
            if !records.is_empty() {
                opened(&records, entry, &mut hits);
            }
        }
        self.raise_all(peer, hits)?;
        Ok(())
    }

    /// Raises one alert per watch entry and notice for `hits`, with what all of that
    /// notice's rows say together: its strongest key and every key kind that matched (a
    /// strong match never alerts as weak because a weak row was opened first).
    fn raise_all(&self, peer: &AgencyId, hits: Vec<Hit>) -> Result<u32, WatchError> {
        type Group = (Label, IndexEntry, BTreeMap<(String, String, String), Match>);
        let mut groups: BTreeMap<(u64, String, String), Group> = BTreeMap::new();
        for hit in hits {
            let key = (
                hit.watch_id,
                hit.label.origin.clone(),
                hit.label.serial.clone(),
            );
            let group = groups
                .entry(key)
                .or_insert_with(|| (hit.label.clone(), hit.entry.clone(), BTreeMap::new()));
            add_match(&mut group.2, peer, &hit.label);
        }
        let mut raised = 0;
        for ((watch_id, _, _), (label, entry, merged)) in groups {
            // An entry removed since: its outputs no longer match.
            let Some(watched) = self.watch.get(watch_id)? else {
                continue;
            };
            let Some(m) = merged.into_values().next() else {
                continue;
            };
            if self.raise(peer, &watched, &label, m, &entry)? {
                raised += 1;
            }
        }
        Ok(raised)
    }

    fn raise(
        &self,
        peer: &AgencyId,
        watched: &WatchEntry,
        label: &Label,
        m: Match,
        entry: &IndexEntry,
    ) -> Result<bool, WatchError> {
        let purpose: WatchPurpose = watched.purpose.parse().unwrap_or_default();
        let deconflict = purpose == WatchPurpose::Investigation && labels::is_investigation(label);
        let kind = if deconflict {
            AlertKind::Deconfliction
        } else {
            purpose.alert_kind()
        };
        let alert = Alert {
            watch_id: watched.id,
            reference: watched.reference.clone(),
            r#match: Some(m),
            kind: kind.as_str().to_owned(),
            ..Alert::default()
        };
        let Some(a) = self.alerts.matched(peer, alert)? else {
            return Ok(false);
        };
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
        if deconflict {
            // The peer's unit gets our pointer as we got theirs: queued
            // durably, delivered and retried by `deconflict::HitDelivery`.
            let request = DeconflictHitRequest {
                tag: entry.tag.to_vec(),
                contact: watched.contact.clone(),
            };
            self.hits.queue(peer, &request)?;
            self.wakers.deconflict(peer);
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
