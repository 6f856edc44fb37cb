//! Overlap counts for harmonisation figures (PSI-cardinality): how many of
//! our list's match keys are in a peer's list, and nothing else. The protocol
//! is in `privacy::cardinality` and docs/private-matching.md.
//!
//! [`Overlap`] is both sides: the querier (`with_peer`, `harmonise`) and the
//! holder answering a peer (`cardinality`, `report_for`).
//!
//! The holder answers only batches of at least `min_batch` distinct
//! elements (a querier with fewer keys pads with random ones, which match
//! nothing), keeps one session key and set per peer for `sessions`' epoch,
//! and charges the call that starts an epoch for the set it computes (up to
//! one burst), every call for its elements.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use prost::Message;
use tessera_proto::v1::{
    CardinalityRequest, CardinalityResponse, HarmoniseResponse, Notice, OverlapCell,
    ReportOverlapRequest, ReportOverlapResponse,
};

use super::budgets::{BudgetError, Budgets};
use super::labels;
use crate::audit::{Action, AuditSink};
use crate::exchange::client::{PeerClient, PeerError};
use crate::identity::AgencyId;
use crate::notice::store::{NoticeStore, NoticeStoreError};
use crate::privacy::{
    CardinalityHolder, CardinalityQuery, HolderSet, PrivacyError, cardinality::SetTag,
};

/// Most elements in one Cardinality call.
pub const MAX_ELEMENTS: usize = 100_000;

mod sessions;
pub use sessions::{Session, Sessions};

/// Overlap errors.
#[derive(Debug, thiserror::Error)]
pub enum OverlapError {
    #[error(transparent)]
    Store(#[from] NoticeStoreError),
    #[error("group {0:?} is not configured on this node")]
    UnknownGroup(String),
    #[error("{0} is not another peer of this node")]
    NotAPeer(String),
    #[error("peer: not an agency id")]
    BadPeer,
    #[error("the caller and that peer share no group on this node")]
    NoSharedGroup,
    #[error("blinded: send at most {MAX_ELEMENTS} elements")]
    BadBatch,
    #[error("blinded: send at least {min} distinct elements (pad with random keys); {got} were")]
    SmallBatch { min: usize, got: usize },
    #[error("blinded: the elements must be distinct")]
    Duplicates,
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error("{0}")]
    Privacy(#[from] PrivacyError),
    #[error("{peer}: {error}")]
    Peer { peer: String, error: PeerError },
    #[error("the peer's set tags are malformed")]
    Malformed,
    #[error("the peer's answer is malformed ({0})")]
    Answer(PrivacyError),
    #[error("the overlap task stopped before it finished")]
    Task,
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(
        "this member's operator has not counted its overlap with {0}; ask them to run `tessera overlap --peer {0}`"
    )]
    NotCounted(String),
    #[error("too many overlap reports asked; retry in {} s", .0.as_secs().max(1))]
    TooManyReports(std::time::Duration),
}

impl From<OverlapError> for tonic::Status {
    fn from(e: OverlapError) -> Self {
        match e {
            OverlapError::Store(e) => e.into(),
            OverlapError::Budget(e) => e.into(),
            OverlapError::UnknownGroup(_)
            | OverlapError::BadPeer
            | OverlapError::BadBatch
            | OverlapError::SmallBatch { .. }
            | OverlapError::Duplicates
            | OverlapError::Privacy(_) => Self::invalid_argument(e.to_string()),
            OverlapError::NotAPeer(_) | OverlapError::NoSharedGroup => {
                Self::permission_denied(e.to_string())
            }
            OverlapError::Peer { .. } | OverlapError::Malformed | OverlapError::Answer(_) => {
                Self::unavailable(e.to_string())
            }
            OverlapError::Task => Self::internal(e.to_string()),
            OverlapError::Audit(e) => crate::audit::withheld(&e),
            OverlapError::NotCounted(_) => Self::failed_precondition(e.to_string()),
            OverlapError::TooManyReports(_) => Self::resource_exhausted(e.to_string()),
        }
    }
}

/// Overlap counting, both sides.
#[derive(Debug)]
pub struct Overlap {
    pub agency: AgencyId,
    pub notices: Arc<NoticeStore>,
    pub client: Arc<dyn PeerClient>,
    pub budgets: Arc<Budgets>,
    pub audit: AuditSink,
    /// Sharing groups: name → members (this node's word).
    pub groups: BTreeMap<String, Vec<String>>,
    pub peers: Vec<AgencyId>,
    /// Fewest distinct elements a Cardinality call may carry (and what our
    /// own queries are padded to).
    pub min_batch: usize,
    /// Most of our keys in one call of ours ([`MAX_ELEMENTS`] outside tests).
    pub chunk: usize,
    /// The holder's session per peer.
    pub sessions: Sessions,
    /// The counts our operator ran, by peer: all a ReportOverlap may tell.
    pub counted: std::sync::Mutex<BTreeMap<AgencyId, (u64, u64)>>,
    /// ReportOverlap calls per caller.
    pub reports: crate::throttle::PerPeerRate,
}

/// ReportOverlap calls a peer may make: one a minute on average, five at once.
pub const REPORTS_PER_DAY: u64 = 24 * 60;
pub const REPORT_BURST: u64 = 5;

impl Overlap {
    /// The match keys of our own notices in force, optionally only those `peer` may see.
    pub fn own_keys(&self, visible_to: Option<&AgencyId>) -> Result<Vec<String>, OverlapError> {
        let own = self.notices.list_latest(Some(self.agency.as_str()))?;
        let mut keys = BTreeSet::new();
        for stored in own {
            if let Some(peer) = visible_to
                && !stored.recipients.iter().any(|r| r == peer.as_str())
            {
                continue;
            }
            let Some(env) = stored.envelope else { continue };
            let Ok(notice) = Notice::decode(env.notice.as_slice()) else {
                continue;
            };
            if !labels::active(&notice) {
                continue;
            }
            keys.extend(labels::notice_keys(&notice).into_iter().map(|k| k.value));
        }
        Ok(keys.into_iter().collect())
    }

    /// Holder side of the Cardinality RPC: checks the batch, charges the
    /// caller (its elements, and the set when its session starts), answers
    /// under the caller's session key, and audits the count.
    pub async fn cardinality(
        self: &Arc<Self>,
        caller: &AgencyId,
        request: CardinalityRequest,
    ) -> Result<CardinalityResponse, OverlapError> {
        let blinded = request.blinded;
        if blinded.len() > MAX_ELEMENTS {
            return Err(OverlapError::BadBatch);
        }
        let distinct = blinded.iter().collect::<BTreeSet<_>>().len();
        if distinct < self.min_batch {
            return Err(OverlapError::SmallBatch {
                min: self.min_batch,
                got: distinct,
            });
        }
        if distinct != blinded.len() {
            return Err(OverlapError::Duplicates);
        }
        let n = blinded.len();
        let (session, started) = self
            .sessions
            .current(caller, || self.start_session(caller, n))
            .await?;
        if !started {
            self.budgets.charge(caller, n)?;
        }
        let holder_tags = session.set.tags().iter().map(|t| t.to_vec()).collect();
        let evaluated =
            tokio::task::spawn_blocking(move || session.holder.evaluate_shuffled(&blinded))
                .await
                .map_err(|_| OverlapError::Task)??;
        self.audit
            .disclosed(
                caller.as_str(),
                Action::EvaluationServed,
                "cardinality",
                &serde_json::json!({ "keys": n, "new_session": started }),
            )
            .await?;
        Ok(CardinalityResponse {
            holder_tags,
            evaluated: evaluated.iter().map(|e| e.to_vec()).collect(),
        })
    }

    /// A new session for `caller`: charged for its `n` elements and for our
    /// set (one burst at most), then the set computed under a fresh key.
    async fn start_session(
        self: &Arc<Self>,
        caller: &AgencyId,
        n: usize,
    ) -> Result<Session, OverlapError> {
        let this = self.clone();
        let who = caller.clone();
        let keys = tokio::task::spawn_blocking(move || this.own_keys(Some(&who)))
            .await
            .map_err(|_| OverlapError::Task)??;
        let burst = self.budgets.burst(caller).unwrap_or(0);
        self.budgets.charge(
            caller,
            (n as u64 + keys.len() as u64).min(burst.max(n as u64)) as usize,
        )?;
        tokio::task::spawn_blocking(move || {
            let holder = CardinalityHolder::new();
            let set = holder.holder_set(&keys)?;
            Ok(Session::new(holder, set))
        })
        .await
        .map_err(|_| OverlapError::Task)?
    }

    /// Querier side: (how many of our keys are in `peer`'s set for us, how
    /// many keys we have). A list longer than one call takes (`chunk`, at most
    /// [`MAX_ELEMENTS`]) is counted in calls of at most that many, within the
    /// holder's session.
    pub async fn with_peer(&self, peer: &AgencyId) -> Result<(u64, u64), OverlapError> {
        let keys = self.own_keys(None)?;
        if keys.is_empty() {
            return Ok((0, 0));
        }
        let n = keys.len() as u64;
        let mut count = 0u64;
        for chunk in keys.chunks(self.chunk.clamp(1, MAX_ELEMENTS)) {
            count += self.count_chunk(peer, chunk.to_vec()).await?;
        }
        self.counted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(peer.clone(), (count, n));
        Ok((count, n))
    }

    /// How many of `keys` are in `peer`'s set for us: one Cardinality call, padded with
    /// random keys to the holder's minimum batch.
    async fn count_chunk(
        &self,
        peer: &AgencyId,
        mut keys: Vec<String>,
    ) -> Result<u64, OverlapError> {
        keys.extend(padding(self.min_batch.saturating_sub(keys.len())));
        let (query, blinded) = tokio::task::spawn_blocking(move || {
            let refs: Vec<&[u8]> = keys.iter().map(String::as_bytes).collect();
            CardinalityQuery::blind(&refs)
        })
        .await
        .map_err(|_| OverlapError::Task)??;
        let request = CardinalityRequest {
            blinded: blinded
                .iter()
                .map(|b| prost::bytes::Bytes::copy_from_slice(b))
                .collect(),
        };
        let response = self
            .client
            .cardinality(peer, request)
            .await
            .map_err(|error| OverlapError::Peer {
                peer: peer.to_string(),
                error,
            })?;
        let tags: Vec<SetTag> = response
            .holder_tags
            .iter()
            .map(|t| t.as_slice().try_into().map_err(|_| OverlapError::Malformed))
            .collect::<Result<_, _>>()?;
        let count = tokio::task::spawn_blocking(move || {
            query.count(&response.evaluated, &HolderSet::from_tags(tags))
        })
        .await
        .map_err(|_| OverlapError::Task)?
        .map_err(OverlapError::Answer)?;
        Ok(count as u64)
    }

    /// Holder side of ReportOverlap: our count with `other`, for a caller
    /// that shares a group with it on this node; audited as a disclosure.
    /// Only a count our own operator ran is told (a report never runs a
    /// count, so it spends no budget of ours at `other`), and a caller may
    /// ask only a few a minute.
    pub async fn report_for(
        &self,
        caller: &AgencyId,
        request: &ReportOverlapRequest,
    ) -> Result<ReportOverlapResponse, OverlapError> {
        let other: AgencyId = request.peer.parse().map_err(|_| OverlapError::BadPeer)?;
        if !self.peers.contains(&other) || other == *caller {
            return Err(OverlapError::NotAPeer(other.to_string()));
        }
        let shared_group = self.groups.values().any(|members| {
            members.iter().any(|m| m == caller.as_str())
                && members.iter().any(|m| m == other.as_str())
        });
        if !shared_group {
            return Err(OverlapError::NoSharedGroup);
        }
        self.reports
            .take(caller)
            .map_err(OverlapError::TooManyReports)?;
        let counted = self
            .counted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&other)
            .copied();
        let (count, keys) = counted.ok_or_else(|| OverlapError::NotCounted(other.to_string()))?;
        self.audit
            .disclosed(
                caller.as_str(),
                Action::MatchDisclosed,
                "overlap-count",
                &serde_json::json!({ "with": other.as_str(), "count": count }),
            )
            .await?;
        Ok(ReportOverlapResponse { count, keys })
    }

    /// Pairwise overlap counts among the members of `group`. A pair that
    /// cannot be counted has a problem in its cell; the rest are counted.
    pub async fn harmonise(&self, group: &str) -> Result<HarmoniseResponse, OverlapError> {
        let members = self
            .groups
            .get(group)
            .ok_or_else(|| OverlapError::UnknownGroup(group.to_owned()))?
            .clone();
        let mut response = HarmoniseResponse {
            members: members.clone(),
            ..HarmoniseResponse::default()
        };
        let own = self.agency.to_string();
        response
            .keys
            .insert(own.clone(), self.own_keys(None)?.len() as u64);
        for (i, a) in members.iter().enumerate() {
            for b in &members[i + 1..] {
                let (first, second) = if *b == own { (b, a) } else { (a, b) };
                let result = if *first == own {
                    match second.parse::<AgencyId>() {
                        Ok(peer) => self.with_peer(&peer).await.map(|(c, _)| c),
                        Err(e) => Err(OverlapError::NotAPeer(e.to_string())),
                    }
                } else {
                    self.report(first, second).await
                };
                let (count, problem) = match result {
                    Ok(c) => (c, String::new()),
                    Err(OverlapError::Store(e)) => return Err(e.into()),
                    Err(p) => (0, p.to_string()),
                };
                response.cells.push(OverlapCell {
                    a: a.clone(),
                    b: b.clone(),
                    count,
                    problem,
                });
            }
        }
        Ok(response)
    }

    /// Asks `member` for its overlap with `other`.
    async fn report(&self, member: &str, other: &str) -> Result<u64, OverlapError> {
        let peer: AgencyId = member
            .parse()
            .map_err(|e: crate::identity::BadAgencyId| OverlapError::NotAPeer(e.to_string()))?;
        let request = ReportOverlapRequest {
            peer: other.to_owned(),
        };
        let r = self
            .client
            .report_overlap(&peer, request)
            .await
            .map_err(|error| OverlapError::Peer {
                peer: member.to_owned(),
                error,
            })?;
        Ok(r.count)
    }
}

/// `n` random keys that match nothing (no match key has this form).
fn padding(n: usize) -> impl Iterator<Item = String> {
    use rand::RngCore;
    (0..n).map(|_| {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        format!("pad|{}", hex::encode(bytes))
    })
}

#[cfg(test)]
mod tests;
