//! The Federation surface (node ↔ node): each call is checked by the guard,
//! then handed to the domain worker that owns it; its errors reach the wire
//! through that module's one `From<…> for Status`.

use std::sync::Arc;

use futures::StreamExt;
use tessera_proto::v1::federation_server::Federation;
use tessera_proto::v1::{
    AuditCheckpoint, AuditHeadRequest, CardinalityRequest, CardinalityResponse, ConsultAck,
    DeconflictHitRequest, DeconflictHitResponse, EvaluateRequest, EvaluateResponse, FeedItem,
    GetNoticeRequest, HeldAnchorsRequest, HeldAnchorsResponse, HelloRequest, HelloResponse,
    IndexDelta, IndexInfoRequest, IndexInfoResponse, PullIndexRequest, PullNoticesRequest,
    PushNoticesRequest, PushNoticesResponse, ReportOverlapRequest, ReportOverlapResponse,
    SignedMessage, SignedNotice,
};
use tonic::{Request, Response, Status};

use crate::audit::AuditSink;
use crate::audit::anchor::AnchorStore;
use crate::consult::flow::Consultations;
use crate::exchange::feed::FeedServer;
use crate::exchange::hello::Greeter;
use crate::exchange::receive::Receiver;
use crate::identity::AgencyId;
use crate::matching::deconflict::Deconfliction;
use crate::matching::overlap::Overlap;
use crate::matching::serve::IndexServer;
use crate::service::limits::CallLimits;

/// Federation handlers: one domain worker per concern.
#[derive(Debug, Clone)]
pub struct FederationService {
    pub greeter: Arc<Greeter>,
    pub receiver: Arc<Receiver>,
    pub feed: FeedServer,
    pub index: Arc<IndexServer>,
    pub overlap: Arc<Overlap>,
    pub deconfliction: Arc<Deconfliction>,
    pub consultations: Arc<Consultations>,
    pub pilot: Arc<crate::bloc::report::PilotSource>,
    pub audit: AuditSink,
    pub anchors: Arc<AnchorStore>,
    pub limits: Arc<CallLimits>,
}

/// The caller the guard admitted (its place in its allowance of calls in
/// progress was taken by `limits::PerPeerLayer`).
fn admitted<T>(request: &Request<T>) -> Result<AgencyId, Status> {
    Ok(super::caller(request)?.agency)
}

type Streamed<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Federation for FederationService {
    async fn hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloResponse>, Status> {
        let caller = admitted(&request)?;
        Ok(Response::new(
            self.greeter.answer(&caller, request.into_inner())?,
        ))
    }

    async fn push_notices(
        &self,
        request: Request<PushNoticesRequest>,
    ) -> Result<Response<PushNoticesResponse>, Status> {
        let caller = admitted(&request)?;
        // Verifying and storing a peer's notices is background work.
        let receiver = self.receiver.clone();
        let pushed =
            crate::background::run(
                async move { receiver.push(&caller, request.into_inner()).await },
            )
            .await
            .ok_or_else(|| Status::unavailable("the node is stopping"))?;
        Ok(Response::new(pushed?))
    }

    type PullNoticesStream = Streamed<FeedItem>;

    async fn pull_notices(
        &self,
        request: Request<PullNoticesRequest>,
    ) -> Result<Response<Self::PullNoticesStream>, Status> {
        let caller = admitted(&request)?;
        let PullNoticesRequest { after, limit } = request.into_inner();
        let items = self.feed.pull(&caller, after, limit).await?;
        Ok(Response::new(Box::pin(
            items.map(|i| i.map_err(Status::from)),
        )))
    }

    async fn get_notice(
        &self,
        request: Request<GetNoticeRequest>,
    ) -> Result<Response<SignedNotice>, Status> {
        let caller = admitted(&request)?;
        let serial = request.into_inner().serial;
        Ok(Response::new(self.feed.get(&caller, &serial)?))
    }

    async fn index_info(
        &self,
        request: Request<IndexInfoRequest>,
    ) -> Result<Response<IndexInfoResponse>, Status> {
        let caller = admitted(&request)?;
        Ok(Response::new(self.index.info(&caller)?))
    }

    type PullIndexStream = Streamed<IndexDelta>;

    async fn pull_index(
        &self,
        request: Request<PullIndexRequest>,
    ) -> Result<Response<Self::PullIndexStream>, Status> {
        let caller = admitted(&request)?;
        let deltas = self.index.pull(&caller, request.into_inner().after);
        Ok(Response::new(Box::pin(
            deltas.map(|d| d.map_err(Status::from)),
        )))
    }

    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let caller = admitted(&request)?;
        Ok(Response::new(
            self.index.evaluate(&caller, request.into_inner()).await?,
        ))
    }

    async fn cardinality(
        &self,
        request: Request<CardinalityRequest>,
    ) -> Result<Response<CardinalityResponse>, Status> {
        let caller = admitted(&request)?;
        Ok(Response::new(
            self.overlap
                .cardinality(&caller, request.into_inner())
                .await?,
        ))
    }

    async fn report_overlap(
        &self,
        request: Request<ReportOverlapRequest>,
    ) -> Result<Response<ReportOverlapResponse>, Status> {
        let caller = admitted(&request)?;
        Ok(Response::new(
            self.overlap
                .report_for(&caller, &request.into_inner())
                .await?,
        ))
    }

    async fn deconflict_hit(
        &self,
        request: Request<DeconflictHitRequest>,
    ) -> Result<Response<DeconflictHitResponse>, Status> {
        let caller = admitted(&request)?;
        self.deconfliction
            .peer_found(&caller, &request.into_inner())?;
        Ok(Response::new(DeconflictHitResponse {}))
    }

    async fn consult(
        &self,
        request: Request<SignedMessage>,
    ) -> Result<Response<ConsultAck>, Status> {
        let caller = admitted(&request)?;
        Ok(Response::new(
            self.consultations
                .receive_durably(&caller, &request.into_inner())
                .await?,
        ))
    }

    async fn audit_head(
        &self,
        request: Request<AuditHeadRequest>,
    ) -> Result<Response<AuditCheckpoint>, Status> {
        admitted(&request)?;
        let newest = self.audit.log().newest_checkpoint()?;
        let c = newest.ok_or_else(|| Status::not_found("no audit checkpoint yet"))?;
        Ok(Response::new(AuditCheckpoint::from(&c)))
    }

    async fn held_anchors(
        &self,
        request: Request<HeldAnchorsRequest>,
    ) -> Result<Response<HeldAnchorsResponse>, Status> {
        let caller = admitted(&request)?;
        Ok(Response::new(HeldAnchorsResponse {
            checkpoints: self.anchors.held(&caller)?,
        }))
    }

    async fn pilot_figures(
        &self,
        request: Request<tessera_proto::v1::PilotFiguresRequest>,
    ) -> Result<Response<SignedMessage>, Status> {
        let caller = admitted(&request)?;
        let r = request.into_inner();
        let period = crate::bloc::pilot::Period::parse(&r.from, &r.to)?;
        let signed = self.pilot.for_member(&caller, &r.bloc, period)?;
        tracing::info!(peer = %caller, bloc = %r.bloc, "pilot figures given");
        Ok(Response::new(signed))
    }
}
