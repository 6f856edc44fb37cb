//! Private matching from the operator: screening, the watch list and its
//! alerts, overlap counts, and OPRF key rotation.

use std::sync::Arc;

use tessera_proto::v1::distribution::Target;
use tessera_proto::v1::{
    AlertsResponse, Distribution, EnforcementNotice, EnforcementType, HarmoniseResponse, Marking,
    Notice, NoticeStatus, OverlapResponse, PartyKind, PartyRole, RoledParty, RotateKeyResponse,
    ScreenRequest, ScreenResponse, WatchAddRequest, WatchAddResponse, WatchEntry,
    WatchListResponse, notice::Body,
};
use tonic::Status;

use crate::alerts::AlertStore;
use crate::identity::AgencyId;
use crate::matching::holder::Indexer;
use crate::matching::overlap::Overlap;
use crate::matching::screen::Screener;
use crate::matching::watch::{WatchError, WatchPurpose, Watcher};
use crate::notice::issue::Issuer;
use crate::notice::json::{party_from_wire, party_to_wire};
use crate::wake::Wakers;

/// Most parties in one screening or watch call.
const MAX_PARTIES: usize = 10_000;

/// The matching calls' handles.
#[derive(Debug)]
pub struct MatchingDesk {
    pub screener: Arc<Screener>,
    pub watcher: Arc<Watcher>,
    pub alerts: Arc<AlertStore>,
    pub overlap: Arc<Overlap>,
    pub indexer: Arc<Indexer>,
    pub issuer: Arc<Issuer>,
    pub peers: Vec<AgencyId>,
    pub wakers: Wakers,
}

/// The parties of a call, checked; a party without a kind is an organisation.
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
                p.kind = PartyKind::Organisation as i32;
            }
            crate::notice::validate::party(&format!("parties[{i}]"), &p)?;
            Ok(party_from_wire(&p))
        })
        .collect()
}

impl MatchingDesk {
    /// A configured peer named by the operator.
    fn peer_arg(&self, peer: &str) -> Result<AgencyId, Status> {
        let agency: AgencyId = peer
            .parse()
            .map_err(|_| Status::invalid_argument("peer: not an agency id like FR-SBDU"))?;
        if !self.peers.contains(&agency) {
            return Err(Status::invalid_argument(format!(
                "{agency} is not a configured peer"
            )));
        }
        Ok(agency)
    }

    pub async fn screen(&self, request: &ScreenRequest) -> Result<ScreenResponse, Status> {
        let parties = parties_of(&request.parties)?;
        let threshold = if request.threshold == 0.0 {
            crate::party::verdict::DEFAULT_THRESHOLD
        } else if (0.0..=1.0).contains(&request.threshold) {
            request.threshold
        } else {
            return Err(Status::invalid_argument("threshold: a number from 0 to 1"));
        };
        let started = std::time::Instant::now();
        let response = self.screener.screen(&parties, threshold).await;
        crate::telemetry::screening(started.elapsed());
        tracing::debug!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "screening done"
        );
        Ok(response)
    }

    pub async fn watch_add(&self, request: WatchAddRequest) -> Result<WatchAddResponse, Status> {
        let WatchAddRequest {
            parties,
            reference,
            purpose,
            contact,
        } = request;
        let purpose: WatchPurpose = purpose.parse()?;
        if purpose == WatchPurpose::Investigation && contact.trim().is_empty() {
            return Err(WatchError::Invalid(
                "contact: an investigation needs a case contact pointer",
            )
            .into());
        }
        let checked = parties_of(&parties)?;
        let entries: Vec<WatchEntry> = checked
            .iter()
            .map(|p| WatchEntry {
                party: Some(party_to_wire(p)),
                reference: reference.clone(),
                purpose: purpose.as_str().to_owned(),
                contact: contact.clone(),
                ..WatchEntry::default()
            })
            .collect();
        if purpose == WatchPurpose::Investigation {
            // The subjects become local investigation notices: never
            // replicated, matchable by peers for deconfliction.
            for p in &checked {
                let notice = Notice {
                    marking: Marking::Red as i32,
                    distribution: Some(Distribution {
                        target: Some(Target::Local(true)),
                    }),
                    body: Some(Body::Enforcement(EnforcementNotice {
                        r#type: EnforcementType::InvestigationOpened as i32,
                        parties: vec![RoledParty {
                            role: PartyRole::Subject as i32,
                            party: Some(party_to_wire(p)),
                        }],
                        contact: contact.clone(),
                        summary: reference.clone(),
                        status: NoticeStatus::InForce as i32,
                        ..Default::default()
                    })),
                    ..Default::default()
                };
                self.issuer.issue(notice)?;
            }
            self.issuer.publish(&[]).await?;
        }
        let (ids, alerts, unavailable) = self.watcher.add(entries).await?;
        Ok(WatchAddResponse {
            ids,
            alerts,
            unavailable,
        })
    }

    pub fn watch_list(&self) -> Result<WatchListResponse, Status> {
        Ok(WatchListResponse {
            entries: self.watcher.store().list()?,
        })
    }

    pub fn watch_remove(&self, id: u64) -> Result<(), Status> {
        if self.watcher.store().remove(id)? {
            Ok(())
        } else {
            Err(WatchError::NotFound(id).into())
        }
    }

    pub fn alerts(&self, after: u64) -> Result<AlertsResponse, Status> {
        Ok(AlertsResponse {
            alerts: self.alerts.after(after)?,
        })
    }

    pub async fn overlap(&self, peer: &str) -> Result<OverlapResponse, Status> {
        let peer = self.peer_arg(peer)?;
        let (count, keys) = self.overlap.with_peer(&peer).await?;
        Ok(OverlapResponse { count, keys })
    }

    pub async fn harmonise(&self, group: &str) -> Result<HarmoniseResponse, Status> {
        Ok(self.overlap.harmonise(group).await?)
    }

    pub async fn rotate_key(&self, peer: &str) -> Result<RotateKeyResponse, Status> {
        let peer = self.peer_arg(peer)?;
        let epoch = self.indexer.rotate(&peer).await?;
        self.wakers.push(std::slice::from_ref(&peer));
        self.wakers.own_notices_changed();
        tracing::info!(peer = %peer, epoch, "OPRF key rotated; index rebuilt");
        Ok(RotateKeyResponse { epoch })
    }
}
