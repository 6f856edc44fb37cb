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
//! o peer 0 epoch:be32 id:be64        -> WatchKeyRecords (all outputs of an entry)
//! q peer 0 id:be64                   -> WatchMatched (its matches there when last checked)
//! ```
//!
//! Log lines and alerts name watch ids, peers and serials, never the party.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use prost::Message;
use tessera_proto::v1::{
    Alert, DeconflictHitRequest, PeerProblem, WatchEntry, WatchKeyRecord, WatchKeyRecords,
    WatchMatched,
};

use super::deconflict::HitQueue;
use super::findings::{self, Finding, QueryKeys};
use super::labels;
use super::own::OwnIndex;
use super::replica::{PeerReplica, Replicas};
use super::screen::{ScreenError, evaluate_at, finding_match, problem};
use crate::alerts::{AlertKind, AlertSink};
use crate::exchange::client::PeerClient;
use crate::identity::AgencyId;
use crate::notice::json::party_from_wire;
use crate::party::verdict::DEFAULT_THRESHOLD;
use crate::peers::now_ms;
use crate::privacy::{self, IndexEntry, OprfOutput};
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

fn entry_outputs_key(peer: &AgencyId, epoch: u32, id: u64) -> Key {
    Key::tag(b'o').field(peer.as_str()).u32(epoch).u64(id)
}

fn matched_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'q').field(peer.as_str())
}

fn matched_key(peer: &AgencyId, id: u64) -> Key {
    matched_prefix(peer).u64(id)
}

const MATCHED: &str = "watch matches";

/// What a finding discloses, without how it was found: an amended notice changes it.
fn fingerprint(label: &privacy::Label) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let plain = privacy::Label {
        key_kind: String::new(),
        strength: String::new(),
        ..label.clone()
    };
    let bytes = privacy::label_bytes::encode(&plain).unwrap_or_default();
    Sha256::digest(bytes)[..16].to_vec()
}

/// Matches of a watch entry that ended, and came back.
trait Ended {
    /// Records that `m` ended: how many times it has now.
    fn end(&mut self, m: &tessera_proto::v1::Match) -> u32;
    /// `m` is back: how many times it had ended (none if it never did).
    fn back(&self, m: &tessera_proto::v1::Match) -> Option<u32>;
}

impl Ended for WatchMatched {
    fn end(&mut self, m: &tessera_proto::v1::Match) -> u32 {
        let key = format!("{}/{}", m.origin, m.serial);
        match self.ended.iter().position(|e| *e == key) {
            Some(i) if i < self.ended_times.len() => {
                self.ended_times[i] = self.ended_times[i].saturating_add(1);
                self.ended_times[i]
            }
            _ => {
                self.ended.push(key);
                self.ended_times.push(1);
                1
            }
        }
    }

    fn back(&self, m: &tessera_proto::v1::Match) -> Option<u32> {
        let key = format!("{}/{}", m.origin, m.serial);
        let i = self.ended.iter().position(|e| *e == key)?;
        self.ended_times.get(i).copied()
    }
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

    /// All of an entry's outputs at `peer`'s key `epoch`, by key position.
    fn set_outputs(
        &self,
        peer: &AgencyId,
        epoch: u32,
        id: u64,
        records: Vec<WatchKeyRecord>,
    ) -> Result<(), StoreError> {
        let all = WatchKeyRecords { records };
        self.tree.insert(
            entry_outputs_key(peer, epoch, id),
            all.encode_to_vec(),
            OUTPUTS,
        )?;
        Ok(())
    }

    /// [`WatchStore::set_outputs`]'s records as (key position, output).
    fn outputs(
        &self,
        peer: &AgencyId,
        epoch: u32,
        id: u64,
    ) -> Result<Vec<(usize, OprfOutput)>, StoreError> {
        let records = self
            .tree
            .message::<WatchKeyRecords>(entry_outputs_key(peer, epoch, id), OUTPUTS)?
            .map(|r| r.records)
            .unwrap_or_default();
        Ok(records
            .iter()
            .filter_map(|r| Some((r.key as usize, OprfOutput::try_from(r.y.as_slice()).ok()?)))
            .collect())
    }

    /// The notices entry `id` matched at `peer` when last checked.
    fn matched(&self, peer: &AgencyId, id: u64) -> Result<WatchMatched, StoreError> {
        Ok(self
            .tree
            .message::<WatchMatched>(matched_key(peer, id), MATCHED)?
            .unwrap_or_default())
    }

    fn set_matched(&self, peer: &AgencyId, id: u64, m: &WatchMatched) -> Result<(), StoreError> {
        self.tree
            .insert(matched_key(peer, id), m.encode_to_vec(), MATCHED)?;
        Ok(())
    }

    /// Entries that matched something at `peer` when last checked.
    fn with_matches(&self, peer: &AgencyId) -> Result<Vec<u64>, StoreError> {
        let prefix = matched_prefix(peer);
        let mut ids = Vec::new();
        for kv in self.tree.scan(&prefix, MATCHED) {
            let (k, v) = kv?;
            let m: WatchMatched = self.tree.decode(&v, MATCHED)?;
            if m.matches.is_empty() {
                continue;
            }
            let id = k
                .get(prefix.len()..)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| self.tree.corrupt(MATCHED))?;
            ids.push(id);
        }
        Ok(ids)
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

/// The keys of a watch entry: its party's exact keys and fuzzy alternatives, and for an
/// investigation subject the same again in the deconfliction domain.
fn entry_keys(e: &WatchEntry) -> Option<QueryKeys> {
    let party = party_from_wire(e.party.as_ref()?);
    let purpose: WatchPurpose = e.purpose.parse().unwrap_or_default();
    let prefixes: &[&str] = if purpose == WatchPurpose::Investigation {
        &["", labels::DECONFLICT_PREFIX]
    } else {
        &[""]
    };
    Some(QueryKeys::with_prefixes(&[party], prefixes))
}

/// Whether one of `records` opens `entry`: the watch ids it concerns.
fn touched(records: &[WatchKeyRecord], entry: &IndexEntry, out: &mut BTreeSet<u64>) {
    for r in records {
        let Ok(y) = <OprfOutput>::try_from(r.y.as_slice()) else {
            continue;
        };
        if entry.open_record(&y).is_ok() {
            out.insert(r.watch_id);
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
    /// Our own index, watched like a peer's (its rows come through `own::OwnLists`).
    pub own: Option<OwnIndex>,
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
        let keyed: Vec<(&WatchEntry, QueryKeys)> = entries
            .iter()
            .filter_map(|e| entry_keys(e).map(|k| (e, k)))
            .collect();
        let all: Vec<String> = keyed
            .iter()
            .flat_map(|(_, k)| k.values.iter().cloned())
            .collect();
        if all.is_empty() {
            return Ok(0);
        }
        // Rows the replica lacks yet are checked as they arrive (`check_new_rows`).
        let ys = self.outputs_at(peer, &replica, all).await?;
        let mut by_tag: BTreeMap<privacy::Tag, Vec<WatchKeyRecord>> = BTreeMap::new();
        let mut raised = 0;
        let mut rest = ys.as_slice();
        for (entry, keys) in &keyed {
            let (mine, after) = rest.split_at(keys.values.len().min(rest.len()));
            rest = after;
            let outputs: Vec<(usize, OprfOutput)> = mine.iter().copied().enumerate().collect();
            let records: Vec<WatchKeyRecord> = outputs
                .iter()
                .map(|(i, y)| WatchKeyRecord {
                    watch_id: entry.id,
                    y: y.to_vec(),
                    key: *i as u32,
                    ..WatchKeyRecord::default()
                })
                .collect();
            for r in &records {
                if let Ok(y) = <OprfOutput>::try_from(r.y.as_slice()) {
                    by_tag
                        .entry(privacy::tag_of(&y))
                        .or_default()
                        .push(r.clone());
                }
            }
            self.watch
                .set_outputs(peer, replica.epoch, entry.id, records)?;
            raised += self.raise_found(peer, &replica, entry, keys, &outputs)?;
        }
        for (tag, records) in by_tag {
            self.watch.add_records(peer, replica.epoch, &tag, records)?;
        }
        self.store.flush().await?;
        Ok(raised)
    }

    /// [`fingerprint`], and for a notice of our own indexed at summary, the content hash
    /// of its newest version: our own notices are shown whole, so any amendment or
    /// renewal of one is a change (labels of our own written whole before, and pointers,
    /// keep their print, so an upgrade raises nothing).
    fn fingerprint(&self, peer: &AgencyId, label: &privacy::Label) -> Vec<u8> {
        let print = fingerprint(label);
        match self.own.as_ref().filter(|o| &o.agency == peer) {
            Some(own) if label.disclosure.level() == "summary" => {
                use sha2::{Digest, Sha256};
                let mut h = Sha256::new();
                h.update(&print);
                h.update(own.content_hash(&label.serial));
                h.finalize()[..16].to_vec()
            }
            _ => print,
        }
    }

    /// A finding as alerts show it, marked as our own list's when it is.
    fn to_match(&self, peer: &AgencyId, f: &Finding) -> tessera_proto::v1::Match {
        let mut m = finding_match(peer, f);
        if let Some(own) = self.own.as_ref().filter(|o| &o.agency == peer) {
            m.own = true;
            own.show_whole(&mut m);
        }
        m
    }

    /// Our outputs for `all` at `peer` (at our own key for our own lists), in order.
    async fn outputs_at(
        &self,
        peer: &AgencyId,
        replica: &PeerReplica,
        all: Vec<String>,
    ) -> Result<Vec<OprfOutput>, WatchError> {
        let Some(own) = self.own.clone().filter(|o| &o.agency == peer) else {
            return Ok(evaluate_at(self.client.as_ref(), peer, replica, &all)
                .await?
                .outputs);
        };
        let epoch = replica.epoch;
        tokio::task::spawn_blocking(move || {
            let (at, outputs) = own.evaluate(&all)?;
            if at != epoch || outputs.len() != all.len() {
                return Err(ScreenError::OtherEpoch.into());
            }
            Ok(outputs.into_iter().map(|(_, y)| y).collect())
        })
        .await
        .map_err(|_| WatchError::Screen(ScreenError::Task))?
    }

    /// Raises an alert for each notice `outputs` find for `entry` in `replica`.
    fn raise_found(
        &self,
        peer: &AgencyId,
        replica: &PeerReplica,
        entry: &WatchEntry,
        keys: &QueryKeys,
        outputs: &[(usize, OprfOutput)],
    ) -> Result<u32, WatchError> {
        let found: Vec<Finding> = findings::find(&replica.lookup, keys, outputs, DEFAULT_THRESHOLD)
            .into_iter()
            .flatten()
            .collect();
        let mut raised = 0;
        let before = self.watch.matched(peer, entry.id)?;
        let mut now = WatchMatched {
            ended: before.ended.clone(),
            ended_times: before.ended_times.clone(),
            ..WatchMatched::default()
        };
        // Pairs the operator marked false positive raise nothing, and do not "end" either.
        let hidden =
            crate::review::false_positive::suppressed_in(&self.store, entry.party.as_ref());
        for f in &found {
            let m = self.to_match(peer, f);
            let print = self.fingerprint(peer, &f.label);
            if hidden.contains(&m.origin, &m.serial) {
                now.matches.push(m);
                now.fingerprints.push(print);
                continue;
            }
            let earlier = before
                .matches
                .iter()
                .zip(&before.fingerprints)
                .find(|(b, _)| b.origin == m.origin && b.serial == m.serial);
            if let Some((_, old)) = earlier
                && *old != print
                && self.update(peer, entry, &m, &print, "changed")?
            {
                raised += 1;
            }
            if self.raise(peer, entry, f)? {
                raised += 1;
            } else if earlier.is_none()
                && let Some(times) = now.back(&m)
                && self.update(peer, entry, &m, &times.to_be_bytes(), "reinstated")?
            {
                // Alerted before, ended since, and back.
                raised += 1;
            }
            now.matches.push(m);
            now.fingerprints.push(print);
        }
        for (b, print) in before.matches.iter().zip(&before.fingerprints) {
            let gone = !now
                .matches
                .iter()
                .any(|m| m.origin == b.origin && m.serial == b.serial);
            if gone {
                // Once per ending: a notice may end, come back and end again.
                let times = now.end(b).to_be_bytes();
                if self.update(
                    peer,
                    entry,
                    b,
                    &[print.as_slice(), &times].concat(),
                    "ended",
                )? {
                    raised += 1;
                }
            }
        }
        if now != before {
            self.watch.set_matched(peer, entry.id, &now)?;
        }
        Ok(raised)
    }

    /// A `watch_update` alert: the notice `m` an entry matched has `what` ("changed",
    /// "ended"); once per notice, fingerprint and kind of update.
    fn update(
        &self,
        peer: &AgencyId,
        entry: &WatchEntry,
        m: &tessera_proto::v1::Match,
        print: &[u8],
        what: &str,
    ) -> Result<bool, WatchError> {
        let alert = Alert {
            watch_id: entry.id,
            reference: entry.reference.clone(),
            r#match: Some(m.clone()),
            kind: AlertKind::WatchUpdate.as_str().to_owned(),
            update: what.to_owned(),
            ..Alert::default()
        };
        let once = format!(
            "watch_update|{what}|{}|{peer}|{}|{}|{}",
            entry.id,
            m.origin,
            m.serial,
            hex::encode(print)
        );
        let Some(a) = self.alerts.reminder(alert, &once)? else {
            return Ok(false);
        };
        tracing::warn!(
            alert = a.seq,
            watch = entry.id,
            peer = %peer,
            origin = %m.origin,
            serial = %m.serial,
            update = what,
            "a watched match's notice changed"
        );
        Ok(true)
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
        let own = self.own.as_ref().map(|o| &o.agency);
        for peer in self.peers.iter().chain(own) {
            match self.evaluate_entries(peer, &entries).await {
                Ok(n) => alerts += n,
                Err(WatchError::Store(e)) => return Err(e.into()),
                // Nothing of our own indexed yet: the first rows are checked as they come.
                Err(WatchError::NoReplica) if Some(peer) == own => {}
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
        // Entries that matched here before are checked again whatever the delta holds: a
        // revoked notice only removes rows.
        let mut ids: BTreeSet<u64> = self.watch.with_matches(peer)?.into_iter().collect();
        for entry in adds {
            let records = self.watch.records(peer, replica.epoch, &entry.tag)?;
            if !records.is_empty() {
                touched(&records, entry, &mut ids);
            }
        }
        // An entry a new row concerns is scored again against the whole replica: a new
        // share may complete a name whose other shares came before.
        for id in ids {
            // An entry removed since: its outputs no longer match.
            let Some(watched) = self.watch.get(id)? else {
                continue;
            };
            let Some(keys) = entry_keys(&watched) else {
                continue;
            };
            let outputs = self.watch.outputs(peer, replica.epoch, id)?;
            self.raise_found(peer, replica, &watched, &keys, &outputs)?;
        }
        Ok(())
    }

    fn raise(
        &self,
        peer: &AgencyId,
        watched: &WatchEntry,
        found: &Finding,
    ) -> Result<bool, WatchError> {
        let label = &found.label;
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
            r#match: Some(self.to_match(peer, found)),
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
            strength = found.verdict.strength.as_str(),
            kind = %a.kind,
            "watch-list match"
        );
        if deconflict {
            // The peer's unit gets our pointer as we got theirs: queued
            // durably, delivered and retried by `deconflict::HitDelivery`.
            let request = DeconflictHitRequest {
                tag: found.tag.to_vec(),
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
