//! Calls in progress per peer on the federation surface. Each peer has its
//! own allowance, so one peer that opens streams and never reads them, or
//! floods slow calls, uses up only its own: a call beyond it is refused at
//! once with RESOURCE_EXHAUSTED, and the other peers and the operator are
//! not slowed. (HTTP/2 also caps the streams of one connection: see
//! `MAX_STREAMS_PER_CONNECTION`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::identity::AgencyId;
use crate::throttle::{Throttle, Verdict};

/// Most federation calls (streams included) one peer may have in progress.
pub const MAX_CALLS_PER_PEER: usize = 32;
/// Most HTTP/2 streams on one connection (either listener).
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// Each peer's allowance of calls in progress.
#[derive(Debug)]
pub struct CallLimits {
    per_peer: BTreeMap<AgencyId, Arc<Semaphore>>,
    max: usize,
    refusals: Throttle,
}

/// A call's place in its peer's allowance, given back when dropped.
#[derive(Debug)]
pub struct CallPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl CallLimits {
    pub fn new(peers: &[AgencyId], per_peer: usize) -> Self {
        Self {
            per_peer: peers
                .iter()
                .map(|p| (p.clone(), Arc::new(Semaphore::new(per_peer))))
                .collect(),
            max: per_peer,
            refusals: Throttle::new(5, Duration::from_secs(10)),
        }
    }

    /// A place for one more call from `peer`, or RESOURCE_EXHAUSTED.
    pub fn admit(&self, peer: &AgencyId) -> Result<CallPermit, Status> {
        let Some(allowance) = self.per_peer.get(peer) else {
            return Err(Status::permission_denied("not a configured peer"));
        };
        allowance
            .clone()
            .try_acquire_owned()
            .map(CallPermit)
            .map_err(|_| {
                if let Verdict::Write { suppressed } = self.refusals.event() {
                    tracing::warn!(peer = %peer, suppressed, "too many calls in progress from a peer; refused");
                }
                Status::resource_exhausted(format!(
                    "too many calls in progress from {peer}: at most {} at once \
                     (streams count until read to the end or cancelled); finish or cancel some and retry",
                    self.max
                ))
            })
    }
}

/// `stream`, holding `permit` until it ends or is dropped.
pub fn holding<S: Stream>(permit: CallPermit, stream: S) -> impl Stream<Item = S::Item> {
    stream.map(move |item| {
        let _held = &permit;
        item
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_has_its_own_allowance() {
        let (a, b): (AgencyId, AgencyId) = ("FR-SBDU".parse().unwrap(), "US-BIS".parse().unwrap());
        let limits = CallLimits::new(&[a.clone(), b.clone()], 2);
        let first = limits.admit(&a).unwrap();
        let _second = limits.admit(&a).unwrap();
        let refused = limits.admit(&a).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.message().contains("at most"), "{refused:?}");
        assert!(limits.admit(&b).is_ok(), "another peer is not affected");
        drop(first);
        assert!(limits.admit(&a).is_ok(), "a finished call frees its place");
        let stranger: AgencyId = "XX-SOLO".parse().unwrap();
        assert_eq!(
            limits.admit(&stranger).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
    }
}
