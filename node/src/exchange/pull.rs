//! The pull worker: one per peer, catching up from our cursor in the peer's
//! feed (and its index for us) when the peer becomes reachable and then
//! periodically. Pushes are the fast path; pulls make sure nothing is
//! missed after downtime on either side. A failed pull is retried with the
//! node's back-off, never later than the next periodic pull.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::client::{PeerClient, PeerError};
use super::receive::Receiver;
use crate::backoff::RetryPolicy;
use crate::identity::AgencyId;
use crate::matching::replica::ReplicaSync;
use crate::notice::store::{NoticeStore, NoticeStoreError};
use crate::wake::PeerWake;

/// Items applied per flush during a pull.
pub const PULL_BATCH: usize = 2_048;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Notices(#[from] NoticeStoreError),
    #[error(transparent)]
    Peer(#[from] PeerError),
}

/// One peer's pull worker.
#[derive(Debug)]
pub struct Puller {
    pub peer: AgencyId,
    pub notices: Arc<NoticeStore>,
    pub receiver: Arc<Receiver>,
    pub replicas: Arc<ReplicaSync>,
    pub client: Arc<dyn PeerClient>,
    pub wake: Arc<PeerWake>,
    /// Between periodic pulls (`sync.pull_interval_ms`).
    pub interval: Duration,
    pub retry: RetryPolicy,
}

impl Puller {
    /// Pulls from the peer until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let peer = &self.peer;
        let mut backoff = self.retry.backoff();
        let mut wait = self.interval;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.wake.pull.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
            let mut failed = false;
            if let Err(why) = self.pull_once(&stop).await {
                tracing::debug!(peer = %peer, reason = %why, "pull failed; will retry");
                failed = true;
            }
            if let Err(why) = self.replicas.pull(peer).await {
                tracing::debug!(peer = %peer, reason = %why, "index pull failed; will retry");
                failed = true;
            }
            wait = if failed {
                backoff.next_delay().min(self.interval)
            } else {
                backoff.reset();
                self.interval
            };
        }
    }

    /// One catch-up: streams the peer's feed after our cursor and applies
    /// it in batches, each durable before the next. Returns how many
    /// notices were stored.
    pub async fn pull_once(&self, stop: &CancellationToken) -> Result<u64, PullError> {
        let peer = &self.peer;
        let after = self.notices.cursor(peer)?;
        let mut stream = self.client.pull_notices(peer, after).await?;
        let mut batch = Vec::with_capacity(PULL_BATCH);
        let mut stored = 0u64;
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => None,
                next = stream.next() => next,
            };
            let done = match next {
                Some(Ok(item)) => {
                    batch.push(item);
                    false
                }
                Some(Err(e)) => return Err(e.into()),
                None => true,
            };
            if batch.len() >= PULL_BATCH || (done && !batch.is_empty()) {
                let r = self.receiver.accept(peer, &batch).await?;
                stored += u64::from(r.stored);
                batch.clear();
            }
            if done {
                break;
            }
        }
        if stored > 0 {
            tracing::info!(peer = %peer, stored, "caught up from the peer's feed");
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use tessera_proto::v1::FeedItem;

    use super::*;
    use crate::exchange::fake::{FakePeer, FakePeers};
    use crate::peers::PinnedKeys;
    use crate::test_support::{
        MatchingWorld, agency, audited, matching_world, signed_feed, signing_key,
    };

    struct Setup {
        w: MatchingWorld,
        notices: Arc<NoticeStore>,
        puller: Puller,
    }

    /// DE-BAFA pulling from FR-SBDU, whose feed is `feed(key)`.
    fn setup(feed: impl FnOnce(&crate::signing::SigningKey) -> Vec<FeedItem>) -> Setup {
        let w = matching_world(&["FR-SBDU"]);
        let b = agency("FR-SBDU");
        let their_key = signing_key();
        let notices = Arc::new(NoticeStore::open(&w.store, agency("DE-BAFA")).unwrap());
        let receiver = Arc::new(Receiver {
            notices: notices.clone(),
            pinned: PinnedKeys::new([(b.clone(), *their_key.public())]),
            store: w.store.clone(),
            audit: w.audit.clone(),
            replicas: w.replicas.clone(),
            wakers: w.wakers.clone(),
        });
        w.peers.add(
            &b,
            FakePeer {
                feed: feed(&their_key),
                ..FakePeer::default()
            },
        );
        let puller = Puller {
            peer: b,
            notices: notices.clone(),
            receiver,
            replicas: Arc::new(crate::matching::replica::ReplicaSync::new(
                w.replicas.clone(),
                Arc::new(w.peers.clone()),
                w.store.clone(),
                w.watcher.clone(),
            )),
            client: Arc::new(w.peers.clone()),
            wake: Arc::default(),
            interval: Duration::from_secs(30),
            retry: RetryPolicy::new(Duration::from_millis(250), Duration::from_secs(30)),
        };
        Setup { w, notices, puller }
    }

    fn peers(s: &Setup) -> &FakePeers {
        &s.w.peers
    }

    #[test]
    fn a_pull_stores_what_verifies_and_moves_the_cursor_once() {
        crate::test_support::run(async {
            let s = setup(|k| signed_feed("FR-SBDU", k, 3));
            let stop = CancellationToken::new();
            assert_eq!(s.puller.pull_once(&stop).await.unwrap(), 3);
            assert_eq!(s.notices.cursor(&s.puller.peer).unwrap(), 3);
            assert_eq!(s.puller.pull_once(&stop).await.unwrap(), 0);
            assert_eq!(s.notices.counts().unwrap()["FR-SBDU"], 3);
            assert!(audited(&s.w.audit).contains(&"notice_received".to_owned()));
        });
    }

    #[test]
    fn a_lying_peers_items_are_refused_and_audited_and_the_rest_stored() {
        crate::test_support::run(async {
            let s = setup(|k| {
                let mut feed = signed_feed("FR-SBDU", k, 3);
                // Item 2 signed by someone else; item 3 re-shares another origin's notice.
                let forged = signed_feed("FR-SBDU", &signing_key(), 2);
                feed[1] = forged[1].clone();
                let foreign = signed_feed("US-BIS", k, 3);
                feed[2].notice = foreign[2].notice.clone();
                feed
            });
            let stop = CancellationToken::new();
            assert_eq!(s.puller.pull_once(&stop).await.unwrap(), 1);
            let refused = audited(&s.w.audit)
                .iter()
                .filter(|a| *a == "notice_refused")
                .count();
            assert_eq!(refused, 2);
            // The cursor stops before the first refused position.
            assert_eq!(s.notices.cursor(&s.puller.peer).unwrap(), 1);
        });
    }

    #[test]
    fn a_watermark_moves_the_cursor_past_notices_not_for_us() {
        crate::test_support::run(async {
            let s = setup(|k| {
                let mut feed = signed_feed("FR-SBDU", k, 1);
                feed.push(FeedItem {
                    seq: 9,
                    prev_seq: 1,
                    notice: None,
                });
                feed
            });
            s.puller.pull_once(&CancellationToken::new()).await.unwrap();
            assert_eq!(s.notices.cursor(&s.puller.peer).unwrap(), 9);
        });
    }

    #[test]
    fn a_peer_down_or_a_broken_stream_stores_nothing() {
        crate::test_support::run(async {
            let s = setup(|k| signed_feed("FR-SBDU", k, 3));
            let stop = CancellationToken::new();
            peers(&s).update(&s.puller.peer, |p| p.down = true);
            assert!(matches!(
                s.puller.pull_once(&stop).await,
                Err(PullError::Peer(_))
            ));
            peers(&s).update(&s.puller.peer, |p| {
                p.down = false;
                p.break_stream_after = Some(2);
            });
            assert!(s.puller.pull_once(&stop).await.is_err());
            assert_eq!(s.notices.cursor(&s.puller.peer).unwrap(), 0);
        });
    }

    #[test]
    fn the_worker_pulls_when_woken_and_retries_a_failure_before_the_interval() {
        crate::test_support::run_paused(async {
            let s = setup(|k| signed_feed("FR-SBDU", k, 2));
            peers(&s).update(&s.puller.peer, |p| p.down = true);
            let wake = s.puller.wake.clone();
            let peer = s.puller.peer.clone();
            let notices = s.notices.clone();
            let fake = peers(&s).clone();
            let stop = CancellationToken::new();
            let task = tokio::spawn(s.puller.run(stop.clone()));
            wake.pull.notify_one();
            tokio::time::sleep(Duration::from_secs(5)).await;
            // Feed and index, several times each well before the 30 s interval.
            let tries = fake.peer(&peer).calls;
            assert!(tries >= 8, "{tries}");
            fake.update(&peer, |p| p.down = false);
            tokio::time::sleep(Duration::from_secs(20)).await;
            assert_eq!(notices.cursor(&peer).unwrap(), 2);
            stop.cancel();
            task.await.unwrap();
        });
    }
}
