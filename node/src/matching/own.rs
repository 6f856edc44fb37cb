//! Our own lists, screened and watched like a peer's (docs/private-matching.md §7).
//!
//! The indexer indexes our own notices for our own agency (every notice in force, full
//! disclosure) with a key of our own. [`OwnLists`] keeps our copy of that index up to date:
//! it applies the indexer's deltas, in order and once, and checks the rows each delta adds
//! against the watch list, so a denial we issue or import raises a watch alert exactly as a
//! peer's would. Screening brings the copy up to date first (a screen made right after an
//! import sees all of it) and evaluates our keys locally.
//!
//! Never logged: a key, an output, a party.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rayon::prelude::*;
use tessera_proto::v1::{Match, Notice};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::holder::HolderIndex;
use super::keys::KeyRing;
use super::replica::{PeerReplica, Replicas};
use super::screen::ScreenError;
use super::watch::Watcher;
use crate::identity::AgencyId;
use crate::notice::json::NoticeJson;
use crate::notice::store::NoticeStore;
use crate::privacy::OprfOutput;

/// Where our own index is: the indexer's deltas under our agency, and our own key; and
/// our notices, which our own matches show whole.
#[derive(Debug, Clone)]
pub struct OwnIndex {
    pub agency: AgencyId,
    pub keys: Arc<KeyRing>,
    pub holder: Arc<HolderIndex>,
    pub notices: Arc<NoticeStore>,
}

impl OwnIndex {
    /// The content hash of the newest version of our notice `serial` (empty if unread).
    pub fn content_hash(&self, serial: &str) -> Vec<u8> {
        self.notices
            .latest_entry(self.agency.as_str(), serial)
            .ok()
            .flatten()
            .map(|l| l.content_hash.to_vec())
            .unwrap_or_default()
    }

    /// Shows an own match's notice whole, from our notice store. The own index is built at
    /// summary disclosure (`lib.rs`): a label holding the whole notice made every notice's
    /// label row about a kilobyte more, in the holder's deltas and again in the copy held in
    /// memory, for a notice we hold anyway. A notice that cannot be read stays at summary,
    /// and only a summary is shown whole: an investigation's label is a pointer at every
    /// level (deconfliction alerts carry pointers only), and stays one.
    pub fn show_whole(&self, m: &mut Match) {
        if m.disclosure != "summary" {
            return;
        }
        let notice = self
            .notices
            .latest(self.agency.as_str(), &m.serial)
            .ok()
            .flatten()
            .and_then(|stored| stored.envelope)
            .and_then(|env| Notice::decode(env.notice.as_slice()).ok());
        if let Some(notice) = notice {
            m.notice_json = NoticeJson::value_of(&notice).to_string();
            "full".clone_into(&mut m.disclosure);
        }
    }

    /// Our key's outputs for `values` (key position, output), on all cores. A value the
    /// key refuses is left out, as a peer leaves it unanswered.
    pub fn evaluate(
        &self,
        values: &[String],
    ) -> Result<(u32, Vec<(usize, OprfOutput)>), ScreenError> {
        let key = self.keys.get(&self.agency).ok_or(ScreenError::NoReplica)?;
        let outputs = values
            .par_iter()
            .enumerate()
            .filter_map(|(i, v)| key.evaluate(v.as_bytes()).ok().map(|y| (i, y)))
            .collect();
        Ok((key.epoch(), outputs))
    }
}

/// Our copy of our own index, and the watch checks of what it adds.
#[derive(Debug)]
pub struct OwnLists {
    pub index: OwnIndex,
    replicas: Arc<Replicas>,
    watcher: Arc<Watcher>,
    /// Rung by the indexer when it wrote our own rows.
    wake: Arc<Notify>,
    /// One catch-up at a time: each delta's rows are checked against the watch list once.
    applying: tokio::sync::Mutex<()>,
}

impl OwnLists {
    pub fn new(
        index: OwnIndex,
        replicas: Arc<Replicas>,
        watcher: Arc<Watcher>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            index,
            replicas,
            watcher,
            wake,
            applying: tokio::sync::Mutex::new(()),
        }
    }

    /// Applies the indexer's deltas written since our copy's cursor and checks the added
    /// rows against the watch list. Returns the copy (none before the first delta).
    pub async fn catch_up(&self) -> Result<Option<Arc<PeerReplica>>, ScreenError> {
        let _one = self.applying.lock().await;
        let (index, replicas) = (self.index.clone(), self.replicas.clone());
        let applied = tokio::task::spawn_blocking(move || {
            // After a start, our copy's rows come back from the holder's deltas first.
            if replicas.needs_restore(&index.agency) {
                replicas
                    .restore(&index.agency, || {
                        index.holder.deltas_after(&index.agency, 0)
                    })
                    .map_err(|_| ScreenError::NoReplica)?;
            }
            let after = replicas.cursor(&index.agency).unwrap_or(0);
            let deltas: Vec<_> = index
                .holder
                .deltas_after(&index.agency, after)
                .collect::<Result<_, _>>()
                .map_err(|_| ScreenError::NoReplica)?;
            if deltas.is_empty() {
                return Ok(None);
            }
            let reset = deltas.iter().any(|d| d.reset);
            let adds = replicas
                .apply_mirrored(&index.agency, &deltas)
                .map_err(|_| ScreenError::NoReplica)?;
            Ok::<_, ScreenError>(Some((adds, reset)))
        })
        .await
        .map_err(|_| ScreenError::Task)??;
        let replica = self.replicas.get(&self.index.agency);
        if let (Some((adds, reset)), Some(replica)) = (applied, &replica) {
            self.watcher
                .check_new_rows(&self.index.agency, replica, &adds, reset)
                .await;
        }
        Ok(replica)
    }

    /// The worker: catches up whenever the indexer wrote our own rows, and every few
    /// seconds as a safety net.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let wake = self.wake.clone();
        loop {
            if let Err(error) = self.catch_up().await {
                tracing::warn!(%error, "own lists not brought up to date");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{agency, denial, org, signing_key, temp_store};

    #[test]
    fn own_matches_are_shown_whole_from_the_notice_store_and_an_amendment_changes_the_hash() {
        let (dir, store) = temp_store();
        let de = agency("DE-BAFA");
        let notices = Arc::new(NoticeStore::open(&store, de.clone()).unwrap());
        let own = OwnIndex {
            agency: de.clone(),
            keys: Arc::new(KeyRing::open(dir.path(), std::slice::from_ref(&de)).unwrap()),
            holder: Arc::new(HolderIndex::open(&store).unwrap()),
            notices: notices.clone(),
        };
        let signing = signing_key();
        let notice = denial("DE-BAFA", "S-1", "all", &[org("Example Trading FZE", "AE")]);
        notices.writer().append_own(notice, &[], &signing).unwrap();
        let mut m = Match {
            serial: "S-1".into(),
            disclosure: "summary".into(),
            ..Match::default()
        };
        own.show_whole(&mut m);
        assert_eq!(m.disclosure, "full");
        let shown: serde_json::Value = serde_json::from_str(&m.notice_json).unwrap();
        assert_eq!(shown["serial"], "S-1", "{shown}");
        // A serial we do not hold stays as the label showed it.
        let mut other = Match {
            serial: "S-404".into(),
            disclosure: "summary".into(),
            ..Match::default()
        };
        own.show_whole(&mut other);
        assert_eq!(
            (other.disclosure.as_str(), other.notice_json.as_str()),
            ("summary", "")
        );
        // An amendment is a new content hash: own watch matches see it as a change.
        let before = own.content_hash("S-1");
        assert_eq!(before.len(), 32);
        let mut amended = denial("DE-BAFA", "S-1", "all", &[org("Example Trading FZE", "TR")]);
        amended.version = 2;
        notices.writer().append_own(amended, &[], &signing).unwrap();
        assert_ne!(own.content_hash("S-1"), before);
        assert!(own.content_hash("S-404").is_empty());
        // A pointer (an investigation's label) stays a pointer.
        let mut pointer = Match {
            serial: "S-1".into(),
            disclosure: "pointer".into(),
            ..Match::default()
        };
        own.show_whole(&mut pointer);
        assert_eq!(
            (pointer.disclosure.as_str(), pointer.notice_json.as_str()),
            ("pointer", "")
        );
    }
}
