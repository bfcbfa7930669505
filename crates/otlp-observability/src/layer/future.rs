//! The response future of the `Metrics` service.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use otlp_core::Classify;
use pin_project_lite::pin_project;

use crate::{SelfMetrics, self_metrics::InFlightGuard};

pin_project! {
    /// Completes with the inner service's result after recording it.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        recording: Option<Recording>,
    }
}

/// What one call needs to record when it ends; dropping it unfinished
/// records a cancelled call.
#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) label: &'static str,
    pub(crate) start: Instant,
    pub(crate) _in_flight: InFlightGuard,
    pub(crate) metrics: Arc<SelfMetrics>,
    pub(crate) feed_health: bool,
    pub(crate) done: bool,
}

// === impl ResponseFuture ===

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, recording: Recording) -> Self {
        Self {
            inner,
            recording: Some(recording),
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
        if let Some(recording) = this.recording.take() {
            match &result {
                Ok(_) => recording.finish("ok", true),
                Err(e) => recording.finish(e.classify().as_str(), false),
            }
        }
        Poll::Ready(result)
    }
}

// === impl Recording ===

impl Recording {
    fn finish(mut self, outcome: &'static str, ok: bool) {
        self.done = true;
        self.metrics
            .record_request(self.label, outcome, self.start.elapsed());
        if !self.feed_health {
            return;
        }
        let health = self.metrics.exporter_health();
        if ok {
            health.record_success();
        } else {
            health.record_failure();
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        // A caller (a timeout above us, a shutdown) gave up on the request:
        // count it, but leave exporter health alone, since the collector did
        // not answer either way.
        if !self.done {
            self.metrics
                .record_request(self.label, "cancelled", self.start.elapsed());
        }
    }
}
