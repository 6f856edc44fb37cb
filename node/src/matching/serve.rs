//! The holder serving its index to the peers: the key's epoch and public
//! key, the index as deltas after a position, and evaluations of blinded
//! elements (charged to the peer's budget, audited by count, never by
//! content).

use std::sync::Arc;

use futures::Stream;
use tessera_proto::v1::{EvaluateRequest, EvaluateResponse, IndexDelta, IndexInfoResponse};

use super::budgets::{BudgetError, Budgets};
use super::holder::HolderIndex;
use super::keys::KeyRing;
use crate::audit::{Action, AuditSink};
use crate::identity::AgencyId;
use crate::privacy::{self, PrivacyError};
use crate::store::StoreError;

/// Most elements in one Evaluate call.
pub const MAX_ELEMENTS: usize = 65_535;
/// Deltas read per batch (no sled iterator stays open while sending).
const WALK_BATCH: usize = 64;

/// Why an index request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("no index for this peer")]
    NoIndex,
    #[error("key epoch {asked} is retired; the current epoch is {current}: pull the index again")]
    RetiredEpoch { asked: u32, current: u32 },
    #[error(
        "key epoch {asked} is not in use (the current epoch is {current}): ask IndexInfo for the epoch"
    )]
    UnknownEpoch { asked: u32, current: u32 },
    #[error("blinded: send 1 to {MAX_ELEMENTS} elements")]
    BadBatch,
    #[error("blinded: {0}")]
    Blinded(PrivacyError),
    #[error(transparent)]
    Budget(#[from] BudgetError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the evaluation task stopped before it finished")]
    Task,
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<ServeError> for tonic::Status {
    fn from(e: ServeError) -> Self {
        match e {
            ServeError::NoIndex => Self::permission_denied(e.to_string()),
            ServeError::RetiredEpoch { .. } | ServeError::UnknownEpoch { .. } => {
                Self::failed_precondition(e.to_string())
            }
            ServeError::BadBatch | ServeError::Blinded(_) => Self::invalid_argument(e.to_string()),
            ServeError::Budget(e) => e.into(),
            ServeError::Store(e) => e.into(),
            ServeError::Task => Self::internal(e.to_string()),
            ServeError::Audit(e) => crate::audit::withheld(&e),
        }
    }
}

/// Serves each peer its index and evaluations under its key.
#[derive(Debug)]
pub struct IndexServer {
    holder: Arc<HolderIndex>,
    keys: Arc<KeyRing>,
    budgets: Arc<Budgets>,
    audit: AuditSink,
    /// Our own feed, to tell callers how much of it is not indexed yet.
    feed: Option<Arc<crate::notice::store::NoticeStore>>,
}

impl IndexServer {
    pub fn new(
        holder: Arc<HolderIndex>,
        keys: Arc<KeyRing>,
        budgets: Arc<Budgets>,
        audit: AuditSink,
    ) -> Self {
        Self {
            feed: None,
            holder,
            keys,
            budgets,
            audit,
        }
    }

    /// The epoch and public key of `caller`'s key.
    pub fn info(&self, caller: &AgencyId) -> Result<IndexInfoResponse, ServeError> {
        let key = self.keys.get(caller).ok_or(ServeError::NoIndex)?;
        Ok(IndexInfoResponse {
            epoch: key.epoch(),
            public_key: key.public_key_bytes().to_vec(),
        })
    }

    /// `caller`'s index as deltas after `after`, read in batches off the
    /// async workers as the caller takes them.
    pub fn pull(
        &self,
        caller: &AgencyId,
        after: u64,
    ) -> impl Stream<Item = Result<IndexDelta, ServeError>> + Send + use<> {
        let holder = self.holder.clone();
        let caller = caller.clone();
        crate::store::paced::paced(
            after,
            move |cursor| {
                let batch: Vec<_> = holder
                    .deltas_after(&caller, cursor)
                    .take(WALK_BATCH)
                    .map(|d| d.map_err(ServeError::from))
                    .collect();
                let next = match batch.last() {
                    Some(Ok(d)) if batch.len() == WALK_BATCH => Some(d.pos),
                    _ => None,
                };
                (next, batch)
            },
            || ServeError::Task,
        )
    }

    /// Evaluates `caller`'s blinded elements under its key, with a proof.
    pub async fn evaluate(
        &self,
        caller: &AgencyId,
        request: EvaluateRequest,
    ) -> Result<EvaluateResponse, ServeError> {
        let EvaluateRequest { epoch, blinded } = request;
        let key = self.keys.get(caller).ok_or(ServeError::NoIndex)?;
        if epoch < key.epoch() {
            return Err(ServeError::RetiredEpoch {
                asked: epoch,
                current: key.epoch(),
            });
        }
        if epoch > key.epoch() {
            return Err(ServeError::UnknownEpoch {
                asked: epoch,
                current: key.epoch(),
            });
        }
        if blinded.is_empty() || blinded.len() > MAX_ELEMENTS {
            return Err(ServeError::BadBatch);
        }
        let n = blinded.len();
        let index_position = self.holder.last_pos(caller)?;
        let pending_notices = match &self.feed {
            Some(feed) => self.holder.unindexed(feed)?,
            None => 0,
        };
        self.budgets.charge(caller, n)?;
        let (evaluated, proof) =
            tokio::task::spawn_blocking(move || privacy::evaluate_blinded(&key, &blinded))
                .await
                .map_err(|_| ServeError::Task)?
                .map_err(ServeError::Blinded)?;
        tracing::info!(peer = %caller, keys = n, "evaluated");
        crate::telemetry::evaluations(caller, n as u64);
        self.audit
            .disclosed(
                caller.as_str(),
                Action::EvaluationServed,
                "evaluate",
                &serde_json::json!({ "keys": n, "epoch": epoch }),
            )
            .await?;
        Ok(EvaluateResponse {
            epoch,
            evaluated: evaluated.iter().map(|e| e.to_vec()).collect(),
            proof: proof.to_vec(),
            index_position,
            pending_notices,
        })
    }

    /// Also reports how much of our own feed is not indexed yet.
    #[must_use]
    pub fn with_feed(mut self, feed: Arc<crate::notice::store::NoticeStore>) -> Self {
        self.feed = Some(feed);
        self
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::matching::screen::blind_request;
    use crate::test_support::{agency, audit_on, audited, temp_store};

    fn server(budget: u64) -> (tempfile::TempDir, IndexServer) {
        let (dir, store) = temp_store();
        let fr = agency("FR-SBDU");
        let audit = audit_on(&store);
        let keys = Arc::new(KeyRing::open(dir.path(), std::slice::from_ref(&fr)).unwrap());
        let server = IndexServer::new(
            Arc::new(HolderIndex::open(&store).unwrap()),
            keys,
            Arc::new(Budgets::new([(fr, (86_400, budget))], audit.clone())),
            audit,
        );
        (dir, server)
    }

    fn request(n: usize, epoch: u32) -> EvaluateRequest {
        let keys: Vec<String> = (0..n).map(|i| format!("mk1|name|k{i}")).collect();
        blind_request(&keys, epoch).unwrap().1
    }

    #[test]
    fn evaluations_are_charged_and_audited_by_count() {
        crate::test_support::run(async {
            let (_dir, s) = server(10);
            let fr = agency("FR-SBDU");
            let info = s.info(&fr).unwrap();
            let r = s.evaluate(&fr, request(4, info.epoch)).await.unwrap();
            assert_eq!((r.epoch, r.evaluated.len()), (1, 4));
            assert!(audited(&s.audit).contains(&"evaluation_served".to_owned()));
            for (req, code) in [
                (request(4, 2), tonic::Code::FailedPrecondition),
                (
                    EvaluateRequest {
                        epoch: 1,
                        blinded: Vec::new(),
                    },
                    tonic::Code::InvalidArgument,
                ),
                (request(7, 1), tonic::Code::ResourceExhausted),
                (
                    EvaluateRequest {
                        epoch: 1,
                        blinded: vec![vec![0; 31].into()],
                    },
                    tonic::Code::InvalidArgument,
                ),
            ] {
                let err = s.evaluate(&fr, req).await.unwrap_err();
                assert_eq!(tonic::Status::from(err).code(), code);
            }
            let stranger = s.info(&agency("US-BIS")).unwrap_err();
            assert_eq!(
                tonic::Status::from(stranger).code(),
                tonic::Code::PermissionDenied
            );
        });
    }

    #[test]
    fn an_index_pull_streams_what_lies_after_the_position() {
        crate::test_support::run(async {
            let (_dir, s) = server(10);
            let pulled: Vec<_> = s.pull(&agency("FR-SBDU"), 0).collect().await;
            assert!(pulled.is_empty(), "nothing indexed yet");
        });
    }
}
