//! Operator alerts: what `tessera alerts` lists. Watch-list matches,
//! deconfliction hits, consultation steps and reminders, and review-date
//! reminders are all raised here, each once, numbered in the order raised.
//!
//! This module owns the alert records and nothing else; the watch list,
//! consultations and reviews only call [`AlertSink`]. An alert carries
//! agency ids, serials, watch ids and consultation ids, never a party.
//!
//! Keys (in the `watch` tree, where earlier releases kept them; no other
//! module reads or writes these tags):
//!
//! ```text
//! a seq:be64                                  -> Alert
//! m                                           -> last alert seq:be64
//! s watch:be64 peer 0 origin 0 serial 0       -> () (one alert per watch entry and notice)
//! r key                                       -> () (one reminder per key)
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use prost::Message;
use tessera_proto::v1::Alert;

use crate::audit::{Action, AuditSink};
use crate::identity::AgencyId;
use crate::peers::now_ms;
use crate::store::keys::{Key, Tree};
use crate::store::{Store, StoreError};

/// The tree the alert keys live in.
pub const TREE: &str = "watch";

/// What raised an alert. The wire form (`Alert.kind`) is [`AlertKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertKind {
    /// A watch-list party matched a peer's notice.
    Watch,
    /// An investigation subject matched a peer's notice that is not an investigation.
    Investigation,
    /// Another unit investigates the same party.
    Deconfliction,
    /// A consultation step arrived, or a consultation is due soon or overdue.
    Consultation,
    /// One of our notices nears or passed its review date.
    Review,
    /// A notice a watch entry matched was amended or renewed, or ended (revoked, expired,
    /// no longer shared).
    WatchUpdate,
}

impl AlertKind {
    pub const ALL: [Self; 6] = [
        Self::Watch,
        Self::Investigation,
        Self::Deconfliction,
        Self::Consultation,
        Self::Review,
        Self::WatchUpdate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Watch => "watch",
            Self::Investigation => "investigation",
            Self::Deconfliction => "deconfliction",
            Self::Consultation => "consultation",
            Self::Review => "review",
            Self::WatchUpdate => "watch_update",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not an alert kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an alert kind")]
pub struct UnknownAlertKind(String);

impl FromStr for AlertKind {
    type Err = UnknownAlertKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownAlertKind(s.chars().take(40).collect()))
    }
}

/// What makes two alerts the same alert (the second is not stored).
#[derive(Debug, Clone, Copy)]
pub enum Once<'a> {
    /// One alert per watch entry (0: none) and notice of a peer (the
    /// alert's match names peer, origin and serial).
    PerMatch,
    /// One alert per key chosen by the caller (a reminder of one stage).
    PerKey(&'a str),
}

/// The alert records.
pub struct AlertStore {
    tree: Tree,
    /// Check-then-write of the dedupe keys, one raise at a time.
    lock: Mutex<()>,
}

impl fmt::Debug for AlertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertStore").finish_non_exhaustive()
    }
}

fn dedupe_key(once: Once<'_>, alert: &Alert) -> Key {
    match once {
        Once::PerMatch => {
            let m = alert.r#match.clone().unwrap_or_default();
            Key::tag(b's')
                .u64(alert.watch_id)
                .field(&m.peer)
                .field(&m.origin)
                .field(&m.serial)
        }
        Once::PerKey(key) => Key::tag(b'r').text(key),
    }
}

impl AlertStore {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: Tree::open(store, TREE)?,
            lock: Mutex::new(()),
        })
    }

    /// Stores `alert` (numbered and timed here) unless an alert that is the
    /// same under `once` was stored before. Returns it when new.
    pub fn raise(&self, once: Once<'_>, mut alert: Alert) -> Result<Option<Alert>, StoreError> {
        let _one = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let dedupe = dedupe_key(once, &alert);
        if self.tree.contains(&dedupe, "alert marker")? {
            return Ok(None);
        }
        alert.seq = self.tree.next(Key::name(b"m"), "alert counter")?;
        alert.at_ms = now_ms();
        let mut batch = sled::Batch::default();
        batch.insert(dedupe.into_vec(), Vec::new());
        batch.insert(
            Key::tag(b'a').u64(alert.seq).into_vec(),
            alert.encode_to_vec(),
        );
        self.tree.apply(batch, "alert")?;
        Ok(Some(alert))
    }

    /// Alerts after `after`, oldest first. An unreadable alert is an error.
    pub fn after(&self, after: u64) -> Result<Vec<Alert>, StoreError> {
        let start = Key::tag(b'a').u64(after.saturating_add(1));
        let mut out = Vec::new();
        for kv in self.tree.sled().range(start..) {
            let (k, v) = kv.map_err(self.tree.failed("alert"))?;
            if k.first() != Some(&b'a') {
                break;
            }
            out.push(self.tree.decode(&v, "alert")?);
        }
        Ok(out)
    }
}

/// Where the node raises alerts: stores each once, counts it, and audits
/// the disclosures among them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertSink {
    store: Arc<AlertStore>,
    audit: AuditSink,
}

impl AlertSink {
    pub fn new(store: Arc<AlertStore>, audit: AuditSink) -> Self {
        Self { store, audit }
    }

    pub fn store(&self) -> &AlertStore {
        &self.store
    }

    /// A match with `peer`'s notice (a watch-list or deconfliction alert):
    /// stored once per watch entry and notice, counted, and audited as a
    /// disclosure. Returns it when new.
    pub fn matched(&self, peer: &AgencyId, alert: Alert) -> Result<Option<Alert>, StoreError> {
        let Some(a) = self.store.raise(Once::PerMatch, alert)? else {
            return Ok(None);
        };
        crate::telemetry::alert(&a.kind);
        let m = a.r#match.clone().unwrap_or_default();
        let action = if a.kind == AlertKind::Deconfliction.as_str() {
            Action::DeconflictionAlert
        } else {
            Action::MatchDisclosed
        };
        self.audit.event(
            peer.as_str(),
            action,
            &format!("{}/{}", m.origin, m.serial),
            &serde_json::json!({ "alert": a.seq, "watch": a.watch_id, "disclosure": m.disclosure }),
        );
        Ok(Some(a))
    }

    /// A consultation alert (the step is audited where it is applied).
    pub fn consultation(&self, alert: Alert) -> Result<Option<Alert>, StoreError> {
        self.store.raise(Once::PerMatch, alert)
    }

    /// A reminder, once per `key`, counted.
    pub fn reminder(&self, alert: Alert, key: &str) -> Result<Option<Alert>, StoreError> {
        let raised = self.store.raise(Once::PerKey(key), alert)?;
        if let Some(a) = &raised {
            crate::telemetry::alert(&a.kind);
        }
        Ok(raised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_proto::v1::Match;

    fn store() -> (tempfile::TempDir, Store, AlertStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let alerts = AlertStore::open(&store).unwrap();
        (dir, store, alerts)
    }

    fn matched(watch: u64, serial: &str) -> Alert {
        Alert {
            watch_id: watch,
            kind: AlertKind::Watch.as_str().into(),
            r#match: Some(Match {
                peer: "FR-SBDU".into(),
                origin: "FR-SBDU".into(),
                serial: serial.into(),
                ..Match::default()
            }),
            ..Alert::default()
        }
    }

    #[test]
    fn kinds_round_trip_and_a_typo_is_refused() {
        for k in AlertKind::ALL {
            assert_eq!(k.as_str().parse::<AlertKind>().unwrap(), k);
        }
        assert!("deconflict".parse::<AlertKind>().is_err());
    }

    #[test]
    fn each_match_alerts_once_and_alerts_are_numbered_in_order() {
        let (_dir, _store, alerts) = store();
        let a = alerts.raise(Once::PerMatch, matched(1, "S-1")).unwrap();
        assert_eq!(a.map(|a| a.seq), Some(1));
        assert!(
            alerts
                .raise(Once::PerMatch, matched(1, "S-1"))
                .unwrap()
                .is_none()
        );
        // Another entry, another notice: new alerts.
        assert_eq!(
            alerts
                .raise(Once::PerMatch, matched(2, "S-1"))
                .unwrap()
                .map(|a| a.seq),
            Some(2)
        );
        let r = alerts
            .raise(Once::PerKey("S-1\0due"), Alert::default())
            .unwrap();
        assert_eq!(r.map(|a| a.seq), Some(3));
        assert!(
            alerts
                .raise(Once::PerKey("S-1\0due"), Alert::default())
                .unwrap()
                .is_none()
        );
        let all: Vec<u64> = alerts.after(0).unwrap().iter().map(|a| a.seq).collect();
        assert_eq!(all, [1, 2, 3]);
        let later: Vec<u64> = alerts.after(2).unwrap().iter().map(|a| a.seq).collect();
        assert_eq!(later, [3]);
    }

    #[test]
    fn an_unreadable_alert_is_an_error_not_a_missing_alert() {
        let (_dir, store, alerts) = store();
        alerts.raise(Once::PerMatch, matched(1, "S-1")).unwrap();
        let tree = store.tree(TREE).unwrap();
        tree.insert(Key::tag(b'a').u64(2).into_vec(), vec![0xff, 0xff])
            .unwrap();
        let err = alerts.after(0).unwrap_err();
        assert_eq!(err.to_string(), "stored alert in tree watch is corrupt");
    }
}
