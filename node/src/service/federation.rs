//! The Federation surface (node ↔ node).

use std::sync::Arc;

use tessera_proto::v1::federation_server::Federation;
use tessera_proto::v1::{
    FeedItem, GetNoticeRequest, HelloRequest, HelloResponse, PullNoticesRequest,
    PushNoticesRequest, PushNoticesResponse, SignedNotice,
};
use tonic::{Request, Response, Status};

use crate::context::Context;
use crate::exchange::receive;
use crate::peers::PeerInfo;

/// Most notices accepted in one push.
const MAX_PUSH: usize = 5_000;

/// Federation handlers.
#[derive(Debug, Clone)]
pub struct FederationService {
    pub ctx: Arc<Context>,
}

type FeedStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<FeedItem, Status>> + Send>>;

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
        let items = request.into_inner().items;
        if items.len() > MAX_PUSH {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_PUSH} notices per push"
            )));
        }
        let r = receive::accept(&self.ctx, &caller.agency, &items)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
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
        let caller = super::caller(&request)?.agency.to_string();
        let PullNoticesRequest { after, limit } = request.into_inner();
        let limit = if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        };
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let ctx = self.ctx.clone();
        // sled reads are blocking; walk the feed off the async workers.
        tokio::task::spawn_blocking(move || {
            let mut prev = after;
            let mut sent = 0usize;
            for entry in ctx.notices.feed_after(after) {
                let item = match entry {
                    Ok((seq, stored)) => {
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
}
