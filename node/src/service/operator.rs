//! The Operator surface (own CLI ↔ own node).

use std::sync::Arc;

use tessera_proto::v1::operator_server::Operator;
use tessera_proto::v1::{
    AlertsRequest, AlertsResponse, AuditExportChunk, AuditExportRequest, AuditVerifyRequest,
    AuditVerifyResponse, ChangeNoticeRequest, ConsultDecideRequest, ConsultExtendRequest,
    ConsultListRequest, ConsultListResponse, ConsultOpenRequest, ConsultRespondRequest,
    ConsultShowRequest, ConsultView, HarmoniseRequest, HarmoniseResponse, ImportNoticesRequest,
    ImportNoticesResponse, ImportRefusal, IssueNoticeRequest, IssueNoticeResponse,
    ListNoticesRequest, ListNoticesResponse, Notice, NoticeView, OverlapRequest, OverlapResponse,
    PeerStatus, RotateKeyRequest, RotateKeyResponse, ScreenRequest, ScreenResponse,
    ShowNoticeRequest, ShowNoticeResponse, StatusRequest, StatusResponse, StoredNotice,
    WatchAddRequest, WatchAddResponse, WatchEntry, WatchListRequest, WatchListResponse,
    WatchRemoveRequest, WatchRemoveResponse, change_notice_request, notice::Body,
};
use tessera_proto::v1::{BackupChunk, BackupRequest};
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
        Some(Body::Grant(_)) => "grant",
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
        self.ctx.indexer_wake.notify_one();
        self.ctx.review_wake.notify_one();
        Ok(())
    }
}

/// Most parties in one screening or watch call.
const MAX_PARTIES: usize = 10_000;

fn parties_of(parties: &[tessera_proto::v1::Party]) -> Result<Vec<crate::party::Party>, Status> {
    if parties.is_empty() || parties.len() > MAX_PARTIES {
        return Err(Status::invalid_argument(format!(
            "parties: send 1 to {MAX_PARTIES}"
        )));
    }
    parties
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut p = p.clone();
            if p.kind == 0 {
                p.kind = tessera_proto::v1::PartyKind::Organisation as i32;
            }
            crate::notice::validate::party(&format!("parties[{i}]"), &p)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            Ok(crate::notice::json::party_from_wire(&p))
        })
        .collect()
}

fn peer_arg(ctx: &Context, peer: &str) -> Result<crate::identity::AgencyId, Status> {
    let agency: crate::identity::AgencyId = peer
        .parse()
        .map_err(|_| Status::invalid_argument("peer: not an agency id like FR-SBDU"))?;
    if !ctx.peers.contains(&agency) {
        return Err(Status::invalid_argument(format!(
            "{agency} is not a configured peer"
        )));
    }
    Ok(agency)
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
                    index_rows: self
                        .ctx
                        .replicas
                        .get(&agency)
                        .map_or(0, |r| r.lookup.len() as u64),
                    index_epoch: self.ctx.replicas.get(&agency).map_or(0, |r| r.epoch),
                    served_rows: self.ctx.holder.live_rows(&agency) as u64,
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
        if !matches!(kind.as_str(), "" | "denial" | "enforcement" | "grant") {
            return Err(Status::invalid_argument(
                "kind: use denial, enforcement or grant",
            ));
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

    async fn screen(
        &self,
        request: Request<ScreenRequest>,
    ) -> Result<Response<ScreenResponse>, Status> {
        super::caller(&request)?;
        let parties = parties_of(&request.into_inner().parties)?;
        let started = std::time::Instant::now();
        let response = crate::matching::screen::screen(self.ctx.clone(), &parties).await;
        crate::telemetry::screening(started.elapsed());
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "screening done"
        );
        Ok(Response::new(response))
    }

    async fn watch_add(
        &self,
        request: Request<WatchAddRequest>,
    ) -> Result<Response<WatchAddResponse>, Status> {
        super::caller(&request)?;
        let WatchAddRequest {
            parties,
            reference,
            purpose,
            contact,
        } = request.into_inner();
        let purpose = if purpose.is_empty() {
            "watch".to_owned()
        } else {
            purpose
        };
        if !matches!(purpose.as_str(), "watch" | "investigation") {
            return Err(Status::invalid_argument("purpose: watch or investigation"));
        }
        if purpose == "investigation" && contact.trim().is_empty() {
            return Err(Status::invalid_argument(
                "contact: an investigation needs a case contact pointer",
            ));
        }
        let checked = parties_of(&parties)?;
        let entries: Vec<WatchEntry> = checked
            .iter()
            .map(|p| WatchEntry {
                party: Some(crate::notice::json::party_to_wire(p)),
                reference: reference.clone(),
                purpose: purpose.clone(),
                contact: contact.clone(),
                ..WatchEntry::default()
            })
            .collect();
        if purpose == "investigation" {
            // The subjects become local investigation notices: never
            // replicated, matchable by peers for deconfliction.
            for p in &checked {
                let notice = tessera_proto::v1::Notice {
                    marking: tessera_proto::v1::Marking::Red as i32,
                    distribution: Some(
                        crate::policy::parse_to("local")
                            .map_err(|e| Status::internal(e.to_string()))?,
                    ),
                    body: Some(Body::Enforcement(tessera_proto::v1::EnforcementNotice {
                        r#type: tessera_proto::v1::EnforcementType::InvestigationOpened as i32,
                        parties: vec![tessera_proto::v1::RoledParty {
                            role: tessera_proto::v1::PartyRole::Subject as i32,
                            party: Some(crate::notice::json::party_to_wire(p)),
                        }],
                        contact: contact.clone(),
                        summary: reference.clone(),
                        status: tessera_proto::v1::NoticeStatus::InForce as i32,
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                issue::issue(&self.ctx, notice).map_err(issue_status)?;
            }
            self.commit(&[]).await?;
        }
        let (ids, alerts, unavailable) = crate::matching::watch::add(self.ctx.clone(), entries)
            .await
            .map_err(Status::internal)?;
        Ok(Response::new(WatchAddResponse {
            ids,
            alerts,
            unavailable,
        }))
    }

    async fn watch_list(
        &self,
        request: Request<WatchListRequest>,
    ) -> Result<Response<WatchListResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(WatchListResponse {
            entries: self.ctx.watch.list(),
        }))
    }

    async fn watch_remove(
        &self,
        request: Request<WatchRemoveRequest>,
    ) -> Result<Response<WatchRemoveResponse>, Status> {
        super::caller(&request)?;
        let id = request.into_inner().id;
        match self.ctx.watch.remove(id) {
            Ok(true) => Ok(Response::new(WatchRemoveResponse {})),
            Ok(false) => Err(Status::not_found(format!("no watch entry {id}"))),
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }

    async fn alerts(
        &self,
        request: Request<AlertsRequest>,
    ) -> Result<Response<AlertsResponse>, Status> {
        super::caller(&request)?;
        Ok(Response::new(AlertsResponse {
            alerts: self.ctx.watch.alerts(request.into_inner().after),
        }))
    }

    async fn overlap(
        &self,
        request: Request<OverlapRequest>,
    ) -> Result<Response<OverlapResponse>, Status> {
        super::caller(&request)?;
        let peer = peer_arg(&self.ctx, &request.into_inner().peer)?;
        let (count, keys) = crate::matching::overlap::with_peer(&self.ctx, &peer)
            .await
            .map_err(Status::unavailable)?;
        Ok(Response::new(OverlapResponse { count, keys }))
    }

    async fn harmonise(
        &self,
        request: Request<HarmoniseRequest>,
    ) -> Result<Response<HarmoniseResponse>, Status> {
        super::caller(&request)?;
        let group = request.into_inner().group;
        let response = crate::matching::overlap::harmonise(self.ctx.clone(), &group)
            .await
            .map_err(Status::invalid_argument)?;
        Ok(Response::new(response))
    }

    async fn rotate_key(
        &self,
        request: Request<RotateKeyRequest>,
    ) -> Result<Response<RotateKeyResponse>, Status> {
        super::caller(&request)?;
        let peer = peer_arg(&self.ctx, &request.into_inner().peer)?;
        let key = self
            .ctx
            .keys
            .rotate(&peer)
            .map_err(|e| Status::internal(e.to_string()))?;
        let ctx = self.ctx.clone();
        let p = peer.clone();
        tokio::task::spawn_blocking(move || crate::matching::holder::rebuild_for(&ctx, &p))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(e.to_string()))?;
        self.commit(std::slice::from_ref(&peer)).await?;
        tracing::info!(peer = %peer, epoch = key.epoch(), "OPRF key rotated; index rebuilt");
        Ok(Response::new(RotateKeyResponse { epoch: key.epoch() }))
    }

    async fn audit_verify(
        &self,
        request: Request<AuditVerifyRequest>,
    ) -> Result<Response<AuditVerifyResponse>, Status> {
        super::caller(&request)?;
        let ctx = self.ctx.clone();
        let report =
            tokio::task::spawn_blocking(move || ctx.audit.verify(&[*ctx.signing.public()]))
                .await
                .map_err(|e| Status::internal(e.to_string()))?
                .map_err(|e| Status::data_loss(e.to_string()))?;
        Ok(Response::new(AuditVerifyResponse {
            entries: report.entries,
            checkpoints: report.checkpoints,
            last_checkpoint: report.last_checkpoint.unwrap_or(0),
            head_hash: report.head_hash.map(hex::encode).unwrap_or_default(),
        }))
    }

    async fn consult_open(
        &self,
        request: Request<ConsultOpenRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        crate::consult::flow::open(
            &self.ctx,
            &r.denial_origin,
            &r.denial_serial,
            &r.summary,
            r.days,
        )
        .await
        .map(Response::new)
        .map_err(consult_status)
    }

    async fn consult_list(
        &self,
        request: Request<ConsultListRequest>,
    ) -> Result<Response<ConsultListResponse>, Status> {
        super::caller(&request)?;
        let today = crate::notice::dates::today();
        let consultations = self
            .ctx
            .consults
            .list()
            .map_err(|e| Status::internal(e.to_string()))?
            .into_iter()
            .map(|c| crate::consult::flow::view(&self.ctx, c, today))
            .collect();
        Ok(Response::new(ConsultListResponse { consultations }))
    }

    async fn consult_show(
        &self,
        request: Request<ConsultShowRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let id = request.into_inner().id;
        let c = self
            .ctx
            .consults
            .get(&id)
            .map_err(|e| Status::internal(e.to_string()))?
            .ok_or_else(|| Status::not_found(format!("no consultation {id}")))?;
        Ok(Response::new(crate::consult::flow::view(
            &self.ctx,
            c,
            crate::notice::dates::today(),
        )))
    }

    async fn consult_respond(
        &self,
        request: Request<ConsultRespondRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        crate::consult::flow::respond(&self.ctx, &r.id, &r.answer, &r.text)
            .await
            .map(Response::new)
            .map_err(consult_status)
    }

    async fn consult_extend(
        &self,
        request: Request<ConsultExtendRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        crate::consult::flow::extend(&self.ctx, &r.id, r.days)
            .await
            .map(Response::new)
            .map_err(consult_status)
    }

    async fn consult_decide(
        &self,
        request: Request<ConsultDecideRequest>,
    ) -> Result<Response<ConsultView>, Status> {
        super::caller(&request)?;
        let r = request.into_inner();
        crate::consult::flow::decide(&self.ctx, &r.id, &r.decision, &r.text)
            .await
            .map(Response::new)
            .map_err(consult_status)
    }

    type BackupStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<BackupChunk, Status>> + Send>>;

    async fn backup(
        &self,
        request: Request<BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let caller = super::caller(&request)?;
        tracing::info!(operator = %caller, "backup started");
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || {
            let mut writer = ChunkWriter {
                tx,
                buf: Vec::new(),
                backup: true,
            };
            match crate::backup::write(ctx.store.db(), &ctx.config.data_dir, &mut writer) {
                Ok(summary) => {
                    let _ = std::io::Write::flush(&mut writer);
                    tracing::info!(
                        trees = summary.trees,
                        entries = summary.entries,
                        files = summary.files,
                        "backup written"
                    );
                }
                Err(e) => {
                    let _ = writer
                        .tx
                        .blocking_send(Err(Status::internal(e.to_string())));
                }
            }
        });
        let stream = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            |chunk| chunk.map(|c: AuditExportChunk| BackupChunk { data: c.jsonl }),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    type AuditExportStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<AuditExportChunk, Status>> + Send>>;

    async fn audit_export(
        &self,
        request: Request<AuditExportRequest>,
    ) -> Result<Response<Self::AuditExportStream>, Status> {
        super::caller(&request)?;
        let AuditExportRequest {
            since_seq,
            since_ms,
        } = request.into_inner();
        let since = if since_seq > 0 {
            Some(crate::audit::Since::Seq(since_seq))
        } else if since_ms > 0 {
            Some(crate::audit::Since::Time(since_ms as u64))
        } else {
            None
        };
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let ctx = self.ctx.clone();
        tokio::task::spawn_blocking(move || {
            let mut writer = ChunkWriter {
                tx,
                buf: Vec::new(),
                backup: false,
            };
            let result = ctx.audit.export(since, &mut writer);
            match result {
                Ok(_) => {
                    let _ = std::io::Write::flush(&mut writer);
                }
                Err(e) => {
                    let _ = writer
                        .tx
                        .blocking_send(Err(Status::data_loss(e.to_string())));
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(consult_status)`
fn consult_status(e: crate::consult::flow::ConsultError) -> Status {
    use crate::consult::flow::ConsultError as E;
    match e {
        E::Invalid(_) => Status::invalid_argument(e.to_string()),
        E::NotFound(_) => Status::not_found(e.to_string()),
        E::State(_) => Status::failed_precondition(e.to_string()),
        E::Unverified(_) => Status::permission_denied(e.to_string()),
        E::Store(_) => Status::internal(e.to_string()),
    }
}

/// Streams what `export` writes in chunks of about 64 KiB.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<AuditExportChunk, Status>>,
    buf: Vec<u8>,
    /// Larger chunks for backups.
    backup: bool,
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= if self.backup { 1 << 20 } else { 64 * 1024 } {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let jsonl = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(Ok(AuditExportChunk { jsonl }))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "export cancelled"))
    }
}
