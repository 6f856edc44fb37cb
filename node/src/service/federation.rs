//! The Federation surface (node ↔ node).

use std::sync::Arc;

use tessera_proto::v1::federation_server::Federation;
use tessera_proto::v1::{
    FeedItem, GetNoticeRequest, HelloRequest, HelloResponse, PullNoticesRequest,
    PushNoticesRequest, PushNoticesResponse, SignedNotice,
};
use tonic::{Request, Response, Status};

use crate::context::Context;
use crate::peers::PeerInfo;

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
        _request: Request<PushNoticesRequest>,
    ) -> Result<Response<PushNoticesResponse>, Status> {
        Err(Status::unimplemented(
            "notice exchange is not enabled on this node",
        ))
    }

    type PullNoticesStream = FeedStream;

    async fn pull_notices(
        &self,
        _request: Request<PullNoticesRequest>,
    ) -> Result<Response<Self::PullNoticesStream>, Status> {
        Err(Status::unimplemented(
            "notice exchange is not enabled on this node",
        ))
    }

    async fn get_notice(
        &self,
        _request: Request<GetNoticeRequest>,
    ) -> Result<Response<SignedNotice>, Status> {
        Err(Status::unimplemented(
            "notice exchange is not enabled on this node",
        ))
    }
}
