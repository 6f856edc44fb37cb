//! An in-memory [`PeerClient`] for unit tests: each peer is scripted (what
//! it holds, how it answers, whether it is down, slow or lying) and records
//! what it was sent. No socket, no TLS; time is tokio's, so a slow peer is
//! tested with `tokio::time::pause()`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use tessera_proto::v1::{
    AuditCheckpoint, CardinalityRequest, CardinalityResponse, ConsultAck, DeconflictHitRequest,
    EvaluateRequest, EvaluateResponse, FeedItem, HelloRequest, HelloResponse, IndexDelta, NodeInfo,
    PilotFiguresRequest, PushNoticesRequest, PushNoticesResponse, ReportOverlapRequest,
    ReportOverlapResponse, SignedMessage,
};
use tonic::Code;

use super::client::{PeerClient, PeerError, PeerStream};
use crate::identity::AgencyId;
use crate::privacy::{self, CardinalityHolder, OprfKey};

type Hook<Req, Resp> = Arc<dyn Fn(Req) -> Result<Resp, PeerError> + Send + Sync>;

/// One scripted peer.
#[derive(Clone, Default)]
pub struct FakePeer {
    /// Every call fails as a transport failure.
    pub down: bool,
    /// Every call first waits this long.
    pub delay: Duration,
    /// Every call is refused with this status.
    pub refuse: Option<(Code, String)>,
    /// What Hello answers (`None`: a Hello with no node info).
    pub node: Option<NodeInfo>,
    /// The peer's feed for us; a pull streams the items after the cursor.
    pub feed: Vec<FeedItem>,
    /// The peer's index for us; a pull streams the deltas after the cursor.
    pub index: Vec<IndexDelta>,
    /// A pull stream breaks (UNAVAILABLE) after this many items.
    pub break_stream_after: Option<usize>,
    /// The key Evaluate uses (an honest peer: the key of the index it sent).
    pub key: Option<Arc<OprfKey>>,
    /// Keys the peer still evaluates for us; beyond, RESOURCE_EXHAUSTED.
    pub budget: Option<u64>,
    /// Own notices not yet indexed, as its evaluations report them.
    pub pending: u64,
    /// The peer's set for overlap counting (its match keys).
    pub set: Vec<String>,
    /// What ReportOverlap answers, by the other peer named.
    pub overlaps: BTreeMap<String, u64>,
    /// Answers to pushes, consultation steps and hits (default: accepted).
    pub on_push: Option<Hook<PushNoticesRequest, PushNoticesResponse>>,
    pub on_consult: Option<Hook<SignedMessage, ConsultAck>>,
    pub on_hit: Option<Hook<DeconflictHitRequest, ()>>,
    pub on_cardinality: Option<Hook<CardinalityRequest, CardinalityResponse>>,
    /// What the peer was sent.
    pub pushed: Vec<PushNoticesRequest>,
    pub steps: Vec<SignedMessage>,
    pub hits: Vec<DeconflictHitRequest>,
    pub greeted: usize,
    pub evaluated: u64,
    /// Every call made to the peer, answered or not.
    pub calls: usize,
}

impl std::fmt::Debug for FakePeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePeer")
            .field("down", &self.down)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

/// Scripted peers by agency; an agency not scripted is not configured.
#[derive(Debug, Default, Clone)]
pub struct FakePeers {
    peers: Arc<Mutex<BTreeMap<AgencyId, FakePeer>>>,
}

impl FakePeers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a scripted peer.
    pub fn add(&self, agency: &AgencyId, peer: FakePeer) -> &Self {
        self.lock().insert(agency.clone(), peer);
        self
    }

    /// Changes a scripted peer.
    pub fn update(&self, agency: &AgencyId, f: impl FnOnce(&mut FakePeer)) {
        if let Some(p) = self.lock().get_mut(agency) {
            f(p);
        }
    }

    /// A copy of a scripted peer (to read what it was sent).
    pub fn peer(&self, agency: &AgencyId) -> FakePeer {
        self.lock().get(agency).cloned().unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<AgencyId, FakePeer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits the peer's delay, then checks that it answers at all; `f`
    /// then answers from (and records into) its script.
    async fn call<T>(
        &self,
        agency: &AgencyId,
        f: impl FnOnce(&mut FakePeer) -> Result<T, PeerError>,
    ) -> Result<T, PeerError> {
        let delay = {
            let peers = self.lock();
            let p = peers.get(agency).ok_or_else(|| {
                PeerError::NoChannel(format!("{agency} is not a configured peer"))
            })?;
            p.delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut peers = self.lock();
        let p = peers
            .get_mut(agency)
            .ok_or_else(|| PeerError::NoChannel(format!("{agency} is not a configured peer")))?;
        p.calls += 1;
        if p.down {
            return Err(PeerError::unavailable(
                "connection refused: nothing is listening there (is the node running?)",
            ));
        }
        if let Some((code, message)) = &p.refuse {
            return Err(PeerError::Call {
                code: *code,
                reason: message.clone(),
            });
        }
        f(p)
    }
}

fn items<T: Clone + Send + 'static>(all: Vec<T>, break_after: Option<usize>) -> PeerStream<T> {
    let mut out: Vec<Result<T, PeerError>> = all.into_iter().map(Ok).collect();
    if let Some(n) = break_after {
        out.truncate(n);
        out.push(Err(PeerError::unavailable("the stream broke")));
    }
    futures::stream::iter(out).boxed()
}

#[tonic::async_trait]
impl PeerClient for FakePeers {
    async fn hello(
        &self,
        peer: &AgencyId,
        _request: HelloRequest,
    ) -> Result<HelloResponse, PeerError> {
        self.call(peer, |p| {
            p.greeted += 1;
            Ok(HelloResponse {
                node: p.node.clone(),
            })
        })
        .await
    }

    async fn push_notices(
        &self,
        peer: &AgencyId,
        request: PushNoticesRequest,
    ) -> Result<PushNoticesResponse, PeerError> {
        self.call(peer, |p| {
            p.pushed.push(request.clone());
            match &p.on_push {
                Some(hook) => hook(request),
                None => Ok(PushNoticesResponse {
                    stored: request.items.len() as u32,
                    duplicates: 0,
                }),
            }
        })
        .await
    }

    async fn pull_notices(
        &self,
        peer: &AgencyId,
        after: u64,
    ) -> Result<PeerStream<FeedItem>, PeerError> {
        self.call(peer, |p| {
            let feed = p.feed.iter().filter(|i| i.seq > after).cloned().collect();
            Ok(items(feed, p.break_stream_after))
        })
        .await
    }

    async fn pull_index(
        &self,
        peer: &AgencyId,
        after: u64,
    ) -> Result<PeerStream<IndexDelta>, PeerError> {
        self.call(peer, |p| {
            let deltas = p.index.iter().filter(|d| d.pos > after).cloned().collect();
            Ok(items(deltas, p.break_stream_after))
        })
        .await
    }

    async fn evaluate(
        &self,
        peer: &AgencyId,
        request: EvaluateRequest,
    ) -> Result<EvaluateResponse, PeerError> {
        self.call(peer, |p| {
            let key = p
                .key
                .clone()
                .ok_or_else(|| refused(Code::PermissionDenied, "no index for this peer"))?;
            if request.epoch != key.epoch() {
                return Err(refused(Code::FailedPrecondition, "key epoch is retired"));
            }
            let n = request.blinded.len() as u64;
            if let Some(left) = p.budget.as_mut() {
                if *left < n {
                    return Err(refused(
                        Code::ResourceExhausted,
                        "query budget exhausted: retry in 60 s",
                    ));
                }
                *left -= n;
            }
            p.evaluated += n;
            let (evaluated, proof) = privacy::evaluate_blinded(&key, &request.blinded)
                .map_err(|e| refused(Code::InvalidArgument, &format!("blinded: {e}")))?;
            Ok(EvaluateResponse {
                epoch: key.epoch(),
                evaluated: evaluated.iter().map(|e| e.to_vec()).collect(),
                proof: proof.to_vec(),
                index_position: p.index.iter().map(|d| d.pos).max().unwrap_or(0),
                pending_notices: p.pending,
            })
        })
        .await
    }

    async fn cardinality(
        &self,
        peer: &AgencyId,
        request: CardinalityRequest,
    ) -> Result<CardinalityResponse, PeerError> {
        self.call(peer, |p| {
            if let Some(hook) = &p.on_cardinality {
                return hook(request);
            }
            let holder = CardinalityHolder::new();
            let set = holder
                .holder_set(&p.set)
                .map_err(|e| refused(Code::Internal, &e.to_string()))?;
            let evaluated = holder
                .evaluate_shuffled(&request.blinded)
                .map_err(|e| refused(Code::InvalidArgument, &e.to_string()))?;
            Ok(CardinalityResponse {
                holder_tags: set.tags().iter().map(|t| t.to_vec()).collect(),
                evaluated: evaluated.iter().map(|e| e.to_vec()).collect(),
            })
        })
        .await
    }

    async fn report_overlap(
        &self,
        peer: &AgencyId,
        request: ReportOverlapRequest,
    ) -> Result<ReportOverlapResponse, PeerError> {
        self.call(peer, |p| {
            let count = *p
                .overlaps
                .get(&request.peer)
                .ok_or_else(|| refused(Code::PermissionDenied, "no shared group"))?;
            Ok(ReportOverlapResponse { count, keys: 0 })
        })
        .await
    }

    async fn deconflict_hit(
        &self,
        peer: &AgencyId,
        request: DeconflictHitRequest,
    ) -> Result<(), PeerError> {
        self.call(peer, |p| {
            p.hits.push(request.clone());
            match &p.on_hit {
                Some(hook) => hook(request),
                None => Ok(()),
            }
        })
        .await
    }

    async fn consult(&self, peer: &AgencyId, step: SignedMessage) -> Result<ConsultAck, PeerError> {
        self.call(peer, |p| {
            p.steps.push(step.clone());
            match &p.on_consult {
                Some(hook) => hook(step),
                None => Ok(ConsultAck { duplicate: false }),
            }
        })
        .await
    }

    /// The fake keeps no audit chain: it has no checkpoint to give.
    async fn audit_head(&self, peer: &AgencyId) -> Result<AuditCheckpoint, PeerError> {
        self.call(peer, |_| Err(refused(Code::NotFound, "no checkpoint yet")))
            .await
    }

    async fn held_anchors(&self, peer: &AgencyId) -> Result<Vec<AuditCheckpoint>, PeerError> {
        self.call(peer, |_| Ok(Vec::new())).await
    }

    async fn pilot_figures(
        &self,
        peer: &AgencyId,
        _request: PilotFiguresRequest,
    ) -> Result<SignedMessage, PeerError> {
        self.call(peer, |_| {
            Err(refused(
                Code::Unimplemented,
                "the fake keeps no pilot figures",
            ))
        })
        .await
    }
}

/// A refusal as a peer's status would give it.
pub fn refused(code: Code, message: &str) -> PeerError {
    PeerError::Call {
        code,
        reason: message.to_owned(),
    }
}
