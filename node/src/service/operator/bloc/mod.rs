//! Regional blocs from the operator: signing a charter and its status,
//! trusted-operator records, the application check, decisions and the pilot
//! report. The check screens through the same path as `Operator.Screen`
//! ([`MatchingDesk::screen`]) and judges matched denials with the charter's
//! rule; it never logs a party.
//!
//! Layout: this file (the desk, charters, trusted-operator records),
//! `check` (the application check and decisions), `report` (the pilot report
//! and the annual-report export).

mod check;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tessera_proto::v1::{
    BlocSignRequest, BlocStatusResponse, CharterVersionView, IssueNoticeResponse, Marking, Notice,
    NoticeView, TrustedChangeRequest, TrustedListResponse, notice::Body,
};
use tonic::Status;

use super::matching::MatchingDesk;
use super::notices::view;
use crate::bloc::BlocError;
use crate::bloc::applications::ApplicationBook;
use crate::bloc::charter;
use crate::bloc::charters::{Charters, notice_of};
use crate::bloc::report::PilotSource;
use crate::bloc::trusted;
use crate::consult::flow::Consultations;
use crate::exchange::client::PeerClient;
use crate::identity::AgencyId;
use crate::notice::issue::{Change, Imported, Issued, Issuer};
use crate::peers::PinnedKeys;
use crate::policy::DisclosureLevel;

/// The bloc calls' handles.
#[derive(Debug)]
pub struct BlocDesk {
    pub charters: Arc<Charters>,
    pub applications: Arc<ApplicationBook>,
    pub pilot: Arc<PilotSource>,
    pub matching: Arc<MatchingDesk>,
    pub consultations: Arc<Consultations>,
    pub issuer: Arc<Issuer>,
    pub client: Arc<dyn PeerClient>,
    pub pinned: PinnedKeys,
    /// `[groups]` of this node's configuration.
    pub groups: BTreeMap<String, Vec<String>>,
    /// The disclosure level this node grants each peer.
    pub disclosure: BTreeMap<AgencyId, DisclosureLevel>,
}

fn invalid(s: impl Into<String>) -> Status {
    Status::invalid_argument(s.into())
}

impl BlocDesk {
    fn me(&self) -> &AgencyId {
        &self.charters.agency
    }

    fn response(&self, i: Issued) -> IssueNoticeResponse {
        IssueNoticeResponse {
            origin: self.me().to_string(),
            serial: i.serial,
            version: i.version,
            seq: i.seq,
            recipients: i.recipients.iter().map(ToString::to_string).collect(),
        }
    }

    /// What differs between a charter's members and `[groups]`.
    fn group_problem(&self, bloc: &str, members: &[String]) -> Option<String> {
        let Some(group) = self.groups.get(bloc) else {
            return Some(format!(
                "bloc {bloc:?} is not a group in this node's [groups]: the charter and the bloc's records would reach nobody"
            ));
        };
        let mut configured: BTreeSet<&str> = group.iter().map(String::as_str).collect();
        configured.insert(self.me().as_str());
        let listed: BTreeSet<&str> = members.iter().map(String::as_str).collect();
        if configured == listed {
            return None;
        }
        let only_charter: Vec<&str> = listed.difference(&configured).copied().collect();
        let only_group: Vec<&str> = configured.difference(&listed).copied().collect();
        Some(format!(
            "[groups] {bloc} and the charter's members differ (only in the charter: {}; only in [groups]: {})",
            if only_charter.is_empty() {
                "none".into()
            } else {
                only_charter.join(", ")
            },
            if only_group.is_empty() {
                "none".into()
            } else {
                only_group.join(", ")
            },
        ))
    }

    /// Signs a charter: this member's charter notice to the bloc's group.
    pub async fn sign(&self, request: BlocSignRequest) -> Result<IssueNoticeResponse, Status> {
        let c = charter::canonical(&request.charter.ok_or_else(|| invalid("charter: missing"))?);
        charter::bloc_name("charter.bloc", &c.bloc)?;
        if let Some(problem) = self.group_problem(&c.bloc, &c.members) {
            return Err(invalid(problem));
        }
        let notice = Notice {
            serial: charter::serial(&c.bloc, c.charter_version),
            marking: Marking::Green as i32,
            distribution: Some(
                crate::policy::parse_to(&format!("group:{}", c.bloc))
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            body: Some(Body::Charter(c.clone())),
            ..Notice::default()
        };
        let serial = notice.serial.clone();
        let issued = match self.issuer.import(notice)? {
            Imported::Created(i) | Imported::Updated(i) => i,
            Imported::Unchanged => {
                let latest = self
                    .charters
                    .notices
                    .latest_entry(self.me().as_str(), &serial)
                    .map_err(Status::from)?
                    .map_or(0, |l| l.version);
                return Ok(self.response(Issued {
                    serial,
                    version: latest,
                    seq: 0,
                    recipients: Vec::new(),
                }));
            }
        };
        self.issuer.publish(&issued.recipients).await?;
        tracing::info!(bloc = %c.bloc, version = c.charter_version, "bloc charter signed");
        // A charter this signature completes comes into force here now (audited).
        let _ = self.charters.in_force(&c.bloc);
        Ok(self.response(issued))
    }

    /// Every version of a bloc's charter this node holds.
    pub fn status(&self, bloc: &str) -> Result<BlocStatusResponse, Status> {
        charter::bloc_name("bloc", bloc)?;
        let versions = self.charters.versions(bloc)?;
        if versions.is_empty() {
            return Err(BlocError::NoCharter(bloc.to_owned()).into());
        }
        let in_force = match self.charters.in_force(bloc) {
            Ok(t) => t.charter.charter_version,
            Err(BlocError::Unsigned { .. } | BlocError::NotMember { .. }) => 0,
            Err(e) => return Err(e.into()),
        };
        let mut warnings = Vec::new();
        if let Some(t) = versions
            .iter()
            .find(|t| t.charter.charter_version == in_force)
        {
            warnings.extend(self.group_problem(bloc, &t.charter.members));
            let wanted = DisclosureLevel::ALL
                .into_iter()
                .find(|l| l.as_str() == t.charter.disclosure);
            for m in &t.charter.members {
                let Ok(peer) = m.parse::<AgencyId>() else {
                    continue;
                };
                if peer == *self.me() {
                    continue;
                }
                match (self.disclosure.get(&peer), wanted) {
                    (None, _) => {
                        warnings.push(format!("{m} is not a configured peer of this node"));
                    }
                    (Some(have), Some(want)) if *have < want => warnings.push(format!(
                        "this node grants {m} {} disclosure, below the charter's {}",
                        have.as_str(),
                        want.as_str()
                    )),
                    _ => {}
                }
            }
        }
        Ok(BlocStatusResponse {
            bloc: bloc.to_owned(),
            in_force,
            versions: versions
                .into_iter()
                .rev()
                .map(|t| CharterVersionView {
                    hash: hex::encode(t.hash),
                    complete: t.complete(),
                    signed: t.signed,
                    missing: t.missing,
                    charter: Some(t.charter),
                })
                .collect(),
            warnings,
        })
    }

    /// Suspends, reinstates or revokes one of this member's records.
    pub async fn trusted_change(
        &self,
        request: TrustedChangeRequest,
    ) -> Result<IssueNoticeResponse, Status> {
        let me = self.me().to_string();
        let current = self
            .charters
            .notices
            .latest(&me, &request.serial)
            .map_err(Status::from)?
            .as_ref()
            .and_then(notice_of)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no trusted-operator record of this agency has serial {}",
                    request.serial
                ))
            })?;
        let Some(Body::Trusted(mut record)) = current.body else {
            return Err(invalid(format!(
                "{} is not a trusted-operator record",
                request.serial
            )));
        };
        let change = match request.action.as_str() {
            "revoke" => Change::Revoke(request.reason.clone()),
            "suspend" | "reinstate" => {
                record.standing = if request.action == "suspend" {
                    "suspended"
                } else {
                    "valid"
                }
                .into();
                record.reason = request.reason.clone();
                Change::Amend(Box::new(Notice {
                    body: Some(Body::Trusted(record)),
                    ..Notice::default()
                }))
            }
            _ => return Err(invalid("action: suspend, reinstate or revoke")),
        };
        let issued = self.issuer.change(&request.serial, change)?;
        self.issuer.publish(&issued.recipients).await?;
        tracing::info!(serial = %issued.serial, action = %request.action, "trusted-operator record changed");
        Ok(self.response(issued))
    }

    /// Trusted-operator records held, own and received, newest version of each.
    pub fn trusted_list(&self, origin: &str) -> Result<TrustedListResponse, Status> {
        let mut origins: BTreeSet<String> = self
            .charters
            .notices
            .counts()
            .map_err(Status::from)?
            .into_keys()
            .collect();
        origins.insert(self.me().to_string());
        let mut records: Vec<NoticeView> = Vec::new();
        for o in origins.iter().filter(|o| origin.is_empty() || *o == origin) {
            for stored in self
                .charters
                .notices
                .list_latest_with_prefix(o, trusted::SERIAL_PREFIX)
                .map_err(Status::from)?
            {
                if let Some(v) = view(stored)
                    && matches!(
                        v.notice.as_ref().and_then(|n| n.body.as_ref()),
                        Some(Body::Trusted(_))
                    )
                {
                    records.push(v);
                }
            }
        }
        Ok(TrustedListResponse { records })
    }
}
