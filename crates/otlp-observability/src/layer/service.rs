//! The `Metrics` service.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use otlp_core::{Classify, Payload};
use tower_service::Service;

use super::future::{Recording, ResponseFuture};
use crate::SelfMetrics;

/// Records every call of the inner service: count and duration per signal
/// and outcome, in-flight requests, and exporter health.
///
/// The outcome is `ok` on success and the error's [`Classify`] label
/// (`retryable`, `throttled`, `permanent`, `too_large`) on failure; a call
/// whose future is dropped before it finishes counts as `cancelled`. Errors
/// pass through unchanged: this layer adds no failure of its own.
#[derive(Clone, Debug)]
pub struct Metrics<S> {
    inner: S,
    metrics: Arc<SelfMetrics>,
    feed_health: bool,
}

// === impl Metrics ===

impl<S> Metrics<S> {
    /// Wraps `inner`, recording into `metrics`.
    pub fn new(inner: S, metrics: Arc<SelfMetrics>) -> Self {
        Self {
            inner,
            metrics,
            feed_health: true,
        }
    }

    /// Records requests only, leaving exporter health to
    /// [`SelfMetrics::record_attempt`] (see [`MetricsLayer::without_health`](crate::MetricsLayer::without_health)).
    pub fn without_health(mut self) -> Self {
        self.feed_health = false;
        self
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

impl<S, Req> Service<Req> for Metrics<S>
where
    S: Service<Req>,
    S::Error: Classify,
    Req: Payload,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let recording = Recording {
            label: req.label(),
            start: Instant::now(),
            _in_flight: self.metrics.in_flight_guard(),
            metrics: self.metrics.clone(),
            feed_health: self.feed_health,
            done: false,
        };
        ResponseFuture::new(self.inner.call(req), recording)
    }
}
