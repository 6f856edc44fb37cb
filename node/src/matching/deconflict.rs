//! Deconfliction between enforcement units. When one of our investigation
//! subjects opens a peer's investigation row (`matching::watch`), the peer
//! is told which of its rows matched and our case contact, so that its unit
//! gets our pointer as we got theirs, and nothing else.
//!
//! [`HitQueue`] keeps the hits to tell, durably, until the peer has them;
//! [`HitDelivery`] is the per-peer worker that delivers them with the
//! node's back-off; [`Deconfliction`] answers a peer's hit on our side.
//!
//! A peer's hit is taken only on a row of the deconfliction domain (a
//! local "investigation opened" notice of ours), is charged to the peer's
//! query budget, and is rate-limited per peer (`HITS_PER_DAY`, `HIT_BURST`);
//! the contact it carries is shown as the peer's claim, without control
//! characters.
//!
//! Keys (tree `watch`, beside the watch list and the alerts):
//!
//! ```text
//! h peer 0 seq:be64    -> DeconflictHitRequest (until delivered)
//! hseq                 -> last hit seq:be64
//! ```

use std::sync::Arc;

use prost::Message;
use tessera_proto::v1::{Alert, DeconflictHitRequest, Match};
use tokio_util::sync::CancellationToken;

use super::budgets::{BudgetError, Budgets};
use super::holder::HolderIndex;
use super::labels;
use crate::alerts::{AlertKind, AlertSink};
use crate::backoff::{Pacer, RetryPolicy, Round};
use crate::exchange::client::PeerClient;
use crate::identity::AgencyId;
use crate::notice::store::{NoticeStore, NoticeStoreError};
use crate::policy::DisclosureLevel;
use crate::privacy;
use crate::store::keys::{Key, Tree};
use crate::store::{Store, StoreError};
use crate::wake::PeerWake;

const TREE: &str = "watch";
const HIT: &str = "queued deconfliction hit";
/// Longest case contact accepted from a peer.
const MAX_CONTACT: usize = 1_024;
/// Hits one peer may send: one a minute on average, ten at once.
const HITS_PER_DAY: u64 = 24 * 60;
const HIT_BURST: u64 = 10;
/// Query budget keys charged per hit (a hit is an investigation's match).
const HIT_COST: usize = 1;

/// Deconfliction errors.
#[derive(Debug, thiserror::Error)]
pub enum DeconflictError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("tag must be 16 bytes and contact at most 1024")]
    Malformed,
    #[error("no investigation row of ours for you has that tag")]
    NoRow,
    #[error("too many deconfliction hits; retry in {} s", .0.as_secs().max(1))]
    TooMany(std::time::Duration),
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error(transparent)]
    Notices(#[from] NoticeStoreError),
}

impl From<DeconflictError> for tonic::Status {
    fn from(e: DeconflictError) -> Self {
        match e {
            DeconflictError::Store(e) => e.into(),
            DeconflictError::Malformed => Self::invalid_argument(e.to_string()),
            DeconflictError::NoRow => Self::not_found(e.to_string()),
            DeconflictError::TooMany(_) => Self::resource_exhausted(e.to_string()),
            DeconflictError::Budget(e) => e.into(),
            DeconflictError::Notices(e) => e.into(),
        }
    }
}

fn hits_prefix(peer: &AgencyId) -> Key {
    Key::tag(b'h').field(peer.as_str())
}

/// Hits waiting to be told to their peers.
pub struct HitQueue {
    tree: Tree,
}

impl std::fmt::Debug for HitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HitQueue").finish_non_exhaustive()
    }
}

impl HitQueue {
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        Ok(Self {
            tree: Tree::open(store, TREE)?,
        })
    }

    /// Queues a hit for delivery to `peer`.
    pub fn queue(&self, peer: &AgencyId, request: &DeconflictHitRequest) -> Result<(), StoreError> {
        let seq = self.tree.next(Key::name(b"hseq"), HIT)?;
        self.tree
            .insert(hits_prefix(peer).u64(seq), request.encode_to_vec(), HIT)?;
        Ok(())
    }

    /// Hits waiting for `peer`, oldest first, with their keys.
    pub fn pending(
        &self,
        peer: &AgencyId,
    ) -> Result<Vec<(sled::IVec, DeconflictHitRequest)>, StoreError> {
        self.tree.messages(hits_prefix(peer), HIT)
    }

    /// Drops a delivered (or refused) hit.
    pub fn done(&self, key: &[u8]) -> Result<(), StoreError> {
        self.tree.remove(key, HIT)?;
        Ok(())
    }
}

/// Delivers one peer's queued hits, retrying with back-off while it is
/// unreachable. A hit the peer refuses for good (its row is gone, or the
/// request is malformed) is dropped with a warning.
#[derive(Debug)]
pub struct HitDelivery {
    pub peer: AgencyId,
    pub hits: Arc<HitQueue>,
    pub client: Arc<dyn PeerClient>,
    pub wake: Arc<PeerWake>,
    pub retry: RetryPolicy,
}

impl HitDelivery {
    /// Delivers what waits, in order. Returns whether the peer is owed more
    /// (it could not be reached).
    pub async fn deliver_pending(&self) -> Result<bool, StoreError> {
        let peer = &self.peer;
        for (key, request) in self.hits.pending(peer)? {
            match self.client.deconflict_hit(peer, request).await {
                Ok(()) => {}
                Err(e)
                    if matches!(
                        e.code(),
                        tonic::Code::NotFound | tonic::Code::InvalidArgument
                    ) =>
                {
                    tracing::warn!(peer = %peer, reason = %e, "deconfliction hit refused by the peer; dropped");
                }
                Err(e) => {
                    tracing::debug!(peer = %peer, reason = %e, "deconfliction hit not delivered; will retry");
                    return Ok(true);
                }
            }
            self.hits.done(&key)?;
        }
        Ok(false)
    }

    /// The worker: delivers whenever woken, and retries with back-off.
    pub async fn run(self, stop: CancellationToken) {
        let mut pacer = Pacer::new(self.retry, stop);
        loop {
            let round = match self.deliver_pending().await {
                Ok(false) => Round::Idle,
                Ok(true) => Round::Failed,
                Err(error) => {
                    tracing::error!(peer = %self.peer, %error, "cannot read the deconfliction queue");
                    Round::Failed
                }
            };
            if !pacer.pause(round, &self.wake.deconflict).await {
                return;
            }
        }
    }
}

/// Our side of a peer's hit: it found one of our investigation subjects.
#[derive(Debug)]
pub struct Deconfliction {
    agency: AgencyId,
    holder: Arc<HolderIndex>,
    notices: Arc<NoticeStore>,
    budgets: Arc<Budgets>,
    alerts: AlertSink,
    rate: crate::throttle::PerPeerRate,
}

impl Deconfliction {
    pub fn new(
        agency: AgencyId,
        holder: Arc<HolderIndex>,
        notices: Arc<NoticeStore>,
        budgets: Arc<Budgets>,
        alerts: AlertSink,
    ) -> Self {
        Self {
            agency,
            holder,
            notices,
            budgets,
            alerts,
            rate: crate::throttle::PerPeerRate::new(HITS_PER_DAY, HIT_BURST),
        }
    }

    /// A peer says its subject matched our row `tag` (of its index): alert
    /// our unit with the peer's case contact, and nothing else.
    pub fn peer_found(
        &self,
        peer: &AgencyId,
        request: &DeconflictHitRequest,
    ) -> Result<(), DeconflictError> {
        if request.tag.len() != privacy::TAG_LEN || request.contact.len() > MAX_CONTACT {
            return Err(DeconflictError::Malformed);
        }
        self.rate.take(peer).map_err(DeconflictError::TooMany)?;
        self.budgets.charge(peer, HIT_COST)?;
        let serial = self
            .holder
            .serial_for_tag(peer, &request.tag)?
            .ok_or(DeconflictError::NoRow)?;
        let investigation = self
            .notices
            .latest(self.agency.as_str(), &serial)?
            .and_then(|stored| stored.envelope)
            .and_then(|env| tessera_proto::v1::Notice::decode(env.notice.as_slice()).ok())
            .is_some_and(|n| labels::is_local_investigation(&n));
        if !investigation {
            return Err(DeconflictError::NoRow);
        }
        let clean: String = request
            .contact
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let alert = Alert {
            kind: AlertKind::Deconfliction.as_str().into(),
            r#match: Some(Match {
                peer: peer.to_string(),
                origin: self.agency.to_string(),
                serial: serial.clone(),
                contact: format!("as claimed by {peer}: {}", clean.trim()),
                disclosure: DisclosureLevel::Pointer.as_str().into(),
                ..Match::default()
            }),
            ..Alert::default()
        };
        if let Some(a) = self.alerts.matched(peer, alert)? {
            tracing::warn!(alert = a.seq, peer = %peer, serial = %serial, "deconfliction: a peer investigates the same party");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::AlertSink;
    use crate::exchange::fake::{FakePeer, FakePeers, refused};
    use crate::test_support::{agency, temp_store};
    use std::time::Duration;

    fn hit(n: u8) -> DeconflictHitRequest {
        DeconflictHitRequest {
            tag: vec![n; privacy::TAG_LEN],
            contact: format!("desk {n}"),
        }
    }

    #[test]
    fn queued_hits_wait_per_peer_until_done_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (b, c) = (agency("FR-SBDU"), agency("US-BIS"));
        {
            let store = Store::open(dir.path()).unwrap();
            let hits = HitQueue::open(&store).unwrap();
            hits.queue(&b, &hit(1)).unwrap();
            hits.queue(&c, &hit(2)).unwrap();
            hits.queue(&b, &hit(3)).unwrap();
            let pending = hits.pending(&b).unwrap();
            assert_eq!(
                pending.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
                [hit(1), hit(3)]
            );
            hits.done(&pending[0].0).unwrap();
            store.db().flush().unwrap();
        }
        let store = crate::test_support::reopen(dir.path());
        let hits = HitQueue::open(&store).unwrap();
        let left: Vec<_> = hits
            .pending(&b)
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(left, [hit(3)]);
        assert_eq!(hits.pending(&c).unwrap().len(), 1);
    }

    /// An empty hit queue, the peer FR-SBDU, and no script for it yet.
    fn queue() -> (tempfile::TempDir, Arc<HitQueue>, AgencyId, FakePeers) {
        let (dir, store) = temp_store();
        let hits = Arc::new(HitQueue::open(&store).unwrap());
        (dir, hits, agency("FR-SBDU"), FakePeers::new())
    }

    fn delivery(peers: &FakePeers, hits: &Arc<HitQueue>, b: &AgencyId) -> HitDelivery {
        HitDelivery {
            peer: b.clone(),
            hits: hits.clone(),
            client: Arc::new(peers.clone()),
            wake: Arc::default(),
            retry: RetryPolicy::new(Duration::from_millis(250), Duration::from_secs(30)),
        }
    }

    #[test]
    fn hits_are_delivered_in_order_and_wait_while_the_peer_is_down() {
        crate::test_support::run(async {
            let (_dir, hits, b, peers) = queue();
            peers.add(
                &b,
                FakePeer {
                    down: true,
                    ..FakePeer::default()
                },
            );
            hits.queue(&b, &hit(1)).unwrap();
            hits.queue(&b, &hit(2)).unwrap();
            let worker = delivery(&peers, &hits, &b);
            assert!(worker.deliver_pending().await.unwrap(), "owed while down");
            assert_eq!(hits.pending(&b).unwrap().len(), 2);
            peers.update(&b, |p| p.down = false);
            assert!(!worker.deliver_pending().await.unwrap());
            assert_eq!(peers.peer(&b).hits, [hit(1), hit(2)]);
            assert!(hits.pending(&b).unwrap().is_empty());
        });
    }

    #[test]
    fn a_hit_the_peer_refuses_for_good_is_dropped_and_the_next_goes_on() {
        crate::test_support::run(async {
            let (_dir, hits, b, peers) = queue();
            let first = hit(1);
            peers.add(
                &b,
                FakePeer {
                    on_hit: Some(Arc::new(move |r: DeconflictHitRequest| {
                        if r == first {
                            Err(refused(
                                tonic::Code::NotFound,
                                "no row of ours for you has that tag",
                            ))
                        } else {
                            Ok(())
                        }
                    })),
                    ..FakePeer::default()
                },
            );
            hits.queue(&b, &hit(1)).unwrap();
            hits.queue(&b, &hit(2)).unwrap();
            assert!(!delivery(&peers, &hits, &b).deliver_pending().await.unwrap());
            assert!(hits.pending(&b).unwrap().is_empty());
            assert_eq!(peers.peer(&b).hits.len(), 2);
        });
    }

    #[test]
    fn the_worker_retries_with_back_off_until_the_peer_is_back() {
        crate::test_support::run_paused(async {
            let (_dir, hits, b, peers) = queue();
            peers.add(
                &b,
                FakePeer {
                    down: true,
                    ..FakePeer::default()
                },
            );
            hits.queue(&b, &hit(1)).unwrap();
            let stop = CancellationToken::new();
            let task = tokio::spawn(delivery(&peers, &hits, &b).run(stop.clone()));
            // Attempts at 0, then after 250 ms, 500 ms, 1 s (at most: jittered).
            tokio::time::sleep(Duration::from_millis(1_800)).await;
            let tries = peers.peer(&b).calls;
            assert!((4..=8).contains(&tries), "{tries} attempts");
            peers.update(&b, |p| p.down = false);
            tokio::time::sleep(Duration::from_secs(60)).await;
            assert!(hits.pending(&b).unwrap().is_empty());
            stop.cancel();
            task.await.unwrap();
        });
    }

    /// DE-BAFA's side of a hit, with its alerts and audit chain.
    fn our_side(
        store: &Store,
        holder: Arc<HolderIndex>,
        notices: Arc<crate::notice::store::NoticeStore>,
    ) -> (
        Deconfliction,
        Arc<crate::alerts::AlertStore>,
        crate::audit::AuditSink,
    ) {
        let alerts = Arc::new(crate::alerts::AlertStore::open(store).unwrap());
        let audit = crate::test_support::audit_on(store);
        let budgets = Arc::new(crate::matching::budgets::Budgets::new(
            [(agency("FR-SBDU"), (86_400, 100))],
            audit.clone(),
        ));
        let ours = Deconfliction::new(
            agency("DE-BAFA"),
            holder,
            notices,
            budgets,
            AlertSink::new(alerts.clone(), audit.clone()),
        );
        (ours, alerts, audit)
    }

    #[test]
    fn a_peers_hit_on_our_row_alerts_our_unit_with_its_contact_only() {
        let (_dir, store) = temp_store();
        let holder = Arc::new(HolderIndex::open(&store).unwrap());
        let notices =
            Arc::new(crate::notice::store::NoticeStore::open(&store, agency("DE-BAFA")).unwrap());
        let (ours, alerts, audit) = our_side(&store, holder, notices);
        let b = agency("FR-SBDU");
        // No row of ours has that tag, and malformed requests.
        for (request, code) in [
            (hit(1), tonic::Code::NotFound),
            (
                DeconflictHitRequest {
                    tag: vec![1; 15],
                    contact: String::new(),
                },
                tonic::Code::InvalidArgument,
            ),
            (
                DeconflictHitRequest {
                    tag: vec![1; 16],
                    contact: "x".repeat(1_025),
                },
                tonic::Code::InvalidArgument,
            ),
        ] {
            let err = ours.peer_found(&b, &request).unwrap_err();
            assert_eq!(tonic::Status::from(err).code(), code);
        }
        assert!(alerts.after(0).unwrap().is_empty());
        assert!(!crate::test_support::audited(&audit).contains(&"deconfliction_alert".to_owned()));
    }

    #[test]
    fn a_hit_on_our_investigation_row_raises_one_alert_with_the_peers_contact() {
        use crate::matching::holder::{IndexPolicy, Indexer};
        use crate::notice::store::NoticeStore;
        use tessera_proto::v1::{EnforcementNotice, EnforcementType, NoticeStatus, notice::Body};
        let (dir, store) = temp_store();
        let b = agency("FR-SBDU");
        let notices = Arc::new(NoticeStore::open(&store, agency("DE-BAFA")).unwrap());
        let mut subject = crate::test_support::denial(
            "DE-BAFA",
            "S-7",
            "local",
            &[crate::test_support::org("Example Trading FZE", "AE")],
        );
        let Some(Body::Denial(d)) = subject.body.take() else {
            unreachable!()
        };
        subject.body = Some(Body::Enforcement(EnforcementNotice {
            r#type: EnforcementType::InvestigationOpened as i32,
            parties: d.parties,
            contact: "DE desk".into(),
            status: NoticeStatus::InForce as i32,
            ..EnforcementNotice::default()
        }));
        notices
            .writer()
            .append_own(subject, &[], &crate::test_support::signing_key())
            .unwrap();
        let holder = Arc::new(HolderIndex::open(&store).unwrap());
        let indexer = Indexer {
            holder: holder.clone(),
            notices: notices.clone(),
            keys: Arc::new(
                crate::matching::keys::KeyRing::open(dir.path(), std::slice::from_ref(&b)).unwrap(),
            ),
            policy: IndexPolicy {
                levels: [(b.clone(), DisclosureLevel::Full)].into(),
                contact: String::new(),
            },
            agency: agency("DE-BAFA"),
            store: store.clone(),
            wakers: crate::wake::Wakers::default(),
        };
        indexer.index_pending().unwrap();
        let delta = holder.deltas_after(&b, 0).next().unwrap().unwrap();
        let tag = delta.adds[0][..privacy::TAG_LEN].to_vec();
        let (ours, alerts, audit) = our_side(&store, holder, notices);
        let request = DeconflictHitRequest {
            tag,
            contact: "FR desk".into(),
        };
        ours.peer_found(&b, &request).unwrap();
        ours.peer_found(&b, &request).unwrap();
        let raised = alerts.after(0).unwrap();
        assert_eq!(raised.len(), 1, "once per notice and peer");
        let m = raised[0].r#match.clone().unwrap();
        assert_eq!(raised[0].kind, "deconfliction");
        assert_eq!(
            (m.peer.as_str(), m.serial.as_str(), m.contact.as_str()),
            ("FR-SBDU", "S-7", "as claimed by FR-SBDU: FR desk")
        );
        assert_eq!(m.disclosure, "pointer");
        assert!(crate::test_support::audited(&audit).contains(&"deconfliction_alert".to_owned()));
    }
}
