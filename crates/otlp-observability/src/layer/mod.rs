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
}

// === impl MetricsLayer ===

impl MetricsLayer {
    /// Records into `metrics` (and its [`ExporterHealth`](crate::ExporterHealth)).
    pub fn new(metrics: Arc<SelfMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = Metrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Metrics::new(inner, self.metrics.clone())
    }
}

#[cfg(test)]
mod tests;
