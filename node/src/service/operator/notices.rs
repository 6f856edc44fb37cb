//! Notices from the operator: issue, import, change (amend, renew, revoke),
//! list and show. What is issued is durable before the call returns.

use std::collections::BTreeSet;
use std::sync::Arc;

use tessera_proto::v1::{
    ChangeNoticeRequest, ImportNoticesRequest, ImportNoticesResponse, ImportRefusal,
    IssueNoticeRequest, IssueNoticeResponse, ListNoticesRequest, ListNoticesResponse, Notice,
    NoticeView, ShowNoticeRequest, ShowNoticeResponse, StoredNotice, change_notice_request,
};
use tonic::Status;

use crate::notice::NoticeKind;
use crate::notice::issue::{Change, Imported, IssueError, Issued, Issuer};
use crate::notice::store::NoticeStore;

/// Most notices in one import call.
const MAX_IMPORT: usize = 5_000;

/// The notice calls' handles.
#[derive(Debug)]
pub struct NoticeDesk {
    pub issuer: Arc<Issuer>,
    pub notices: Arc<NoticeStore>,
}

pub(crate) fn view(stored: StoredNotice) -> Option<NoticeView> {
    let envelope = stored.envelope?;
    let notice: Notice = prost::Message::decode(envelope.notice.as_slice()).ok()?;
    Some(NoticeView {
        notice: Some(notice),
        key_id: envelope.key_id,
        recipients: stored.recipients,
        stored_at_ms: stored.stored_at_ms,
    })
}

/// Imports `notices` one by one: the counts, and the peers whose feed changed.
fn import_all(
    issuer: &Issuer,
    notices: Vec<Notice>,
) -> Result<(ImportNoticesResponse, Vec<crate::identity::AgencyId>), Status> {
    let mut out = ImportNoticesResponse::default();
    let mut touched = BTreeSet::new();
    for (index, notice) in notices.into_iter().enumerate() {
        match issuer.import(notice) {
            Ok(Imported::Created(i)) => {
                out.created += 1;
                touched.extend(i.recipients);
            }
            Ok(Imported::Updated(i)) => {
                out.updated += 1;
                touched.extend(i.recipients);
            }
            Ok(Imported::Unchanged) => out.unchanged += 1,
            Err(e @ IssueError::Store(_)) => return Err(e.into()),
            Err(e) => out.refused.push(ImportRefusal {
                index: index as u32,
                reason: e.to_string(),
            }),
        }
    }
    Ok((out, touched.into_iter().collect()))
}

impl NoticeDesk {
    fn response(&self, i: Issued) -> IssueNoticeResponse {
        IssueNoticeResponse {
            origin: self.issuer.agency().to_string(),
            serial: i.serial,
            version: i.version,
            seq: i.seq,
            recipients: i.recipients.iter().map(ToString::to_string).collect(),
        }
    }

    pub async fn issue(&self, request: IssueNoticeRequest) -> Result<IssueNoticeResponse, Status> {
        let notice = request
            .notice
            .ok_or_else(|| Status::invalid_argument("notice: missing"))?;
        let issued = self.issuer.issue(notice)?;
        self.issuer.publish(&issued.recipients).await?;
        tracing::info!(serial = %issued.serial, version = issued.version, recipients = issued.recipients.len(), "notice issued");
        Ok(self.response(issued))
    }

    pub async fn import(
        &self,
        request: ImportNoticesRequest,
    ) -> Result<ImportNoticesResponse, Status> {
        let notices = request.notices;
        if notices.len() > MAX_IMPORT {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_IMPORT} notices per import call"
            )));
        }
        // Signing and storing thousands of notices is background work: off the async
        // workers, below the calls someone waits on.
        let issuer = self.issuer.clone();
        let imported = crate::background::spawn_blocking(move || import_all(&issuer, notices))
            .await
            .map_err(|_| Status::unavailable("the import stopped before it finished"))?;
        let (out, touched) = imported?;
        self.issuer.publish(&touched).await?;
        tracing::info!(
            created = out.created,
            updated = out.updated,
            unchanged = out.unchanged,
            refused = out.refused.len(),
            "notices imported"
        );
        Ok(out)
    }

    pub async fn change(
        &self,
        request: ChangeNoticeRequest,
    ) -> Result<IssueNoticeResponse, Status> {
        let ChangeNoticeRequest { serial, change } = request;
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
        let issued = self.issuer.change(&serial, change)?;
        self.issuer.publish(&issued.recipients).await?;
        tracing::info!(serial = %issued.serial, version = issued.version, "notice changed");
        Ok(self.response(issued))
    }

    pub fn list(&self, request: &ListNoticesRequest) -> Result<ListNoticesResponse, Status> {
        let kind: Option<NoticeKind> = match request.kind.as_str() {
            "" => None,
            word => Some(word.parse()?),
        };
        let origin = (!request.origin.is_empty()).then_some(request.origin.as_str());
        let mut notices: Vec<NoticeView> = self
            .notices
            .list_latest(origin)?
            .into_iter()
            .filter_map(view)
            .filter(|v| {
                kind.is_none() || v.notice.as_ref().is_some_and(|n| NoticeKind::of(n) == kind)
            })
            .collect();
        let total = notices.len() as u64;
        if request.limit > 0 {
            notices.truncate(request.limit as usize);
        }
        Ok(ListNoticesResponse { notices, total })
    }

    pub fn show(&self, request: &ShowNoticeRequest) -> Result<ShowNoticeResponse, Status> {
        let ShowNoticeRequest { origin, serial } = request;
        let versions: Vec<NoticeView> = self
            .notices
            .versions(origin, serial)?
            .into_iter()
            .filter_map(view)
            .collect();
        if versions.is_empty() {
            return Err(Status::not_found(format!(
                "no notice {origin}/{serial} on this node"
            )));
        }
        Ok(ShowNoticeResponse { versions })
    }
}
