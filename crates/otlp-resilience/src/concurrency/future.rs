//! The response future of [`AdaptiveConcurrency`](crate::AdaptiveConcurrency):
//! holds the permit and reports the outcome when done or dropped.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use otlp_core::Classify;
use pin_project_lite::pin_project;
use tokio::{sync::OwnedSemaphorePermit, time::Instant};

use super::controller::{Outcome, Shared};

pin_project! {
    /// The future returned by [`AdaptiveConcurrency`](crate::AdaptiveConcurrency).
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        guard: Option<Guard>,
    }
}

/// Returns the permit and the outcome to the controller exactly once.
#[derive(Debug)]
struct Guard {
    shared: Arc<Shared>,
    permit: Option<OwnedSemaphorePermit>,
    started: Instant,
}

// === impl ResponseFuture ===

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, shared: Arc<Shared>, permit: OwnedSemaphorePermit) -> Self {
        ResponseFuture {
            inner,
            guard: Some(Guard {
                shared,
                permit: Some(permit),
                started: Instant::now(),
            }),
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Classify,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Some(mut guard) = this.guard.take() {
            let outcome = match &result {
                Err(e) if e.classify().is_retryable() => Outcome::BackPressure,
                _ => Outcome::Sample(guard.started.elapsed()),
            };
            guard.finish(outcome);
        }
        Poll::Ready(result)
    }
}

// === impl Guard ===

impl Guard {
    fn finish(&mut self, outcome: Outcome) {
        if let Some(permit) = self.permit.take() {
            self.shared.finish(permit, outcome);
        }
    }
}

impl Drop for Guard {
    /// A request dropped in flight was cancelled, usually by a timeout above:
    /// that is back-pressure.
    fn drop(&mut self) {
        self.finish(Outcome::BackPressure);
    }
}
