//! The holder's overlap sessions: one session key and one set per calling
//! peer and epoch. The set (one scalar multiplication per listed key) is
//! computed when a peer's epoch starts, not on every call, and that call is
//! charged for it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::identity::AgencyId;
use crate::privacy::{CardinalityHolder, HolderSet};

/// One peer's session: the key and the set under it.
pub struct Session {
    started: Instant,
    pub holder: CardinalityHolder,
    pub set: HolderSet,
}

impl Session {
    pub fn new(holder: CardinalityHolder, set: HolderSet) -> Self {
        Self {
            started: Instant::now(),
            holder,
            set,
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("started", &self.started)
            .field("set", &self.set.len())
            .finish_non_exhaustive()
    }
}

/// Every peer's current session.
#[derive(Debug)]
pub struct Sessions {
    epoch: Duration,
    /// One lock for all: a peer's calls wait for its set to be computed
    /// rather than computing it twice.
    by_peer: Mutex<BTreeMap<AgencyId, Arc<Session>>>,
}

impl Sessions {
    pub fn new(epoch: Duration) -> Self {
        Self {
            epoch,
            by_peer: Mutex::new(BTreeMap::new()),
        }
    }

    /// `peer`'s session, started with `start` (and `true`) if it has none
    /// or its epoch is over.
    pub async fn current<E, F, Fut>(
        &self,
        peer: &AgencyId,
        start: F,
    ) -> Result<(Arc<Session>, bool), E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Session, E>>,
    {
        let mut by_peer = self.by_peer.lock().await;
        if let Some(s) = by_peer.get(peer)
            && s.started.elapsed() < self.epoch
        {
            return Ok((s.clone(), false));
        }
        let session = Arc::new(start().await?);
        by_peer.insert(peer.clone(), session.clone());
        Ok((session, true))
    }
}
