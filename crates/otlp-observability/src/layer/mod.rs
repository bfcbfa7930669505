//! The `Metrics` tower middleware: counts export requests, times them, and
//! feeds exporter health.
//!
//! It is generic over the request (which only needs [`otlp_core::Payload`] for
//! its label) and over the error (which only needs [`otlp_core::Classify`] for
//! the outcome label), so it wraps any tower service.
//!
//! ```
//! use std::sync::Arc;
//! use otlp_core::{Classify, Payload, Retryability};
//! use otlp_observability::{MetricsLayer, SelfMetrics};
//! use tower::{ServiceExt, service_fn};
//! use tower_layer::Layer;
//!
//! struct Spans(u64);
//! impl Payload for Spans {
//!     fn items(&self) -> u64 { self.0 }
//!     fn byte_size(&self) -> usize { 0 }
//!     fn label(&self) -> &'static str { "traces" }
//! }
//! #[derive(Debug)]
//! struct Unavailable;
//! impl Classify for Unavailable {
//!     fn classify(&self) -> Retryability { Retryability::Retryable }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let metrics = Arc::new(SelfMetrics::new());
//! let svc = MetricsLayer::new(metrics.clone())
//!     .layer(service_fn(|_: Spans| async { Err::<(), _>(Unavailable) }));
//! assert!(svc.oneshot(Spans(5)).await.is_err());
//! assert_eq!(metrics.exporter_health().consecutive_failures(), 1);
//! # }
//! ```

mod future;
mod service;

pub use self::{future::ResponseFuture, service::Metrics};

use std::sync::Arc;

use tower_layer::Layer;

use crate::SelfMetrics;

/// Wraps a service in [`Metrics`].
#[derive(Clone, Debug)]
pub struct MetricsLayer {
    metrics: Arc<SelfMetrics>,
    feed_health: bool,
}

// === impl MetricsLayer ===

impl MetricsLayer {
    /// Records into `metrics` (and its [`ExporterHealth`](crate::ExporterHealth)).
    pub fn new(metrics: Arc<SelfMetrics>) -> Self {
        Self {
            metrics,
            feed_health: true,
        }
    }

    /// Records requests only and leaves exporter health alone: for a layer
    /// outside a retry loop whose attempts feed health themselves through
    /// [`SelfMetrics::record_attempt`] (as the facade's stack does), so that
    /// health sees every attempt and not only a whole loop's final result.
    pub fn without_health(mut self) -> Self {
        self.feed_health = false;
        self
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        let m = Metrics::new(inner, self.metrics.clone());
        if self.feed_health {
            m
        } else {
            m.without_health()
        }
    }
}

#[cfg(test)]
mod tests;
