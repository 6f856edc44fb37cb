//! A counter that lets through at most `n` events per window and counts the
//! rest, for logs and audit entries a hostile caller could otherwise
//! multiply: the first few of a window are written one by one, the others
//! are summed into the next one written. Time is tokio's, so tests pause it.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// What to do with one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it, saying that `suppressed` earlier ones were not written.
    Write { suppressed: u64 },
    /// Count it only.
    Quiet,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    written: u32,
    suppressed: u64,
}

/// At most `per_window` events written per `window`.
#[derive(Debug)]
pub struct Throttle {
    per_window: u32,
    window: Duration,
    state: Mutex<Window>,
}

impl Throttle {
    pub fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window: per_window.max(1),
            window,
            state: Mutex::new(Window {
                started: Instant::now(),
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether this event is written, and how many were kept quiet before it.
    pub fn event(&self) -> Verdict {
        let now = Instant::now();
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(w.started) >= self.window {
            w.started = now;
            w.written = 0;
        }
        if w.written < self.per_window {
            w.written += 1;
            let suppressed = std::mem::take(&mut w.suppressed);
            Verdict::Write { suppressed }
        } else {
            w.suppressed += 1;
            Verdict::Quiet
        }
    }
}

/// A token bucket per peer for calls that are cheap to send and costly to
/// take (deconfliction hits, overlap reports).
#[derive(Debug)]
pub struct PerPeerRate {
    per_day: u64,
    burst: u64,
    buckets:
        Mutex<std::collections::BTreeMap<crate::identity::AgencyId, crate::privacy::QueryBudget>>,
}

impl PerPeerRate {
    pub fn new(per_day: u64, burst: u64) -> Self {
        Self {
            per_day,
            burst,
            buckets: Mutex::default(),
        }
    }

    /// One call from `peer`'s allowance, or how long until the next.
    pub fn take(&self, peer: &crate::identity::AgencyId) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets
            .entry(peer.clone())
            .or_insert_with(|| crate::privacy::QueryBudget::new(self.per_day, self.burst, now));
        bucket.try_take(1, now).map_err(|e| match e {
            crate::privacy::OverBudget::RetryAfter(wait) => wait,
            crate::privacy::OverBudget::ExceedsBurst { .. } => Duration::MAX,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_few_through_per_window_and_counts_the_rest() {
        crate::test_support::run_paused(async {
            let t = Throttle::new(2, Duration::from_secs(10));
            assert_eq!(t.event(), Verdict::Write { suppressed: 0 });
            assert_eq!(t.event(), Verdict::Write { suppressed: 0 });
            for _ in 0..1000 {
                assert_eq!(t.event(), Verdict::Quiet);
            }
            tokio::time::advance(Duration::from_secs(10)).await;
            assert_eq!(t.event(), Verdict::Write { suppressed: 1000 });
            assert_eq!(t.event(), Verdict::Write { suppressed: 0 });
            assert_eq!(t.event(), Verdict::Quiet);
        });
    }
}
