//! The Operator surface (own CLI ↔ own node). Each call is checked by the
//! guard, then handed to the part of this service that owns its concern:
//!
//! - [`status`]: the node and its peers;
//! - [`notices`]: issuing, importing, changing, listing, showing notices;
//! - [`matching`]: screening, the watch list, alerts, overlap counts, key rotation;
//! - consultations: `consult::flow::Consultations`, called directly;
//! - [`review`]: false positives (left out of screening results here) and alert reviews;
//! - [`admin`]: the audit chain and backups.

pub mod admin;
pub mod bloc;
pub mod matching;
pub mod notices;
pub mod review;
pub mod status;

use std::sync::Arc;

use tessera_proto::v1::operator_server::Operator;
use tessera_proto::v1::{
    AlertReview, AlertReviewsRequest, AlertReviewsResponse, AlertsRequest, AlertsResponse,
    ApplicationCheckRequest, ApplicationCheckResponse, ApplicationDecideRequest,
    ApplicationDecideResponse, AuditExportChunk, AuditExportRequest, AuditVerifyRequest,
    AuditVerifyResponse, BackupChunk, BackupRequest, BlocSignRequest, BlocStatusRequest,
    BlocStatusResponse, ChangeNoticeRequest, ClearFalsePositiveRequest, ClearFalsePositiveResponse,
    ConsultDecideRequest, ConsultExtendRequest, ConsultInformRequest, ConsultListRequest,
    ConsultListResponse, ConsultOpenRequest, ConsultRespondRequest, ConsultShowRequest,
    ConsultView, FalsePositive, HarmoniseRequest, HarmoniseResponse, ImportNoticesRequest,
    ImportNoticesResponse, IssueNoticeRequest, IssueNoticeResponse, ListFalsePositivesRequest,
    ListFalsePositivesResponse, ListNoticesRequest, ListNoticesResponse, MarkFalsePositiveRequest,
    OverlapRequest, OverlapResponse, PilotAnnualRequest, PilotAnnualResponse, PilotReportRequest,
    PilotReportResponse, ReviewAlertRequest, RotateKeyRequest, RotateKeyResponse, ScreenRequest,
    ScreenResponse, ShowNoticeRequest, ShowNoticeResponse, StatusRequest, StatusResponse,
    TrustedChangeRequest, TrustedListRequest, TrustedListResponse, WatchAddRequest,
    WatchAddResponse, WatchListRequest, WatchListResponse, WatchRemoveRequest, WatchRemoveResponse,
};
use tonic::{Request, Response, Status};

use crate::consult::flow::Consultations;

/// Operator handlers, by concern.
#[derive(Debug, Clone)]
pub struct OperatorService {
    pub status: Arc<status::NodeStatus>,
    pub notices: Arc<notices::NoticeDesk>,
    pub matching: Arc<matching::MatchingDesk>,
    pub consultations: Arc<Consultations>,
    pub review: Arc<review::ReviewDesk>,
    pub admin: Arc<admin::AdminDesk>,
    pub bloc: Arc<bloc::BlocDesk>,
}

type Streamed<T> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.status.report()?))
    }

    async fn issue_notice(
        &self,
        request: Request<IssueNoticeRequest>,
    ) -> Result<Response<IssueNoticeResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.notices.issue(request.into_inner()).await?,
        ))
    }

    async fn import_notices(
        &self,
        request: Request<ImportNoticesRequest>,
    ) -> Result<Response<ImportNoticesResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.notices.import(request.into_inner()).await?,
        ))
    }

    async fn change_notice(
        &self,
        request: Request<ChangeNoticeRequest>,
    ) -> Result<Response<IssueNoticeResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.notices.change(request.into_inner()).await?,
        ))
    }

    async fn list_notices(
        &self,
        request: Request<ListNoticesRequest>,
    ) -> Result<Response<ListNoticesResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.notices.list(&request.into_inner())?))
    }

    async fn show_notice(
        &self,
        request: Request<ShowNoticeRequest>,
    ) -> Result<Response<ShowNoticeResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.notices.show(&request.into_inner())?))
    }

    async fn screen(
        &self,
        request: Request<ScreenRequest>,
    ) -> Result<Response<ScreenResponse>, Status> {
        super::caller(&request)?;
        let request = request.into_inner();
        let mut response = self.matching.screen(&request).await?;
        self.review.suppress(&request.parties, &mut response)?;
        Ok(Response::new(response))
    }

    async fn watch_add(
        &self,
        request: Request<WatchAddRequest>,
    ) -> Result<Response<WatchAddResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.matching.watch_add(request.into_inner()).await?,
        ))
    }

    async fn watch_list(
        &self,
        request: Request<WatchListRequest>,
    ) -> Result<Response<WatchListResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.matching.watch_list()?))
    }

    async fn watch_remove(
        &self,
        request: Request<WatchRemoveRequest>,
    ) -> Result<Response<WatchRemoveResponse>, Status> {
        super::caller(&request)?;
        self.matching.watch_remove(request.into_inner().id)?;
        Ok(Response::new(WatchRemoveResponse {}))
    }

    async fn alerts(
        &self,
        request: Request<AlertsRequest>,
    ) -> Result<Response<AlertsResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.matching.alerts(request.into_inner().after)?,
        ))
    }

    async fn overlap(
        &self,
        request: Request<OverlapRequest>,
    ) -> Result<Response<OverlapResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.matching.overlap(&request.into_inner().peer).await?,
        ))
    }

    async fn harmonise(
        &self,
        request: Request<HarmoniseRequest>,
    ) -> Result<Response<HarmoniseResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.matching.harmonise(&request.into_inner().group).await?,
        ))
    }

    async fn rotate_key(
        &self,
        request: Request<RotateKeyRequest>,
    ) -> Result<Response<RotateKeyResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.matching.rotate_key(&request.into_inner().peer).await?,
        ))
    }

    async fn audit_verify(
        &self,
        request: Request<AuditVerifyRequest>,
    ) -> Result<Response<AuditVerifyResponse>, Status> {
        super::caller(&request)?;
        let against_peers = request.into_inner().against_peers;
        Ok(Response::new(self.admin.audit_verify(against_peers).await?))
    }

    async fn consult_open(
        &self,
        request: Request<ConsultOpenRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        let view = self
            .consultations
            .open(&r.denial_origin, &r.denial_serial, &r.summary, r.days)
            .await?;
        Ok(Response::new(view))
    }

    async fn consult_list(
        &self,
        request: Request<ConsultListRequest>,
    ) -> Result<Response<ConsultListResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(ConsultListResponse {
            consultations: self.consultations.list()?,
        }))
    }

    async fn consult_show(
        &self,
        request: Request<ConsultShowRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.consultations.show(&request.into_inner().id)?,
        ))
    }

    async fn consult_respond(
        &self,
        request: Request<ConsultRespondRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        let view = self
            .consultations
            .respond(&r.id, &r.answer, &r.text)
            .await?;
        Ok(Response::new(view))
    }

    async fn consult_extend(
        &self,
        request: Request<ConsultExtendRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        Ok(Response::new(
            self.consultations.extend(&r.id, r.days).await?,
        ))
    }

    async fn consult_decide(
        &self,
        request: Request<ConsultDecideRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        let view = self
            .consultations
            .decide(&r.id, &r.decision, &r.text)
            .await?;
        Ok(Response::new(view))
    }

    async fn consult_inform(
        &self,
        request: Request<ConsultInformRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        Ok(Response::new(
            self.consultations.inform(&r.id, &r.text).await?,
        ))
    }

    async fn mark_false_positive(
        &self,
        request: Request<MarkFalsePositiveRequest>,
    ) -> Result<Response<FalsePositive>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.review.mark(request.into_inner())?))
    }

    async fn clear_false_positive(
        &self,
        request: Request<ClearFalsePositiveRequest>,
    ) -> Result<Response<ClearFalsePositiveResponse>, Status> {
        super::caller(&request)?;
        self.review.clear(&request.into_inner())?;
        Ok(Response::new(ClearFalsePositiveResponse {}))
    }

    async fn list_false_positives(
        &self,
        request: Request<ListFalsePositivesRequest>,
    ) -> Result<Response<ListFalsePositivesResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.review.list()?))
    }

    async fn review_alert(
        &self,
        request: Request<ReviewAlertRequest>,
    ) -> Result<Response<AlertReview>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.review.review_alert(&request.into_inner())?,
        ))
    }

    async fn alert_reviews(
        &self,
        request: Request<AlertReviewsRequest>,
    ) -> Result<Response<AlertReviewsResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.review.alert_reviews()?))
    }

    async fn bloc_sign(
        &self,
        request: Request<BlocSignRequest>,
    ) -> Result<Response<IssueNoticeResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.bloc.sign(request.into_inner()).await?))
    }

    async fn bloc_status(
        &self,
        request: Request<BlocStatusRequest>,
    ) -> Result<Response<BlocStatusResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.bloc.status(&request.into_inner().bloc)?))
    }

    async fn trusted_change(
        &self,
        request: Request<TrustedChangeRequest>,
    ) -> Result<Response<IssueNoticeResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.bloc.trusted_change(request.into_inner()).await?,
        ))
    }

    async fn trusted_list(
        &self,
        request: Request<TrustedListRequest>,
    ) -> Result<Response<TrustedListResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.bloc.trusted_list(&request.into_inner().origin)?,
        ))
    }

    async fn application_check(
        &self,
        request: Request<ApplicationCheckRequest>,
    ) -> Result<Response<ApplicationCheckResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.bloc.check(request.into_inner()).await?))
    }

    async fn application_decide(
        &self,
        request: Request<ApplicationDecideRequest>,
    ) -> Result<Response<ApplicationDecideResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(self.bloc.decide(&request.into_inner())?))
    }

    async fn pilot_report(
        &self,
        request: Request<PilotReportRequest>,
    ) -> Result<Response<PilotReportResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.bloc.pilot_report(&request.into_inner()).await?,
        ))
    }

    async fn pilot_annual(
        &self,
        request: Request<PilotAnnualRequest>,
    ) -> Result<Response<PilotAnnualResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(
            self.bloc.pilot_annual(&request.into_inner())?,
        ))
    }

    type BackupStream = Streamed<BackupChunk>;

    async fn backup(
        &self,
        request: Request<BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let caller = super::caller(&request)?;
        tracing::info!(operator = %caller, "backup started");
        Ok(Response::new(Box::pin(self.admin.backup())))
    }

    type AuditExportStream = Streamed<AuditExportChunk>;

    async fn audit_export(
        &self,
        request: Request<AuditExportRequest>,
    ) -> Result<Response<Self::AuditExportStream>, Status> {
        super::caller(&request)?;
        Ok(Response::new(Box::pin(
            self.admin.audit_export(&request.into_inner()),
        )))
    }
}
