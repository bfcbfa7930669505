//! [`AdaptiveConcurrency`]: reserves a permit in `poll_ready`, hands it to the response future.

use std::{
    sync::Arc,
    task::{Context, Poll, ready},
};

use otlp_core::Classify;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::PollSemaphore;
use tower_service::Service;

use super::{ConcurrencyHandle, ConcurrencyPolicy, controller::Shared, future::ResponseFuture};

/// Limits the requests in flight to a limit it adapts to the upstream's
/// latency and back-pressure (see [`ConcurrencyPolicy`]).
///
/// `poll_ready` waits for a permit; `call` moves it into the response future,
/// which returns it when the response arrives or the future is dropped. A clone
/// shares the limit but never a reservation. Errors are the inner ones: this
/// layer adds no failure, it only waits.
#[derive(Debug)]
pub struct AdaptiveConcurrency<S> {
    inner: S,
    shared: Arc<Shared>,
    semaphore: PollSemaphore,
    permit: Option<OwnedSemaphorePermit>,
}

// === impl AdaptiveConcurrency ===

impl<S> AdaptiveConcurrency<S> {
    /// Wraps `inner` with its own limit.
    pub fn new(inner: S, policy: ConcurrencyPolicy) -> Self {
        Self::from_shared(inner, Arc::new(Shared::new(policy)))
    }

    pub(super) fn from_shared(inner: S, shared: Arc<Shared>) -> Self {
        AdaptiveConcurrency {
            inner,
            semaphore: PollSemaphore::new(shared.semaphore.clone()),
            shared,
            permit: None,
        }
    }

    /// A handle on the shared limit.
    pub fn handle(&self) -> ConcurrencyHandle {
        ConcurrencyHandle {
            shared: self.shared.clone(),
        }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone> Clone for AdaptiveConcurrency<S> {
    /// Shares the limit; the clone has no reservation of its own.
    fn clone(&self) -> Self {
        AdaptiveConcurrency {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            semaphore: self.semaphore.clone(),
            permit: None,
        }
    }
}

impl<S, Req> Service<Req> for AdaptiveConcurrency<S>
where
    S: Service<Req>,
    S::Error: Classify,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.permit.is_none() {
            let permit = ready!(self.semaphore.poll_acquire(cx));
            // The semaphore is owned by this layer and never closed.
            #[allow(clippy::expect_used)]
            let permit = permit.expect("the adaptive concurrency semaphore is never closed");
            self.permit = Some(permit);
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // Calling without a successful `poll_ready` breaks the `Service`
        // contract, as it does for tower's `ConcurrencyLimit`.
        #[allow(clippy::expect_used)]
        let permit = self
            .permit
            .take()
            .expect("poll_ready must return Ready(Ok) before call");
        self.shared.start();
        ResponseFuture::new(self.inner.call(request), self.shared.clone(), permit)
    }
}
