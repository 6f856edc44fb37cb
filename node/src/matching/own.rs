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

use rayon::prelude::*;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::holder::HolderIndex;
use super::keys::KeyRing;
use super::replica::{PeerReplica, Replicas};
use super::screen::ScreenError;
use super::watch::Watcher;
use crate::identity::AgencyId;
use crate::privacy::OprfOutput;

/// Where our own index is: the indexer's deltas under our agency, and our own key.
#[derive(Debug, Clone)]
pub struct OwnIndex {
    pub agency: AgencyId,
    pub keys: Arc<KeyRing>,
    pub holder: Arc<HolderIndex>,
}

impl OwnIndex {
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
                let held: Vec<_> = index
                    .holder
                    .deltas_after(&index.agency, 0)
                    .collect::<Result<_, _>>()
                    .map_err(|_| ScreenError::NoReplica)?;
                replicas
                    .restore(&index.agency, &held)
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
