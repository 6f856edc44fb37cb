//! The holder's query budgets, one per served peer (`privacy::QueryBudget`
//! is the bucket): every key a peer asks us to evaluate, for screening or
//! an overlap count, is charged here. A refusal is logged, counted and
//! audited, and reaches the peer as RESOURCE_EXHAUSTED with the time to
//! retry (`retry-after-ms`). Time is tokio's, so tests pause it.
//!
//! What is left of each budget is saved in the `budgets` tree with the
//! wall-clock time on every charge, so a restart neither refills a budget
//! nor forgets it (what was left is refilled for the time the node was down).
//! A peer that keeps asking over budget gets each refusal, but the audit
//! chain gets at most a few `budget_refused` entries per peer and minute,
//! each counting the refusals not written since the last one.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::audit::{Action, AuditSink};
use crate::identity::AgencyId;
use crate::privacy::{OverBudget, QueryBudget};
use crate::store::keys::Tree;
use crate::store::{Store, StoreError};
use crate::throttle::{Throttle, Verdict};

const TREE: &str = "budgets";
const OVERLAP_TREE: &str = "overlap budgets";
const RECORD: &str = "query budget";
/// `budget_refused` entries written per peer and window; the rest are counted.
const AUDITED_PER_WINDOW: u32 = 3;
const AUDIT_WINDOW: Duration = Duration::from_secs(60);

/// Why keys were not charged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("no query budget for this peer")]
    NoBudget,
    #[error("query budget exhausted: {keys} keys asked; retry in {} s", .wait.as_secs().max(1))]
    Exhausted { keys: usize, wait: Duration },
    #[error("{requested} keys in one call exceed the burst of {burst}; send smaller batches")]
    ExceedsBurst { requested: u64, burst: u64 },
    #[error("query budget cannot be saved; retry later")]
    Store(String),
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
            BudgetError::Store(_) => Self::unavailable(e.to_string()),
        }
    }
}

/// Every served peer's budget.
#[derive(Debug)]
pub struct Budgets {
    /// One lock per peer: a peer's charge (and the store write that saves it) never
    /// waits for another peer's.
    buckets: BTreeMap<AgencyId, Mutex<QueryBudget>>,
    refusals: BTreeMap<AgencyId, Throttle>,
    saved: Option<Tree>,
    audit: AuditSink,
}

impl Budgets {
    /// Full buckets of (keys per day, burst) for each peer, as of now, kept
    /// in memory only.
    pub fn new(limits: impl IntoIterator<Item = (AgencyId, (u64, u64))>, audit: AuditSink) -> Self {
        let now = Instant::now();
        let buckets: BTreeMap<_, _> = limits
            .into_iter()
            .map(|(peer, (per_day, burst))| {
                (peer, Mutex::new(QueryBudget::new(per_day, burst, now)))
            })
            .collect();
        Self {
            refusals: buckets
                .keys()
                .map(|p| (p.clone(), Throttle::new(AUDITED_PER_WINDOW, AUDIT_WINDOW)))
                .collect(),
            buckets,
            saved: None,
            audit,
        }
    }

    /// As `new`, but each budget is what was saved in `store` (refilled for
    /// the time since), and every charge is saved there.
    pub fn open(
        store: &Store,
        limits: impl IntoIterator<Item = (AgencyId, (u64, u64))>,
        audit: AuditSink,
    ) -> Result<Self, StoreError> {
        Self::open_tree(store, TREE, limits, audit)
    }

    /// The overlap counts' budgets: as [`Budgets::open`], in a tree of their own, so
    /// that an overlap count never spends a peer's screening budget nor the reverse.
    pub fn open_overlap(
        store: &Store,
        limits: impl IntoIterator<Item = (AgencyId, (u64, u64))>,
        audit: AuditSink,
    ) -> Result<Self, StoreError> {
        Self::open_tree(store, OVERLAP_TREE, limits, audit)
    }

    fn open_tree(
        store: &Store,
        name: &'static str,
        limits: impl IntoIterator<Item = (AgencyId, (u64, u64))>,
        audit: AuditSink,
    ) -> Result<Self, StoreError> {
        let tree = Tree::open(store, name)?;
        let mut budgets = Self::new(limits, audit);
        let now = Instant::now();
        let wall = wall_ms();
        for (peer, bucket) in &mut budgets.buckets {
            let Some(saved) = tree.get(peer.as_str(), RECORD)? else {
                continue;
            };
            let (units, at) = decode(&saved).ok_or_else(|| tree.corrupt(RECORD))?;
            let bucket = bucket.get_mut().unwrap_or_else(PoisonError::into_inner);
            *bucket = restore(bucket, units, wall.saturating_sub(at), now);
        }
        budgets.saved = Some(tree);
        Ok(budgets)
    }

    /// The most keys `peer` may have evaluated at once.
    pub fn burst(&self, peer: &AgencyId) -> Option<u64> {
        self.buckets
            .get(peer)
            .map(|b| b.lock().unwrap_or_else(PoisonError::into_inner).limits().1)
    }

    /// Takes `n` keys from `peer`'s budget, or says why not.
    pub fn charge(&self, peer: &AgencyId, n: usize) -> Result<(), BudgetError> {
        let now = Instant::now();
        let refused = {
            let Some(bucket) = self.buckets.get(peer) else {
                return Err(BudgetError::NoBudget);
            };
            let mut bucket = bucket.lock().unwrap_or_else(PoisonError::into_inner);
            match bucket.try_take(n as u64, now) {
                Ok(()) => return self.save(peer, bucket.units()),
                Err(OverBudget::RetryAfter(wait)) => BudgetError::Exhausted { keys: n, wait },
                Err(OverBudget::ExceedsBurst { requested, burst }) => {
                    BudgetError::ExceedsBurst { requested, burst }
                }
            }
        };
        crate::telemetry::budget_refusal(peer);
        if let Some(Verdict::Write { suppressed }) = self.refusals.get(peer).map(Throttle::event) {
            tracing::warn!(peer = %peer, keys = n, suppressed, "query budget refusal");
            self.audit.event(
                peer.as_str(),
                Action::BudgetRefused,
                "evaluate",
                &serde_json::json!({ "keys": n, "not_audited_before": suppressed }),
            );
        }
        Err(refused)
    }

    fn save(&self, peer: &AgencyId, units: u128) -> Result<(), BudgetError> {
        let Some(tree) = &self.saved else {
            return Ok(());
        };
        let mut value = units.to_be_bytes().to_vec();
        value.extend_from_slice(&wall_ms().to_be_bytes());
        tree.insert(peer.as_str(), value, RECORD)
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot save a query budget");
                BudgetError::Store(e.to_string())
            })
    }
}

/// `bucket`'s limits with `units` left `elapsed_ms` ago.
fn restore(bucket: &QueryBudget, units: u128, elapsed_ms: u64, now: Instant) -> QueryBudget {
    let (per_day, burst) = bucket.limits();
    QueryBudget::restored(
        per_day,
        burst,
        units,
        Duration::from_millis(elapsed_ms),
        now,
    )
}

fn decode(bytes: &[u8]) -> Option<(u128, u64)> {
    let units = u128::from_be_bytes(bytes.get(..16)?.try_into().ok()?);
    let at = u64::from_be_bytes(bytes.get(16..24)?.try_into().ok()?);
    Some((units, at))
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{agency, audit_on, audit_sink, audited, reopen, temp_store};

    #[test]
    fn a_peer_charged_while_another_is_being_charged_does_not_wait() {
        crate::test_support::run(async {
            let (_dir, store) = temp_store();
            let (fr, us) = (agency("FR-SBDU"), agency("US-BIS"));
            let budgets = std::sync::Arc::new(
                Budgets::open(
                    &store,
                    [(fr.clone(), (1_000, 100)), (us.clone(), (1_000, 100))],
                    audit_on(&store),
                )
                .unwrap(),
            );
            // FR-SBDU's charge in progress (its lock held, as while its save is written).
            let held = budgets.buckets[&fr].lock().unwrap();
            let other = budgets.clone();
            let (done, charged) = std::sync::mpsc::channel();
            std::thread::spawn(move || done.send(other.charge(&us, 10).is_ok()));
            let answer = charged.recv_timeout(std::time::Duration::from_secs(5));
            drop(held);
            assert_eq!(answer, Ok(true), "US-BIS waited for FR-SBDU's charge");
        });
    }

    #[test]
    fn a_restart_neither_refills_nor_forgets_a_budget_and_floods_are_audited_in_sum() {
        crate::test_support::run(async {
            let (dir, store) = temp_store();
            let peer = agency("FR-SBDU");
            let limits = || [(peer.clone(), (1, 100))];
            let budgets = Budgets::open(&store, limits(), audit_on(&store)).unwrap();
            budgets.charge(&peer, 90).unwrap();
            drop(budgets);
            store.flush().await.unwrap();
            drop(store);
            let store = reopen(dir.path());
            let audit = audit_on(&store);
            let budgets = Budgets::open(&store, limits(), audit.clone()).unwrap();
            assert!(matches!(
                budgets.charge(&peer, 20),
                Err(BudgetError::Exhausted { .. })
            ));
            budgets.charge(&peer, 10).unwrap();
            for _ in 0..500 {
                assert!(budgets.charge(&peer, 1).is_err());
            }
            let refusals = audited(&audit)
                .iter()
                .filter(|a| *a == Action::BudgetRefused.as_str())
                .count();
            assert_eq!(
                refusals, AUDITED_PER_WINDOW as usize,
                "501 refusals, a few entries"
            );
        });
    }

    #[test]
    fn charges_refuse_over_budget_with_the_time_to_retry_and_refill() {
        crate::test_support::run_paused(async {
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
        });
    }
}
