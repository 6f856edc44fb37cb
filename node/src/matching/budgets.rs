//! The holder's query budgets, one per served peer (`privacy::QueryBudget`
//! is the bucket): every key a peer asks us to evaluate, for screening or
//! an overlap count, is charged here. A refusal is logged, counted and
//! audited, and reaches the peer as RESOURCE_EXHAUSTED with the time to
//! retry (`retry-after-ms`). Time is tokio's, so tests pause it.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::audit::{Action, AuditSink};
use crate::identity::AgencyId;
use crate::privacy::{OverBudget, QueryBudget};

/// Why keys were not charged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("no query budget for this peer")]
    NoBudget,
    #[error("query budget exhausted: {keys} keys asked; retry in {} s", .wait.as_secs().max(1))]
    Exhausted { keys: usize, wait: Duration },
    #[error("{requested} keys in one call exceed the burst of {burst}; send smaller batches")]
    ExceedsBurst { requested: u64, burst: u64 },
}

impl From<BudgetError> for tonic::Status {
    fn from(e: BudgetError) -> Self {
        match &e {
            BudgetError::NoBudget => Self::permission_denied(e.to_string()),
            BudgetError::Exhausted { wait, .. } => {
                let mut status = Self::resource_exhausted(e.to_string());
                if let Ok(v) = wait.as_millis().to_string().parse() {
                    status.metadata_mut().insert("retry-after-ms", v);
                }
                status
            }
            BudgetError::ExceedsBurst { .. } => Self::resource_exhausted(e.to_string()),
        }
    }
}

/// Every served peer's budget.
#[derive(Debug)]
pub struct Budgets {
    buckets: Mutex<BTreeMap<AgencyId, QueryBudget>>,
    audit: AuditSink,
}

impl Budgets {
    /// Full buckets of (keys per day, burst) for each peer, as of now.
    pub fn new(limits: impl IntoIterator<Item = (AgencyId, (u64, u64))>, audit: AuditSink) -> Self {
        let now = Instant::now();
        Self {
            buckets: Mutex::new(
                limits
                    .into_iter()
                    .map(|(peer, (per_day, burst))| (peer, QueryBudget::new(per_day, burst, now)))
                    .collect(),
            ),
            audit,
        }
    }

    /// Takes `n` keys from `peer`'s budget, or says why not.
    pub fn charge(&self, peer: &AgencyId, n: usize) -> Result<(), BudgetError> {
        let now = Instant::now();
        let refused = {
            let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(bucket) = buckets.get_mut(peer) else {
                return Err(BudgetError::NoBudget);
            };
            match bucket.try_take(n as u64, now) {
                Ok(()) => return Ok(()),
                Err(OverBudget::RetryAfter(wait)) => BudgetError::Exhausted { keys: n, wait },
                Err(OverBudget::ExceedsBurst { requested, burst }) => {
                    BudgetError::ExceedsBurst { requested, burst }
                }
            }
        };
        tracing::warn!(peer = %peer, keys = n, "query budget refusal");
        crate::telemetry::budget_refusal(peer);
        self.audit.event(
            peer.as_str(),
            Action::BudgetRefused,
            "evaluate",
            &serde_json::json!({ "keys": n }),
        );
        Err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{agency, audit_sink, audited};

    #[tokio::test(start_paused = true)]
    async fn charges_refuse_over_budget_with_the_time_to_retry_and_refill() {
        let (_dir, audit) = audit_sink();
        let peer = agency("FR-SBDU");
        let budgets = Budgets::new([(peer.clone(), (86_400, 100))], audit.clone());
        budgets.charge(&peer, 60).unwrap();
        let err = budgets.charge(&peer, 60).unwrap_err();
        // 20 keys short at one key a second.
        assert_eq!(
            err,
            BudgetError::Exhausted {
                keys: 60,
                wait: Duration::from_secs(20)
            }
        );
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after-ms").unwrap(), "20000");
        assert!(status.message().contains("retry in 20 s"), "{status:?}");
        tokio::time::advance(Duration::from_secs(20)).await;
        budgets.charge(&peer, 60).unwrap();
        assert!(matches!(
            budgets.charge(&peer, 101),
            Err(BudgetError::ExceedsBurst {
                requested: 101,
                burst: 100
            })
        ));
        let stranger = agency("US-BIS");
        let status = tonic::Status::from(budgets.charge(&stranger, 1).unwrap_err());
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        // Each budget refusal is audited (by count, never by content); a
        // caller with no budget at all is not a served peer.
        let refusals = audited(&audit)
            .iter()
            .filter(|a| *a == Action::BudgetRefused.as_str())
            .count();
        assert_eq!(refusals, 2);
    }
}
