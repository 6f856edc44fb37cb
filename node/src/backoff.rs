//! The one retry policy: every loop that retries a peer (pushes, pulls,
//! consultation steps, deconfliction hits) waits with a [`Backoff`] between
//! failed attempts: exponential from `sync.retry_min_ms`, capped at
//! `sync.retry_max_ms`, and jittered so that the nodes of a federation that
//! lost a peer at the same moment do not all retry at the same moment.
//!
//! [`Pacer`] paces the loop of a worker that delivers what waits (pushes,
//! consultation steps, deconfliction hits) with this policy.
//!
//! Time is tokio's, so tests drive it with `tokio::time::pause()`.

use std::time::Duration;

use rand::Rng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The bounds of a back-off: the first delay and the longest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub min: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// `min` up to `max` (a `max` below `min` is raised to it).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
        }
    }

    /// A fresh back-off under this policy.
    pub fn backoff(self) -> Backoff {
        Backoff::new(self)
    }
}

/// The state of one retrying loop: the next delay doubles after each
/// failure up to the cap, and returns to the minimum after a success.
/// Each wait is the current delay scaled by a random factor in [0.5, 1].
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: RetryPolicy,
    current: Duration,
    jitter: bool,
}

impl Backoff {
    pub fn new(policy: RetryPolicy) -> Self {
        Self {
            policy,
            current: policy.min,
            jitter: true,
        }
    }

    /// The same back-off without jitter (exact delays, for tests).
    #[must_use]
    pub fn without_jitter(mut self) -> Self {
        self.jitter = false;
        self
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// After a success: the next failure waits the minimum again.
    pub fn reset(&mut self) {
        self.current = self.policy.min;
    }

    /// After a failure: how long to wait before the next attempt. Each call
    /// doubles the delay that the next one starts from, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = base.saturating_mul(2).min(self.policy.max);
        if self.jitter {
            base.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
        } else {
            base
        }
    }

    /// How long a loop with nothing to do waits before looking again.
    pub fn idle(&self) -> Duration {
        self.policy.max
    }
}

/// How one round of a delivering worker went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Something was delivered and more may wait: go again at once.
    More,
    /// Nothing waits: look again when woken, or after the idle wait.
    Idle,
    /// The peer could not take it: retry after the back-off, or when woken.
    Failed,
}

/// Paces a delivering worker's rounds: `loop { let r = round().await; if
/// !pacer.pause(r, &wake).await { return } }`.
#[derive(Debug)]
pub struct Pacer {
    backoff: Backoff,
    stop: CancellationToken,
}

impl Pacer {
    pub fn new(retry: RetryPolicy, stop: CancellationToken) -> Self {
        Self {
            backoff: retry.backoff(),
            stop,
        }
    }

    /// Waits as `round` says (or until `wake`); `false` once stopped.
    pub async fn pause(&mut self, round: Round, wake: &Notify) -> bool {
        let pause = match round {
            Round::More => {
                self.backoff.reset();
                return !self.stop.is_cancelled();
            }
            Round::Idle => {
                self.backoff.reset();
                self.backoff.idle()
            }
            Round::Failed => self.backoff.next_delay(),
        };
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(pause) => true,
            () = wake.notified() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = RetryPolicy::new(ms(250), ms(1_500))
            .backoff()
            .without_jitter();
        let delays: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(
            delays,
            [ms(250), ms(500), ms(1_000), ms(1_500), ms(1_500), ms(1_500)]
        );
        b.reset();
        assert_eq!(b.next_delay(), ms(250));
        assert_eq!(b.idle(), ms(1_500));
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_delay() {
        let mut b = RetryPolicy::new(ms(1_000), ms(8_000)).backoff();
        for base in [1_000, 2_000, 4_000, 8_000, 8_000, 8_000] {
            let d = b.next_delay();
            assert!(d >= ms(base / 2) && d <= ms(base), "{d:?} for {base}");
        }
    }

    #[test]
    fn a_cap_below_the_minimum_is_the_minimum() {
        let policy = RetryPolicy::new(ms(500), ms(100));
        assert_eq!(policy.max, ms(500));
        let mut b = policy.backoff().without_jitter();
        assert_eq!((b.next_delay(), b.next_delay()), (ms(500), ms(500)));
    }

    #[test]
    fn huge_delays_saturate_instead_of_overflowing() {
        let mut b = RetryPolicy::new(Duration::MAX / 2, Duration::MAX)
            .backoff()
            .without_jitter();
        b.next_delay();
        b.next_delay();
        assert_eq!(b.next_delay(), Duration::MAX);
    }

    #[test]
    fn sleeping_the_delays_takes_exactly_their_sum_in_paused_time() {
        crate::test_support::run_paused(async {
            let mut b = RetryPolicy::new(ms(250), ms(30_000))
                .backoff()
                .without_jitter();
            let start = tokio::time::Instant::now();
            for _ in 0..8 {
                tokio::time::sleep(b.next_delay()).await;
            }
            // 250 + 500 + ... + 16000 (7 doublings) + 30000 (capped).
            assert_eq!(start.elapsed(), ms(250 * 127 + 30_000));
        });
    }

    #[test]
    fn a_paced_worker_backs_off_while_failing_and_waits_idle_or_woken() {
        crate::test_support::run_paused(async {
            let stop = CancellationToken::new();
            let mut pacer = Pacer::new(RetryPolicy::new(ms(100), ms(1_000)), stop.clone());
            let wake = Notify::new();
            let start = tokio::time::Instant::now();
            let mut at = Vec::new();
            // Fails three times, delivers once, idles; woken once, then idles.
            let script = [
                Round::Failed,
                Round::Failed,
                Round::Failed,
                Round::More,
                Round::Idle,
                Round::Idle,
                Round::Idle,
            ];
            for (n, round) in script.into_iter().enumerate() {
                at.push(start.elapsed());
                if n == 4 {
                    wake.notify_one();
                }
                if n == 6 {
                    stop.cancel();
                }
                if !pacer.pause(round, &wake).await {
                    break;
                }
            }
            // Jittered waits: 100 ms at most, then 200, then 400; none after a
            // delivery; none after the wake; then the idle cap (1 s); stopped.
            assert_eq!(at.len(), 7);
            assert_eq!(at[0], Duration::ZERO);
            let gaps: Vec<Duration> = at.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
            for (gap, max) in gaps.iter().zip([100, 200, 400]) {
                assert!(*gap >= ms(max / 2) && *gap <= ms(max), "{gaps:?}");
            }
            assert_eq!(gaps[3], Duration::ZERO, "{gaps:?}");
            assert_eq!(gaps[4], Duration::ZERO, "woken: {gaps:?}");
            assert_eq!(gaps[5], ms(1_000), "idle: {gaps:?}");
            assert!(!pacer.pause(Round::More, &wake).await, "stopped");
        });
    }
}
