//! Calls in progress per peer on the federation surface. Each peer has its
//! own allowance, so one peer that opens streams and never reads them, or
//! floods slow calls, uses up only its own: a call beyond it is refused at
//! once with RESOURCE_EXHAUSTED, and the other peers and the operator are
//! not slowed. (HTTP/2 also caps the streams of one connection: see
//! `MAX_STREAMS_PER_CONNECTION`.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::identity::AgencyId;
use crate::service::guard::Caller;
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

/// Admits every call of a peer against its allowance, in front of the
/// Federation handlers (behind the guard, which names the caller). The place
/// is held by the response body: until the last byte of the answer has been
/// handed to the connection, or the call is cancelled. A stream the peer
/// never reads, or an answer it never takes, keeps counting against it.
#[derive(Debug, Clone)]
pub struct PerPeerLayer(pub Arc<CallLimits>);

impl<S> tower::Layer<S> for PerPeerLayer {
    type Service = PerPeer<S>;
    fn layer(&self, inner: S) -> PerPeer<S> {
        PerPeer {
            inner,
            limits: self.0.clone(),
        }
    }
}

/// See [`PerPeerLayer`].
#[derive(Debug, Clone)]
pub struct PerPeer<S> {
    inner: S,
    limits: Arc<CallLimits>,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for PerPeer<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let admitted = match request.extensions().get::<Caller>() {
            Some(caller) => self.limits.admit(&caller.0.agency),
            None => Err(Status::unauthenticated("no verified caller")),
        };
        match admitted {
            Err(status) => Box::pin(futures::future::ready(Ok(status.into_http()))),
            Ok(permit) => {
                let answer = self.inner.call(request);
                Box::pin(async move {
                    let response = answer.await?;
                    Ok(response.map(|body| tonic::body::Body::new(Holding::new(body, permit))))
                })
            }
        }
    }
}

/// The most of an answer handed to the connection at once. HTTP/2 buffers
/// a piece it cannot send yet and asks for the next only when the peer has
/// read enough; in small pieces, a body is done only once the peer has
/// taken (nearly) all of it, so an answer left unread keeps its place.
const SLICE: usize = 16 * 1024;

/// A response body holding its call's place until it is dropped, handed
/// out in slices of at most [`SLICE`] bytes.
struct Holding {
    body: tonic::body::Body,
    rest: hyper::body::Bytes,
    #[allow(dead_code)]
    permit: CallPermit,
}

impl Holding {
    fn new(body: tonic::body::Body, permit: CallPermit) -> Self {
        Self {
            body,
            rest: hyper::body::Bytes::new(),
            permit,
        }
    }

    fn slice(&mut self) -> hyper::body::Frame<hyper::body::Bytes> {
        let n = self.rest.len().min(SLICE);
        hyper::body::Frame::data(self.rest.split_to(n))
    }
}

impl hyper::body::Body for Holding {
    type Data = hyper::body::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Status>>> {
        if !self.rest.is_empty() {
            return Poll::Ready(Some(Ok(self.slice())));
        }
        match Pin::new(&mut self.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    self.rest = data;
                    Poll::Ready(Some(Ok(self.slice())))
                }
                Err(other) => Poll::Ready(Some(Ok(other))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        if self.rest.is_empty() {
            self.body.size_hint()
        } else {
            hyper::body::SizeHint::default()
        }
    }
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
