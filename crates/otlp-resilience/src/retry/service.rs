//! [`Retry`]: the service that resends retryable failures.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use otlp_core::Classify;
use tower_service::Service;

use super::{RetryPolicy, Shared, future::ResponseFuture};
use crate::RetryError;

/// Resends a request whose error classifies as retryable or throttled, with
/// exponential backoff and jitter, within the policy's count, elapsed-time and
/// budget limits; each attempt may be bounded by a per-attempt timeout.
///
/// The request must be `Clone` (an encoded batch clones its bytes cheaply) and
/// the inner service `Clone` (the response future drives its own copy for the
/// retries). Errors are the inner ones, wrapped in [`RetryError`] only to add
/// the per-attempt timeout. Needs a tokio runtime with the time driver.
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    shared: Arc<Shared>,
}

// === impl Retry ===

impl<S> Retry<S> {
    /// Wraps `inner`, retrying by `policy`.
    pub fn new(inner: S, policy: RetryPolicy) -> Self {
        use tower_layer::Layer;
        crate::RetryLayer::new(policy).layer(inner)
    }

    pub(super) fn from_shared(inner: S, shared: Arc<Shared>) -> Self {
        Retry { inner, shared }
    }

    /// The policy applied.
    pub fn policy(&self) -> &RetryPolicy {
        &self.shared.policy
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

impl<S, Req> Service<Req> for Retry<S>
where
    S: Service<Req> + Clone,
    S::Error: Classify,
    Req: Clone,
{
    type Response = S::Response;
    type Error = RetryError<S::Error>;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(RetryError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        self.shared.policy.budget().deposit();
        // The ready service takes this call; the future keeps a fresh clone for
        // retries, which it drives to readiness itself.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let future = ready.call(request.clone());
        ResponseFuture::new(request, ready, self.shared.clone(), future)
    }
}
