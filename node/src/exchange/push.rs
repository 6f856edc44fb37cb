//! The outbox worker: one per peer, pushing our notices that the peer has
//! not yet acknowledged, oldest first, with the index position the peer
//! should have, retrying with the node's back-off. An item leaves the outbox
//! only when the peer has durably stored it.

use std::sync::Arc;
use std::time::Duration;

use tessera_proto::v1::{FeedItem, PushNoticesRequest, PushNoticesResponse};
use tokio_util::sync::CancellationToken;

use super::client::{PeerClient, PeerError};
use crate::audit::{Action, AuditSink};
use crate::backoff::{Pacer, RetryPolicy, Round};
use crate::identity::AgencyId;
use crate::matching::holder::HolderIndex;
use crate::notice::store::{NoticeStore, NoticeStoreError};
use crate::peers::PeerTable;
use crate::store::StoreError;
use crate::wake::PeerWake;

/// How long a push may take before it counts as failed.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a push did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Notices(#[from] NoticeStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error("the push timed out")]
    TimedOut,
    #[error("not pushed: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

/// One peer's outbox worker.
#[derive(Debug)]
pub struct Pusher {
    pub peer: AgencyId,
    pub notices: Arc<NoticeStore>,
    pub holder: Arc<HolderIndex>,
    pub client: Arc<dyn PeerClient>,
    pub peers: Arc<PeerTable>,
    pub audit: AuditSink,
    pub wake: Arc<PeerWake>,
    /// Most notices in one push (`sync.push_batch`).
    pub batch: usize,
    pub retry: RetryPolicy,
    /// How long a push may take ([`PUSH_TIMEOUT`]).
    pub timeout: Duration,
}

impl Pusher {
    /// Pushes the oldest waiting items (or just the index position, when
    /// it moved past `announced`). Returns the position now announced, or
    /// `None` when there was nothing to push.
    pub async fn push_pending(&self, announced: u64) -> Result<Option<u64>, PushError> {
        let index_pos = self.holder.last_pos(&self.peer)?;
        let items = self.notices.outbox(&self.peer, self.batch)?;
        if items.is_empty() && index_pos <= announced {
            return Ok(None);
        }
        let seqs: Vec<u64> = items.iter().map(|i| i.seq).collect();
        self.push(items, index_pos).await?;
        self.notices.outbox_ack(&self.peer, &seqs)?;
        Ok(Some(index_pos))
    }

    async fn push(
        &self,
        items: Vec<FeedItem>,
        index_pos: u64,
    ) -> Result<PushNoticesResponse, PushError> {
        let peer = &self.peer;
        let n = items.len();
        // What leaves the node is on record (on disk) before it leaves.
        if let (Some(first), Some(last)) = (items.first(), items.last()) {
            let details = serde_json::json!({
                "count": n,
                "first_seq": first.seq,
                "last_seq": last.seq,
            });
            self.audit
                .disclosed(peer.as_str(), Action::NoticeSent, "push", &details)
                .await?;
        }
        let call = self
            .client
            .push_notices(peer, PushNoticesRequest { items, index_pos });
        let r = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| PushError::TimedOut)??;
        tracing::debug!(peer = %peer, sent = n, stored = r.stored, duplicates = r.duplicates, "pushed");
        crate::telemetry::notices_sent(peer, n as u64);
        self.peers.seen(peer, None, None);
        Ok(r)
    }

    /// Pushes until `stop`: at once when woken, after a back-off when a
    /// push failed, and at the back-off's cap when idle.
    pub async fn run(self, stop: CancellationToken) {
        // The index position last announced to this peer (not durable: the
        // peer's periodic pull covers a restart).
        let mut announced = 0u64;
        let mut pacer = Pacer::new(self.retry, stop);
        loop {
            let round = match self.push_pending(announced).await {
                Ok(Some(pos)) => {
                    announced = pos;
                    Round::More
                }
                Ok(None) => Round::Idle,
                Err(PushError::Notices(error)) => {
                    tracing::error!(peer = %self.peer, %error, "cannot read or clear the outbox");
                    Round::Failed
                }
                Err(PushError::Audit(error)) => {
                    tracing::error!(peer = %self.peer, %error, "cannot audit a push; nothing sent");
                    Round::Failed
                }
                Err(PushError::Store(error)) => {
                    tracing::error!(peer = %self.peer, %error, "cannot read the index position");
                    Round::Failed
                }
                Err(why) => {
                    tracing::debug!(peer = %self.peer, reason = %why, "push failed; will retry");
                    Round::Failed
                }
            };
            if !pacer.pause(round, &self.wake.push).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::fake::{FakePeer, FakePeers, refused};
    use crate::matching::holder::{IndexPolicy, Indexer};
    use crate::matching::keys::KeyRing;
    use crate::test_support::{agency, audit_on, audited, denial, org, signing_key, temp_store};
    use crate::wake::Wakers;

    struct Setup {
        dir: tempfile::TempDir,
        store: crate::store::Store,
        peers: FakePeers,
        notices: Arc<NoticeStore>,
        holder: Arc<HolderIndex>,
        table: Arc<PeerTable>,
        pusher: Pusher,
    }

    /// DE-BAFA with `n` notices for FR-SBDU waiting in its outbox.
    fn setup(n: usize) -> Setup {
        let (dir, store) = temp_store();
        let b = agency("FR-SBDU");
        let notices = Arc::new(NoticeStore::open(&store, agency("DE-BAFA")).unwrap());
        let key = signing_key();
        for i in 0..n {
            let notice = denial("DE-BAFA", &format!("S-{i}"), "all", &[org("X Ltd", "AE")]);
            notices
                .writer()
                .append_own(notice, std::slice::from_ref(&b), &key)
                .unwrap();
        }
        let holder = Arc::new(HolderIndex::open(&store).unwrap());
        let table = Arc::new(PeerTable::for_tests(std::slice::from_ref(&b)));
        let peers = FakePeers::new();
        peers.add(&b, FakePeer::default());
        let pusher = Pusher {
            peer: b,
            notices: notices.clone(),
            holder: holder.clone(),
            client: Arc::new(peers.clone()),
            peers: table.clone(),
            audit: audit_on(&store),
            wake: Arc::default(),
            batch: 2,
            retry: RetryPolicy::new(Duration::from_millis(250), Duration::from_secs(30)),
            timeout: PUSH_TIMEOUT,
        };
        Setup {
            dir,
            store,
            peers,
            notices,
            holder,
            table,
            pusher,
        }
    }

    fn waiting(s: &Setup) -> usize {
        s.notices.outbox_len(&s.pusher.peer).unwrap()
    }

    #[test]
    fn the_outbox_goes_out_oldest_first_in_batches_and_leaves_once_acknowledged() {
        crate::test_support::run(async {
            let s = setup(3);
            assert_eq!(s.pusher.push_pending(0).await.unwrap(), Some(0));
            assert_eq!(s.pusher.push_pending(0).await.unwrap(), Some(0));
            assert_eq!(s.pusher.push_pending(0).await.unwrap(), None);
            let pushed = s.peers.peer(&s.pusher.peer).pushed;
            let seqs: Vec<Vec<u64>> = pushed
                .iter()
                .map(|r| r.items.iter().map(|i| i.seq).collect())
                .collect();
            assert_eq!(seqs, [vec![1, 2], vec![3]]);
            assert_eq!(waiting(&s), 0);
            assert!(s.table.is_reachable(&s.pusher.peer));
            assert!(audited(&s.pusher.audit).contains(&"notice_sent".to_owned()));
        });
    }

    #[test]
    fn a_moved_index_is_announced_even_with_no_notice_to_push() {
        crate::test_support::run(async {
            let s = setup(0);
            let keys = Arc::new(
                KeyRing::open(s.dir.path(), std::slice::from_ref(&s.pusher.peer)).unwrap(),
            );
            let indexer = Indexer {
                holder: s.holder.clone(),
                notices: s.notices.clone(),
                keys,
                policy: IndexPolicy {
                    levels: [(
                        s.pusher.peer.clone(),
                        crate::policy::DisclosureLevel::Pointer,
                    )]
                    .into(),
                    contact: String::new(),
                },
                agency: agency("DE-BAFA"),
                store: s.store.clone(),
                wakers: Wakers::default(),
            };
            indexer.ensure_initial().unwrap();
            assert_eq!(s.pusher.push_pending(0).await.unwrap(), Some(1));
            let pushed = s.peers.peer(&s.pusher.peer).pushed;
            assert_eq!((pushed[0].items.len(), pushed[0].index_pos), (0, 1));
            assert_eq!(s.pusher.push_pending(1).await.unwrap(), None);
        });
    }

    #[test]
    fn a_peer_down_or_refusing_keeps_the_outbox() {
        crate::test_support::run(async {
            let s = setup(2);
            s.peers.update(&s.pusher.peer, |p| p.down = true);
            assert!(matches!(
                s.pusher.push_pending(0).await,
                Err(PushError::Peer(_))
            ));
            s.peers.update(&s.pusher.peer, |p| {
                p.down = false;
                p.on_push = Some(Arc::new(|_| {
                    Err(refused(
                        tonic::Code::InvalidArgument,
                        "1 of 2 notices refused",
                    ))
                }));
            });
            assert!(s.pusher.push_pending(0).await.is_err());
            assert_eq!(waiting(&s), 2);
        });
    }

    #[test]
    fn a_push_slower_than_the_timeout_fails_and_is_retried() {
        crate::test_support::run_paused(async {
            let s = setup(1);
            s.peers.update(&s.pusher.peer, |p| {
                p.delay = PUSH_TIMEOUT + Duration::from_secs(1);
            });
            assert!(matches!(
                s.pusher.push_pending(0).await,
                Err(PushError::TimedOut)
            ));
            assert_eq!(waiting(&s), 1);
        });
    }

    #[test]
    fn the_worker_retries_with_back_off_until_the_peer_is_back() {
        crate::test_support::run_paused(async {
            let s = setup(1);
            s.peers.update(&s.pusher.peer, |p| p.down = true);
            let stop = CancellationToken::new();
            let peers = s.peers.clone();
            let peer = s.pusher.peer.clone();
            let notices = s.notices.clone();
            let task = tokio::spawn(s.pusher.run(stop.clone()));
            tokio::time::sleep(Duration::from_secs(10)).await;
            let tries = peers.peer(&peer).calls;
            // At 0, then after 0.25, 0.5, 1, 2, 4, 8 s (each jittered to half
            // or more): 6 or 7 attempts in 10 s.
            assert!((6..=7).contains(&tries), "{tries} attempts in 10 s");
            peers.update(&peer, |p| p.down = false);
            tokio::time::sleep(Duration::from_secs(30)).await;
            assert_eq!(notices.outbox_len(&peer).unwrap(), 0);
            stop.cancel();
            task.await.unwrap();
        });
    }
}
