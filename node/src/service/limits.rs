//! Calls in progress per peer on the federation surface. Each peer has its
//! own allowance, so one peer that opens streams and never reads them, or
//! floods slow calls, uses up only its own: a call beyond it is refused at
//! once with RESOURCE_EXHAUSTED, and the other peers and the operator are
//! not slowed. (HTTP/2 also caps the streams of one connection: see
//! `MAX_STREAMS_PER_CONNECTION`.)
//!
//! Each peer also has a rate of request bytes read ([`ReadRate`]): past it, its
//! requests are read more slowly, so a peer sending large junk batches as fast
//! as it can costs the node at most that many bytes a second to receive and
//! decode, and the peer waits on HTTP/2 flow control.
//!
//! And an allowance of refused calls ([`Refusals`]): a peer whose calls are
//! refused faster than an honest node's ever are (junk, unknown serials, calls
//! past its limits) has each further refusal held back for [`REFUSAL_HOLD`]
//! before it is sent. Its calls then cost the node a timer, not a loop of
//! answers, and it can make at most [`MAX_STREAMS_PER_CONNECTION`] calls per hold
//! on a connection, however fast it sends them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

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
/// Refused calls a peer may have at once before its refusals are held back.
pub const REFUSALS_BURST: f64 = 100.0;
/// Refused calls a second that a peer's allowance refills at.
pub const REFUSALS_PER_SEC: f64 = 20.0;
/// How long a refusal past the peer's allowance waits before it is sent.
pub const REFUSAL_HOLD: Duration = Duration::from_secs(1);

/// Each peer's allowance of calls in progress, its rate of bytes read, and its allowance
/// of refused calls.
#[derive(Debug)]
pub struct CallLimits {
    per_peer: BTreeMap<AgencyId, PeerLimits>,
    max: usize,
    refusals: Throttle,
}

/// One peer's allowances.
#[derive(Debug)]
struct PeerLimits {
    calls: Arc<Semaphore>,
    rate: Arc<ReadRate>,
    refused: Arc<Refusals>,
}

/// Units refilled at a steady rate up to a cap, as of an instant: what [`Refusals`] and
/// [`ReadRate`] count with.
#[derive(Debug)]
struct Bucket {
    cap: f64,
    per_sec: f64,
    /// Units there now (negative: debt), as of the instant.
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// Full to `cap`.
    fn new(cap: f64, per_sec: f64) -> Self {
        Self {
            cap,
            per_sec,
            state: Mutex::new((cap, Instant::now())),
        }
    }

    /// The bucket refilled up to `now`.
    fn refill(&self, now: Instant) -> std::sync::MutexGuard<'_, (f64, Instant)> {
        let mut b = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(b.1).as_secs_f64();
        b.0 = (b.0 + elapsed * self.per_sec).min(self.cap);
        b.1 = now;
        b
    }
}

/// A peer's allowance of refused calls: a bucket of [`REFUSALS_BURST`] refilled at
/// [`REFUSALS_PER_SEC`]. A refusal drawn from an empty bucket is held back.
#[derive(Debug)]
pub struct Refusals(Bucket);

impl Refusals {
    pub fn new(burst: f64, per_sec: f64) -> Self {
        Self(Bucket::new(burst, per_sec))
    }

    /// Counts one refusal: how long to hold it back before it is sent (zero: send it
    /// now).
    pub fn draw(&self, now: Instant) -> Duration {
        let mut b = self.0.refill(now);
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            Duration::ZERO
        } else {
            REFUSAL_HOLD
        }
    }
}

/// A peer's request bytes read per second: a bucket holding one second's worth, which
/// a frame may overdraw (frames are at most 16 KiB); reading waits until it is out of
/// debt again.
#[derive(Debug)]
pub struct ReadRate(Bucket);

impl ReadRate {
    pub fn new(bytes_per_sec: u64) -> Self {
        let per_sec = bytes_per_sec.max(1) as f64;
        Self(Bucket::new(per_sec, per_sec))
    }

    /// How long to wait before reading more (zero: now).
    pub fn wait(&self, now: Instant) -> Duration {
        let b = self.0.refill(now);
        if b.0 > 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-b.0 / self.0.per_sec).max(Duration::from_millis(1))
        }
    }

    /// Counts `n` bytes read.
    pub fn take(&self, n: usize, now: Instant) {
        self.0.refill(now).0 -= n as f64;
    }
}

/// A call's place in its peer's allowance, given back when dropped.
#[derive(Debug)]
pub struct CallPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl CallLimits {
    /// `per_peer` calls in progress and `bytes_per_sec` read for each of `peers`.
    pub fn new(peers: &[AgencyId], per_peer: usize, bytes_per_sec: u64) -> Self {
        Self {
            per_peer: peers
                .iter()
                .map(|p| {
                    let limits = PeerLimits {
                        calls: Arc::new(Semaphore::new(per_peer)),
                        rate: Arc::new(ReadRate::new(bytes_per_sec)),
                        refused: Arc::new(Refusals::new(REFUSALS_BURST, REFUSALS_PER_SEC)),
                    };
                    (p.clone(), limits)
                })
                .collect(),
            max: per_peer,
            refusals: Throttle::new(5, Duration::from_secs(10)),
        }
    }

    /// `peer`'s allowance of refused calls (None: not a configured peer).
    pub fn refusals(&self, peer: &AgencyId) -> Option<Arc<Refusals>> {
        self.per_peer.get(peer).map(|l| l.refused.clone())
    }

    /// A place for one more call from `peer` and the rate its request is read at, or
    /// RESOURCE_EXHAUSTED.
    pub fn admit(&self, peer: &AgencyId) -> Result<(CallPermit, Arc<ReadRate>), Status> {
        let Some(limits) = self.per_peer.get(peer) else {
            return Err(Status::permission_denied("not a configured peer"));
        };
        limits
            .calls
            .clone()
            .try_acquire_owned()
            .map(|permit| (CallPermit(permit), limits.rate.clone()))
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
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Send
        + 'static,
    B: hyper::body::Body<Data = hyper::body::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
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
        let (admitted, refusals) = match request.extensions().get::<Caller>() {
            Some(caller) => (
                self.limits.admit(&caller.0.agency),
                self.limits.refusals(&caller.0.agency),
            ),
            None => (Err(Status::unauthenticated("no verified caller")), None),
        };
        match admitted {
            Err(status) => Box::pin(async move {
                hold_if_over(refusals.as_deref(), true).await;
                Ok(status.into_http())
            }),
            Ok((permit, rate)) => {
                let request = request.map(|body| {
                    tonic::body::Body::new(Metered {
                        body: tonic::body::Body::new(body),
                        rate,
                        sleep: None,
                    })
                });
                let answer = self.inner.call(request);
                Box::pin(async move {
                    let response = answer.await?;
                    hold_if_over(refusals.as_deref(), refused(&response)).await;
                    Ok(response.map(|body| tonic::body::Body::new(Holding::new(body, permit))))
                })
            }
        }
    }
}

/// Whether an answer is a refusal: a gRPC status other than OK in its headers (a
/// call that fails before any message; a stream's later error comes in its
/// trailers and is not counted).
fn refused<B>(response: &http::Response<B>) -> bool {
    response
        .headers()
        .get("grpc-status")
        .is_some_and(|code| code.as_bytes() != b"0")
}

/// Waits before a refusal goes out when the peer is past its allowance of refusals
/// (the call's place, if it has one, is held meanwhile).
async fn hold_if_over(refusals: Option<&Refusals>, refused: bool) {
    if let (true, Some(refusals)) = (refused, refusals) {
        let hold = refusals.draw(Instant::now());
        if !hold.is_zero() {
            tokio::time::sleep(hold).await;
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

/// A request body read no faster than its peer's [`ReadRate`].
struct Metered {
    body: tonic::body::Body,
    rate: Arc<ReadRate>,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for Metered {
    type Data = hyper::body::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Status>>> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                std::task::ready!(sleep.as_mut().poll(cx));
                self.sleep = None;
            }
            let wait = self.rate.wait(Instant::now());
            if wait.is_zero() {
                break;
            }
            self.sleep = Some(Box::pin(tokio::time::sleep(wait)));
        }
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.rate.take(data.len(), Instant::now());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_has_its_own_allowance() {
        let (a, b): (AgencyId, AgencyId) = ("FR-SBDU".parse().unwrap(), "US-BIS".parse().unwrap());
        let limits = CallLimits::new(&[a.clone(), b.clone()], 2, 1 << 20);
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

#[cfg(test)]
mod refusal_tests {
    use super::*;

    #[test]
    fn refusals_past_the_allowance_are_held_back_and_the_allowance_refills() {
        crate::test_support::run_paused(async {
            let r = Refusals::new(3.0, 2.0);
            let now = Instant::now();
            for _ in 0..3 {
                assert_eq!(r.draw(now), Duration::ZERO);
            }
            assert_eq!(r.draw(now), REFUSAL_HOLD, "past the burst");
            assert_eq!(r.draw(now), REFUSAL_HOLD);
            // Half a second refills one refusal at 2 a second, and no more.
            let later = now + Duration::from_millis(500);
            assert_eq!(r.draw(later), Duration::ZERO);
            assert_eq!(r.draw(later), REFUSAL_HOLD);
            // Never above the burst, however long the peer was quiet.
            let much_later = later + Duration::from_secs(3_600);
            for _ in 0..3 {
                assert_eq!(r.draw(much_later), Duration::ZERO);
            }
            assert_eq!(r.draw(much_later), REFUSAL_HOLD);
        });
    }

    #[test]
    fn only_a_status_other_than_ok_in_the_headers_is_a_refusal() {
        let with = |code: Option<&str>| {
            let mut r = http::Response::new(());
            if let Some(code) = code {
                r.headers_mut().insert("grpc-status", code.parse().unwrap());
            }
            refused(&r)
        };
        assert!(with(Some("3")), "INVALID_ARGUMENT");
        assert!(with(Some("8")), "RESOURCE_EXHAUSTED");
        assert!(!with(Some("0")), "OK");
        assert!(!with(None), "an answer whose status comes in its trailers");
    }
}

#[cfg(test)]
mod rate_tests {
    use futures::StreamExt;
    use hyper::body::{Bytes, Frame};

    use super::*;

    /// A request body of `frames` frames of 16 KiB, read at `rate`.
    fn metered(frames: usize, rate: &Arc<ReadRate>) -> Metered {
        let chunks = futures::stream::iter(
            (0..frames).map(|_| Ok::<_, Status>(Frame::data(Bytes::from(vec![0u8; 16 * 1024])))),
        );
        Metered {
            body: tonic::body::Body::new(http_body_util::StreamBody::new(chunks)),
            rate: rate.clone(),
            sleep: None,
        }
    }

    async fn read_all(body: Metered) -> usize {
        let mut body = std::pin::pin!(http_body_util::BodyStream::new(body));
        let mut n = 0;
        while let Some(frame) = body.next().await {
            n += frame.unwrap().into_data().map_or(0, |d| d.len());
        }
        n
    }

    #[test]
    fn a_peer_past_its_rate_is_read_more_slowly_and_another_is_not() {
        crate::test_support::run_paused(async {
            let limits = CallLimits::new(
                &["FR-SBDU".parse().unwrap(), "US-BIS".parse().unwrap()],
                8,
                256 * 1024,
            );
            let (_, fr) = limits.admit(&"FR-SBDU".parse().unwrap()).unwrap();
            let (_, us) = limits.admit(&"US-BIS".parse().unwrap()).unwrap();
            // One second's worth is read at once.
            let t = Instant::now();
            assert_eq!(read_all(metered(16, &fr)).await, 256 * 1024);
            assert!(t.elapsed() < Duration::from_millis(10), "{:?}", t.elapsed());
            // Three more seconds' worth, over two calls of the same peer, take about three
            // seconds; another peer's call meanwhile is read at once.
            let t = Instant::now();
            let (a, b, other) = tokio::join!(
                read_all(metered(24, &fr)),
                read_all(metered(24, &fr)),
                async {
                    let n = read_all(metered(16, &us)).await;
                    (n, t.elapsed())
                }
            );
            assert_eq!(a + b, 768 * 1024);
            let took = t.elapsed();
            assert!(
                took >= Duration::from_millis(2_900) && took < Duration::from_millis(3_300),
                "{took:?}"
            );
            assert_eq!(other.0, 256 * 1024);
            assert!(other.1 < Duration::from_millis(10), "{:?}", other.1);
        });
    }
}
