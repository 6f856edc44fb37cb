//! The Federation surface (node ↔ node).

use std::sync::Arc;

use tessera_proto::v1::federation_server::Federation;
use tessera_proto::v1::{
    CardinalityRequest, CardinalityResponse, ConsultAck, DeconflictHitRequest,
    DeconflictHitResponse, EvaluateRequest, EvaluateResponse, FeedItem, GetNoticeRequest,
    HelloRequest, HelloResponse, IndexDelta, IndexInfoRequest, IndexInfoResponse, PullIndexRequest,
    PullNoticesRequest, PushNoticesRequest, PushNoticesResponse, ReportOverlapRequest,
    ReportOverlapResponse, SignedMessage, SignedNotice,
};
use tonic::{Request, Response, Status};

use crate::audit::Action;
use crate::context::Context;
use crate::exchange::receive;
use crate::identity::AgencyId;
use crate::peers::PeerInfo;
use crate::privacy::{self, OverBudget};

/// Most notices accepted in one push.
const MAX_PUSH: usize = 5_000;

/// Federation handlers.
#[derive(Debug, Clone)]
pub struct FederationService {
    pub ctx: Arc<Context>,
}

type FeedStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<FeedItem, Status>> + Send>>;
type IndexStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<IndexDelta, Status>> + Send>>;

/// Most elements in one Evaluate or Cardinality call.
const MAX_ELEMENTS: usize = 100_000;

impl FederationService {
    /// Takes `n` keys from `peer`'s budget, or says when to retry.
    fn charge(&self, peer: &AgencyId, n: usize) -> Result<(), Status> {
        let now = tokio::time::Instant::now();
        let mut budgets = self
            .ctx
            .budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(budget) = budgets.get_mut(peer) else {
            return Err(Status::permission_denied("no query budget for this peer"));
        };
        let refused = match budget.try_take(n as u64, now) {
            Ok(()) => return Ok(()),
            Err(OverBudget::RetryAfter(wait)) => {
                let mut status = Status::resource_exhausted(format!(
                    "query budget exhausted: {n} keys asked; retry in {} s",
                    wait.as_secs().max(1)
                ));
                if let Ok(v) = wait.as_millis().to_string().parse() {
                    status.metadata_mut().insert("retry-after-ms", v);
                }
                status
            }
            Err(OverBudget::ExceedsBurst { requested, burst }) => {
                Status::resource_exhausted(format!(
                    "{requested} keys in one call exceed the burst of {burst}; send smaller batches"
                ))
            }
        };
        drop(budgets);
        tracing::warn!(peer = %peer, keys = n, "query budget refusal");
        crate::telemetry::budget_refusal(peer);
        self.ctx.audit_event(
            peer.as_str(),
            Action::BudgetRefused,
            "evaluate",
            &serde_json::json!({ "keys": n }),
        );
        Err(refused)
    }
}

#[tonic::async_trait]
impl Federation for FederationService {
    async fn hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloResponse>, Status> {
        let caller = super::caller(&request)?;
        let node = request
            .into_inner()
            .node
            .ok_or_else(|| Status::invalid_argument("node: missing"))?;
        if node.agency != caller.agency.as_str() {
            return Err(Status::permission_denied(
                "node.agency does not match the agency in your certificate",
            ));
        }
        self.ctx.peers.seen(
            &caller.agency,
            None,
            Some(PeerInfo {
                software_version: node.software_version,
                protocol_version: node.protocol_version,
                signing_key_id: node.signing_key_id,
                capabilities: node.capabilities,
            }),
        );
        Ok(Response::new(HelloResponse {
            node: Some(self.ctx.node_info()),
        }))
    }

    async fn push_notices(
        &self,
        request: Request<PushNoticesRequest>,
    ) -> Result<Response<PushNoticesResponse>, Status> {
        let caller = super::caller(&request)?;
        let PushNoticesRequest {
            items,
            index_pos: request_index_pos,
        } = request.into_inner();
        if items.len() > MAX_PUSH {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_PUSH} notices per push"
            )));
        }
        let index_pos = request_index_pos;
        let r = receive::accept(&self.ctx, &caller.agency, &items)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if index_pos > self.ctx.replicas.cursor(&caller.agency) {
            self.ctx.wakers(&caller.agency).pull.notify_one();
        }
        if let Some((index, reason)) = r.refused.first() {
            return Err(Status::invalid_argument(format!(
                "{} of {} notices refused (the others were stored); first: item {index}: {reason}",
                r.refused.len(),
                items.len()
            )));
        }
        Ok(Response::new(PushNoticesResponse {
            stored: r.stored,
            duplicates: r.duplicates,
        }))
    }

    type PullNoticesStream = FeedStream;

    async fn pull_notices(
        &self,
        request: Request<PullNoticesRequest>,
    ) -> Result<Response<Self::PullNoticesStream>, Status> {
        let agency = super::caller(&request)?.agency;
        let caller = agency.to_string();
        let PullNoticesRequest { after, limit } = request.into_inner();
        let limit = if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        };
        // The caller advances its cursor only once what it pulled is on its
        // disk, so a pull from `after` acknowledges everything up to it:
        // those notices need not be pushed again.
        if after > 0 {
            let ctx = self.ctx.clone();
            let trimmed =
                tokio::task::spawn_blocking(move || ctx.notices.outbox_ack_through(&agency, after))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?
                    .map_err(|e| Status::internal(e.to_string()))?;
            if trimmed > 0 {
                tracing::debug!(peer = %caller, trimmed, "outbox items acknowledged by a pull");
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let ctx = self.ctx.clone();
        // sled reads are blocking; walk the feed off the async workers, in
        // batches, so that no sled iterator stays open while a slow peer
        // holds up the stream (sled's readers and writers share one lock).
        tokio::task::spawn_blocking(move || {
            let mut prev = after;
            let mut cursor = after;
            let mut sent = 0usize;
            loop {
                let batch: Vec<_> = ctx.notices.feed_after(cursor).take(256).collect();
                if batch.is_empty() {
                    if cursor > prev {
                        // A watermark: the entries walked since `prev` are
                        // not for the caller.
                        let _ = tx.blocking_send(Ok(FeedItem {
                            seq: cursor,
                            prev_seq: prev,
                            notice: None,
                        }));
                    }
                    return;
                }
                for entry in batch {
                    let item = match entry {
                        Ok((seq, stored)) => {
                            cursor = seq;
                            if !stored.recipients.contains(&caller) {
                                continue;
                            }
                            let item = FeedItem {
                                seq,
                                prev_seq: prev,
                                notice: stored.envelope,
                            };
                            prev = seq;
                            Ok(item)
                        }
                        Err(e) => Err(Status::internal(e.to_string())),
                    };
                    let failed = item.is_err();
                    if tx.blocking_send(item).is_err() || failed {
                        return;
                    }
                    sent += 1;
                    if sent >= limit {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_notice(
        &self,
        request: Request<GetNoticeRequest>,
    ) -> Result<Response<SignedNotice>, Status> {
        let caller = super::caller(&request)?.agency.to_string();
        let serial = request.into_inner().serial;
        let not_found = || Status::not_found("no such notice for you");
        let stored = self
            .ctx
            .notices
            .latest(self.ctx.agency.as_str(), &serial)
            .map_err(|e| Status::internal(e.to_string()))?
            .ok_or_else(not_found)?;
        if !stored.recipients.contains(&caller) {
            return Err(not_found());
        }
        stored.envelope.map(Response::new).ok_or_else(not_found)
    }

    async fn index_info(
        &self,
        request: Request<IndexInfoRequest>,
    ) -> Result<Response<IndexInfoResponse>, Status> {
        let caller = super::caller(&request)?;
        let key = self
            .ctx
            .keys
            .get(&caller.agency)
            .ok_or_else(|| Status::permission_denied("no index for this peer"))?;
        Ok(Response::new(IndexInfoResponse {
            epoch: key.epoch(),
            public_key: key.public_key_bytes().to_vec(),
        }))
    }

    type PullIndexStream = IndexStream;

    async fn pull_index(
        &self,
        request: Request<PullIndexRequest>,
    ) -> Result<Response<Self::PullIndexStream>, Status> {
        let caller = super::caller(&request)?.agency;
        let after = request.into_inner().after;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || {
            let mut cursor = after;
            loop {
                // Collected per batch: no sled iterator open while sending.
                let batch: Vec<_> = ctx.holder.deltas_after(&caller, cursor).take(16).collect();
                if batch.is_empty() {
                    return;
                }
                for delta in batch {
                    let item = delta.map_err(|e| Status::internal(e.to_string()));
                    if let Ok(d) = &item {
                        cursor = d.pos;
                    }
                    let failed = item.is_err();
                    if tx.blocking_send(item).is_err() || failed {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let caller = super::caller(&request)?.agency;
        let EvaluateRequest { epoch, blinded } = request.into_inner();
        let key = self
            .ctx
            .keys
            .get(&caller)
            .ok_or_else(|| Status::permission_denied("no index for this peer"))?;
        if epoch != key.epoch() {
            return Err(Status::failed_precondition(format!(
                "key epoch {epoch} is retired; the current epoch is {}: pull the index again",
                key.epoch()
            )));
        }
        if blinded.is_empty() || blinded.len() > MAX_ELEMENTS {
            return Err(Status::invalid_argument(format!(
                "blinded: send 1 to {MAX_ELEMENTS} elements"
            )));
        }
        let n = blinded.len();
        self.charge(&caller, n)?;
        let (evaluated, proof) =
            tokio::task::spawn_blocking(move || privacy::evaluate_blinded(&key, &blinded))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| Status::invalid_argument(format!("blinded: {e}")))?;
        tracing::info!(peer = %caller, keys = n, "evaluated");
        crate::telemetry::evaluations(&caller, n as u64);
        self.ctx.audit_event(
            caller.as_str(),
            Action::EvaluationServed,
            "evaluate",
            &serde_json::json!({ "keys": n, "epoch": epoch }),
        );
        Ok(Response::new(EvaluateResponse {
            epoch,
            evaluated: evaluated.iter().map(|e| e.to_vec()).collect(),
            proof: proof.to_vec(),
        }))
    }

    async fn cardinality(
        &self,
        request: Request<CardinalityRequest>,
    ) -> Result<Response<CardinalityResponse>, Status> {
        let caller = super::caller(&request)?.agency;
        let blinded = request.into_inner().blinded;
        if blinded.is_empty() || blinded.len() > MAX_ELEMENTS {
            return Err(Status::invalid_argument(format!(
                "blinded: send 1 to {MAX_ELEMENTS} elements"
            )));
        }
        let n = blinded.len();
        self.charge(&caller, n)?;
        let ctx = self.ctx.clone();
        let who = caller.clone();
        let response = tokio::task::spawn_blocking(move || {
            crate::matching::overlap::answer(&ctx, &who, &blinded)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(Status::invalid_argument)?;
        self.ctx.audit_event(
            caller.as_str(),
            Action::EvaluationServed,
            "cardinality",
            &serde_json::json!({ "keys": n }),
        );
        Ok(Response::new(response))
    }

    async fn report_overlap(
        &self,
        request: Request<ReportOverlapRequest>,
    ) -> Result<Response<ReportOverlapResponse>, Status> {
        let caller = super::caller(&request)?.agency;
        let other: AgencyId = request
            .into_inner()
            .peer
            .parse()
            .map_err(|_| Status::invalid_argument("peer: not an agency id"))?;
        if !self.ctx.peers.contains(&other) || other == caller {
            return Err(Status::permission_denied(format!(
                "{other} is not another peer of this node"
            )));
        }
        let shared_group = self.ctx.config.groups.values().any(|members| {
            members.iter().any(|m| m == caller.as_str())
                && members.iter().any(|m| m == other.as_str())
        });
        if !shared_group {
            return Err(Status::permission_denied(
                "the caller and that peer share no group on this node",
            ));
        }
        let (count, keys) = crate::matching::overlap::with_peer(&self.ctx, &other)
            .await
            .map_err(Status::unavailable)?;
        self.ctx.audit_event(
            caller.as_str(),
            Action::MatchDisclosed,
            "overlap-count",
            &serde_json::json!({ "with": other.as_str(), "count": count }),
        );
        Ok(Response::new(ReportOverlapResponse { count, keys }))
    }

    async fn deconflict_hit(
        &self,
        request: Request<DeconflictHitRequest>,
    ) -> Result<Response<DeconflictHitResponse>, Status> {
        let caller = super::caller(&request)?.agency;
        let DeconflictHitRequest { tag, contact } = request.into_inner();
        if tag.len() != privacy::TAG_LEN || contact.len() > 1_024 {
            return Err(Status::invalid_argument(
                "tag must be 16 bytes and contact at most 1024",
            ));
        }
        let serial = self
            .ctx
            .holder
            .serial_for_tag(&caller, &tag)
            .ok_or_else(|| Status::not_found("no row of ours for you has that tag"))?;
        crate::matching::watch::peer_found_ours(&self.ctx, &caller, &serial, &contact)
            .map_err(Status::internal)?;
        Ok(Response::new(DeconflictHitResponse {}))
    }

    async fn consult(
        &self,
        request: Request<SignedMessage>,
    ) -> Result<Response<ConsultAck>, Status> {
        let caller = super::caller(&request)?.agency;
        let signed = request.into_inner();
        let duplicate =
            crate::consult::flow::receive(&self.ctx, &caller, &signed).map_err(|e| {
                tracing::warn!(peer = %caller, reason = %e, "consultation step refused");
                match e {
                    crate::consult::flow::ConsultError::Unverified(_) => {
                        Status::permission_denied(e.to_string())
                    }
                    crate::consult::flow::ConsultError::NotFound(_) => {
                        Status::not_found(e.to_string())
                    }
                    crate::consult::flow::ConsultError::Store(_) => Status::internal(e.to_string()),
                    _ => Status::invalid_argument(e.to_string()),
                }
            })?;
        self.ctx
            .store
            .flush()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ConsultAck { duplicate }))
    }
}
