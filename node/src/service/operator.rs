//! The Operator surface (own CLI ↔ own node).

use std::sync::Arc;

use tessera_proto::v1::operator_server::Operator;
use tessera_proto::v1::{
    ChangeNoticeRequest, ImportNoticesRequest, ImportNoticesResponse, ImportRefusal,
    IssueNoticeRequest, IssueNoticeResponse, ListNoticesRequest, ListNoticesResponse, Notice,
    NoticeView, PeerStatus, ShowNoticeRequest, ShowNoticeResponse, StatusRequest, StatusResponse,
    StoredNotice, change_notice_request, notice::Body,
};
use tonic::{Request, Response, Status};

use crate::context::{Context, SOFTWARE_VERSION};
use crate::notice::issue::{self, Change, Imported, IssueError, Issued};

/// Most notices in one import call.
const MAX_IMPORT: usize = 5_000;

#[allow(clippy::needless_pass_by_value)] // used as `map_err(issue_status)`
fn issue_status(e: IssueError) -> Status {
    match e {
        IssueError::Invalid(_) | IssueError::Policy(_) => Status::invalid_argument(e.to_string()),
        IssueError::Exists(_) => Status::already_exists(e.to_string()),
        IssueError::NotFound(_) => Status::not_found(e.to_string()),
        IssueError::Revoked(_) => Status::failed_precondition(e.to_string()),
        IssueError::Store(_) => Status::internal(e.to_string()),
    }
}

fn issued_response(ctx: &Context, i: Issued) -> IssueNoticeResponse {
    IssueNoticeResponse {
        origin: ctx.agency.to_string(),
        serial: i.serial,
        version: i.version,
        seq: i.seq,
        recipients: i.recipients.iter().map(ToString::to_string).collect(),
    }
}

fn view(stored: StoredNotice) -> Option<NoticeView> {
    let envelope = stored.envelope?;
    let notice: Notice = prost::Message::decode(envelope.notice.as_slice()).ok()?;
    Some(NoticeView {
        notice: Some(notice),
        key_id: envelope.key_id,
        recipients: stored.recipients,
        stored_at_ms: stored.stored_at_ms,
    })
}

fn kind_of(n: &Notice) -> &'static str {
    match n.body {
        Some(Body::Denial(_)) => "denial",
        Some(Body::Enforcement(_)) => "enforcement",
        None => "",
    }
}

impl OperatorService {
    /// Flushes, then wakes the outbox workers of `recipients`.
    async fn commit(&self, recipients: &[crate::identity::AgencyId]) -> Result<(), Status> {
        self.ctx
            .store
            .flush()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        self.ctx.wake_push(recipients);
        Ok(())
    }
}

/// Operator handlers.
#[derive(Debug, Clone)]
pub struct OperatorService {
    pub ctx: Arc<Context>,
}

#[tonic::async_trait]
impl Operator for OperatorService {
    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        super::caller(&request)?;
        let peers = self
            .ctx
            .peers
            .snapshot()
            .into_iter()
            .map(|(agency, endpoint, state)| {
                let info = state.info.unwrap_or_default();
                PeerStatus {
                    agency: agency.to_string(),
                    endpoint,
                    reachable: state.reachable,
                    last_seen_ms: state.last_seen_ms,
                    rtt_us: state.rtt.map_or(0, |d| d.as_micros() as u64),
                    last_error: state.last_error.unwrap_or_default(),
                    software_version: info.software_version,
                    protocol_version: info.protocol_version,
                    signing_key_id: info.signing_key_id,
                    capabilities: info.capabilities,
                    outbox: self.ctx.notices.outbox_len(&agency) as u64,
                    cursor: self.ctx.notices.cursor(&agency).unwrap_or(0),
                }
            })
            .collect();
        Ok(Response::new(StatusResponse {
            agency: self.ctx.agency.to_string(),
            software_version: SOFTWARE_VERSION.into(),
            protocol_version: tessera_proto::PROTOCOL_VERSION,
            signing_key_id: self.ctx.signing.public().key_id(),
            federation_address: self.ctx.federation_addr.to_string(),
            peers,
            started_at: self.ctx.started_at,
            notices_by_origin: self
                .ctx
                .notices
                .counts()
                .map_err(|e| Status::internal(e.to_string()))?
                .into_iter()
                .collect(),
        }))
    }

    async fn issue_notice(
        &self,
        request: Request<IssueNoticeRequest>,
    ) -> Result<Response<IssueNoticeResponse>, Status> {
        super::caller(&request)?;
        let notice = request
            .into_inner()
            .notice
            .ok_or_else(|| Status::invalid_argument("notice: missing"))?;
        let issued = issue::issue(&self.ctx, notice).map_err(issue_status)?;
        self.commit(&issued.recipients).await?;
        tracing::info!(serial = %issued.serial, version = issued.version, recipients = issued.recipients.len(), "notice issued");
        Ok(Response::new(issued_response(&self.ctx, issued)))
    }

    async fn import_notices(
        &self,
        request: Request<ImportNoticesRequest>,
    ) -> Result<Response<ImportNoticesResponse>, Status> {
        super::caller(&request)?;
        let notices = request.into_inner().notices;
        if notices.len() > MAX_IMPORT {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_IMPORT} notices per import call"
            )));
        }
        let mut out = ImportNoticesResponse::default();
        let mut touched = std::collections::BTreeSet::new();
        for (index, notice) in notices.into_iter().enumerate() {
            match issue::import(&self.ctx, notice) {
                Ok(Imported::Created(i)) => {
                    out.created += 1;
                    touched.extend(i.recipients);
                }
                Ok(Imported::Updated(i)) => {
                    out.updated += 1;
                    touched.extend(i.recipients);
                }
                Ok(Imported::Unchanged) => out.unchanged += 1,
                Err(IssueError::Store(e)) => return Err(Status::internal(e.to_string())),
                Err(e) => out.refused.push(ImportRefusal {
                    index: index as u32,
                    reason: e.to_string(),
                }),
            }
        }
        let touched: Vec<_> = touched.into_iter().collect();
        self.commit(&touched).await?;
        tracing::info!(
            created = out.created,
            updated = out.updated,
            unchanged = out.unchanged,
            refused = out.refused.len(),
            "notices imported"
        );
        Ok(Response::new(out))
    }

    async fn change_notice(
        &self,
        request: Request<ChangeNoticeRequest>,
    ) -> Result<Response<IssueNoticeResponse>, Status> {
        super::caller(&request)?;
        let ChangeNoticeRequest { serial, change } = request.into_inner();
        let change = match change {
            Some(change_notice_request::Change::Amend(n)) => Change::Amend(Box::new(n)),
            Some(change_notice_request::Change::RenewUntil(d)) => Change::Renew(Some(d)),
            Some(change_notice_request::Change::RevokeReason(r)) => Change::Revoke(r),
            None => {
                return Err(Status::invalid_argument(
                    "change: missing (amend, renew or revoke)",
                ));
            }
        };
        let issued = issue::change(&self.ctx, &serial, change).map_err(issue_status)?;
        self.commit(&issued.recipients).await?;
        tracing::info!(serial = %issued.serial, version = issued.version, "notice changed");
        Ok(Response::new(issued_response(&self.ctx, issued)))
    }

    async fn list_notices(
        &self,
        request: Request<ListNoticesRequest>,
    ) -> Result<Response<ListNoticesResponse>, Status> {
        super::caller(&request)?;
        let ListNoticesRequest {
            origin,
            kind,
            limit,
        } = request.into_inner();
        if !matches!(kind.as_str(), "" | "denial" | "enforcement") {
            return Err(Status::invalid_argument("kind: use denial or enforcement"));
        }
        let stored = self
            .ctx
            .notices
            .list_latest((!origin.is_empty()).then_some(origin.as_str()))
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut notices: Vec<NoticeView> = stored
            .into_iter()
            .filter_map(view)
            .filter(|v| kind.is_empty() || v.notice.as_ref().is_some_and(|n| kind_of(n) == kind))
            .collect();
        let total = notices.len() as u64;
        if limit > 0 {
            notices.truncate(limit as usize);
        }
        Ok(Response::new(ListNoticesResponse { notices, total }))
    }

    async fn show_notice(
        &self,
        request: Request<ShowNoticeRequest>,
    ) -> Result<Response<ShowNoticeResponse>, Status> {
        super::caller(&request)?;
        let ShowNoticeRequest { origin, serial } = request.into_inner();
        let versions: Vec<NoticeView> = self
            .ctx
            .notices
            .versions(&origin, &serial)
            .map_err(|e| Status::internal(e.to_string()))?
            .into_iter()
            .filter_map(view)
            .collect();
        if versions.is_empty() {
            return Err(Status::not_found(format!(
                "no notice {origin}/{serial} on this node"
            )));
        }
        Ok(Response::new(ShowNoticeResponse { versions }))
    }
}
