//! Handlers at work, for a prompt shutdown. A call counts here while its
//! handler runs (until it has produced the head of its answer), not while
//! its answer is delivered: at shutdown the node waits for the work it
//! started (up to its grace period), never for a peer that does not read
//! what it asked for.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::sync::Notify;

/// The number of handlers at work on one or more surfaces.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<Count>);

#[derive(Debug, Default)]
struct Count {
    busy: AtomicUsize,
    idle: Notify,
}

/// One handler at work; counted until dropped.
struct Busy(Arc<Count>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    fn enter(&self) -> Busy {
        self.0.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.0.clone())
    }

    /// Handlers at work now.
    pub fn busy(&self) -> usize {
        self.0.busy.load(Ordering::Acquire)
    }

    /// Returns once no handler is at work.
    pub async fn idle(&self) {
        loop {
            let notified = self.0.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.busy() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl<S> tower::Layer<S> for InFlight {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: self.clone(),
        }
    }
}

/// A service whose calls are counted in an [`InFlight`].
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    count: InFlight,
}

impl<S, R> tower::Service<R> for Counted<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        CountedFuture {
            busy: self.count.enter(),
            inner: Box::pin(self.inner.call(request)),
        }
    }
}

/// A handler's future, counted until it completes or is dropped.
pub struct CountedFuture<F> {
    #[allow(dead_code)]
    busy: Busy,
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for CountedFuture<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_waits_for_handlers_not_for_answers() {
        crate::test_support::run_paused(async {
            let count = InFlight::default();
            let mut service = tower::Layer::layer(
                &count,
                tower::service_fn(|ms: u64| async move {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    Ok::<_, std::convert::Infallible>(ms)
                }),
            );
            let slow = tower::Service::call(&mut service, 500);
            let quick = tower::Service::call(&mut service, 10);
            assert_eq!(count.busy(), 2);
            let running = tokio::spawn(futures::future::join(slow, quick));
            let started = tokio::time::Instant::now();
            count.idle().await;
            assert_eq!(started.elapsed(), std::time::Duration::from_millis(500));
            assert_eq!(count.busy(), 0);
            assert!(running.await.is_ok());
            let dropped = tower::Service::call(&mut service, 1_000);
            assert_eq!(count.busy(), 1);
            drop(dropped);
            assert_eq!(count.busy(), 0, "a cancelled call is no longer at work");
        });
    }
}
