//! Signals between the node's parts: "there is work". A change that a
//! worker must act on (a notice issued, a hit queued, a peer back online)
//! wakes that worker instead of waiting for its next timer. Every worker
//! also looks on a timer, so a lost signal delays, never loses, work.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::identity::AgencyId;

/// The signals of one peer's workers.
#[derive(Debug, Default)]
pub struct PeerWake {
    /// The outbox (notices and index position) has something to push.
    pub push: Notify,
    /// The peer has something to pull (it came online, or said so).
    pub pull: Notify,
    /// Consultation steps wait for delivery.
    pub consult: Notify,
    /// Deconfliction hits wait for delivery.
    pub deconflict: Notify,
}

/// Every signal of the node. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Wakers {
    peers: Arc<BTreeMap<AgencyId, Arc<PeerWake>>>,
    indexer: Arc<Notify>,
    own_index: Arc<Notify>,
    review: Arc<Notify>,
}

impl Wakers {
    /// Signals for the workers of each of `peers`.
    pub fn new(peers: &[AgencyId]) -> Self {
        Self {
            peers: Arc::new(peers.iter().map(|p| (p.clone(), Arc::default())).collect()),
            ..Self::default()
        }
    }

    /// The signals of `peer` (a detached set for a peer not configured).
    pub fn peer(&self, peer: &AgencyId) -> Arc<PeerWake> {
        self.peers.get(peer).cloned().unwrap_or_default()
    }

    /// Tells the push workers of `peers` that something waits.
    pub fn push(&self, peers: &[AgencyId]) {
        for p in peers {
            if let Some(w) = self.peers.get(p) {
                w.push.notify_one();
            }
        }
    }

    /// Tells every push worker (the index moved for all).
    pub fn push_all(&self) {
        for w in self.peers.values() {
            w.push.notify_one();
        }
    }

    pub fn pull(&self, peer: &AgencyId) {
        if let Some(w) = self.peers.get(peer) {
            w.pull.notify_one();
        }
    }

    pub fn consult(&self, peer: &AgencyId) {
        if let Some(w) = self.peers.get(peer) {
            w.consult.notify_one();
        }
    }

    pub fn deconflict(&self, peer: &AgencyId) {
        if let Some(w) = self.peers.get(peer) {
            w.deconflict.notify_one();
        }
    }

    /// Our own notices changed: the indexer and the review check look again.
    pub fn own_notices_changed(&self) {
        self.indexer.notify_one();
        self.review.notify_one();
    }

    /// What the indexer waits on.
    pub fn indexer(&self) -> Arc<Notify> {
        self.indexer.clone()
    }

    /// The indexer wrote rows of our own index.
    pub fn own_indexed(&self) {
        self.own_index.notify_one();
    }

    /// What our own lists' catch-up waits on.
    pub fn own_index(&self) -> Arc<Notify> {
        self.own_index.clone()
    }

    /// What the review check waits on.
    pub fn review(&self) -> Arc<Notify> {
        self.review.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_support::agency;

    async fn woken(n: &Notify) -> bool {
        tokio::time::timeout(Duration::from_millis(5), n.notified())
            .await
            .is_ok()
    }

    #[test]
    fn a_signal_reaches_the_worker_it_names_and_no_other() {
        crate::test_support::run(async {
            let (b, c) = (agency("FR-SBDU"), agency("US-BIS"));
            let wakers = Wakers::new(&[b.clone(), c.clone()]);
            wakers.push(std::slice::from_ref(&b));
            assert!(woken(&wakers.peer(&b).push).await);
            assert!(!woken(&wakers.peer(&c).push).await);
            wakers.own_notices_changed();
            assert!(woken(&wakers.indexer()).await);
            assert!(woken(&wakers.review()).await);
            // A peer not configured gets a detached set: signalling it is harmless.
            wakers.pull(&agency("JP-METI"));
            assert!(!woken(&wakers.peer(&agency("JP-METI")).pull).await);
        });
    }
}
