//! A peer's query budget (docs/architecture.md, "Private matching", point 7): a token bucket of `burst` keys that refills
//! at `keys_per_day`. Every key a peer asks the holder to evaluate (screening or
//! cardinality) takes one token; over budget, the caller answers RESOURCE_EXHAUSTED with
//! the time to retry. Time is passed in, so tests drive it with `tokio::time::pause()`.
//!
//! Arithmetic is exact integers: one key is worth `NANOS_PER_DAY` units and every elapsed
//! nanosecond adds `keys_per_day` units, so no rounding drift accumulates.

use std::time::Duration;

use tokio::time::Instant;

const NANOS_PER_DAY: u128 = 86_400 * 1_000_000_000;

/// Why a take was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    /// Enough tokens will have accrued after this long.
    #[error("query budget exhausted; retry after {0:?}")]
    RetryAfter(Duration),
    /// More keys than the burst: this batch can never pass; split it.
    #[error("{requested} keys exceed the burst of {burst}; split the batch")]
    ExceedsBurst { requested: u64, burst: u64 },
}

/// A token bucket for one peer.
#[derive(Debug, Clone)]
pub struct QueryBudget {
    keys_per_day: u64,
    burst: u64,
    /// Tokens, in units of `1 / NANOS_PER_DAY` key.
    units: u128,
    last: Instant,
}

impl QueryBudget {
    /// A full bucket at `now`.
    pub fn new(keys_per_day: u64, burst: u64, now: Instant) -> Self {
        Self {
            keys_per_day,
            burst,
            units: u128::from(burst) * NANOS_PER_DAY,
            last: now,
        }
    }

    /// A bucket saved with `units` tokens `elapsed` ago (wall-clock time, as
    /// saved across a restart), refilled for that time, as of `now`.
    pub fn restored(
        keys_per_day: u64,
        burst: u64,
        units: u128,
        elapsed: Duration,
        now: Instant,
    ) -> Self {
        let cap = u128::from(burst) * NANOS_PER_DAY;
        let added = elapsed.as_nanos().saturating_mul(u128::from(keys_per_day));
        Self {
            keys_per_day,
            burst,
            units: units.saturating_add(added).min(cap),
            last: now,
        }
    }

    /// (keys per day, burst).
    pub fn limits(&self) -> (u64, u64) {
        (self.keys_per_day, self.burst)
    }

    /// The tokens left, in the units `restored` takes.
    pub fn units(&self) -> u128 {
        self.units
    }

    /// Takes `n` tokens at `now`, or says how long until it could.
    pub fn try_take(&mut self, n: u64, now: Instant) -> Result<(), OverBudget> {
        if n > self.burst {
            return Err(OverBudget::ExceedsBurst {
                requested: n,
                burst: self.burst,
            });
        }
        self.refill(now);
        let need = u128::from(n) * NANOS_PER_DAY;
        if self.units >= need {
            self.units -= need;
            return Ok(());
        }
        if self.keys_per_day == 0 {
            return Err(OverBudget::RetryAfter(Duration::MAX));
        }
        let nanos = (need - self.units).div_ceil(u128::from(self.keys_per_day));
        Err(OverBudget::RetryAfter(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        )))
    }

    /// Whole keys available at `now`.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        // At most `burst`, which is a u64.
        (self.units / NANOS_PER_DAY) as u64
    }

    fn refill(&mut self, now: Instant) {
        // A clock that went backwards (it cannot, for a monotonic Instant) adds nothing.
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        self.last = self.last.max(now);
        let cap = u128::from(self.burst) * NANOS_PER_DAY;
        let added = elapsed.saturating_mul(u128::from(self.keys_per_day));
        self.units = self.units.saturating_add(added).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausts_then_refills_with_paused_time() {
        crate::test_support::run_paused(async {
            // 86,400 keys a day = one a second; burst of 100.
            let mut budget = QueryBudget::new(86_400, 100, Instant::now());
            assert_eq!(budget.try_take(60, Instant::now()), Ok(()));
            assert_eq!(budget.try_take(40, Instant::now()), Ok(()));
            assert_eq!(
                budget.try_take(10, Instant::now()),
                Err(OverBudget::RetryAfter(Duration::from_secs(10)))
            );

            tokio::time::advance(Duration::from_secs(4)).await;
            assert_eq!(budget.available(Instant::now()), 4);
            assert_eq!(
                budget.try_take(10, Instant::now()),
                Err(OverBudget::RetryAfter(Duration::from_secs(6)))
            );
            tokio::time::advance(Duration::from_secs(6)).await;
            assert_eq!(budget.try_take(10, Instant::now()), Ok(()));
            assert_eq!(budget.available(Instant::now()), 0);

            // A long idle period refills to the burst, never past it.
            tokio::time::advance(Duration::from_secs(86_400)).await;
            assert_eq!(budget.available(Instant::now()), 100);
            assert_eq!(
                budget.try_take(101, Instant::now()),
                Err(OverBudget::ExceedsBurst {
                    requested: 101,
                    burst: 100
                })
            );
            assert_eq!(budget.try_take(100, Instant::now()), Ok(()));
        });
    }

    #[test]
    fn fractional_rates_round_the_wait_up() {
        crate::test_support::run_paused(async {
            // 3 keys a day: one every 8 hours.
            let mut budget = QueryBudget::new(3, 1, Instant::now());
            assert_eq!(budget.try_take(1, Instant::now()), Ok(()));
            let Err(OverBudget::RetryAfter(wait)) = budget.try_take(1, Instant::now()) else {
                panic!("expected a wait");
            };
            assert_eq!(wait, Duration::from_secs(8 * 3600));
            tokio::time::advance(wait.saturating_sub(Duration::from_nanos(1))).await;
            assert!(budget.try_take(1, Instant::now()).is_err());
            tokio::time::advance(Duration::from_nanos(1)).await;
            assert_eq!(budget.try_take(1, Instant::now()), Ok(()));

            let mut closed = QueryBudget::new(0, 5, Instant::now());
            assert_eq!(closed.try_take(5, Instant::now()), Ok(()));
            assert_eq!(
                closed.try_take(1, Instant::now()),
                Err(OverBudget::RetryAfter(Duration::MAX))
            );
        });
    }
}
