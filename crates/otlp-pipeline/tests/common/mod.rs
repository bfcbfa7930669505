//! Helpers the pipeline's integration tests share: a classifiable test
//! error, an always-succeeding and a never-answering collector, and the
//! accounting check.

#![allow(dead_code, unreachable_pub)]

use std::fmt;

use otlp_core::{Batch, Classify, ExportResponse, Retryability};
use otlp_pipeline::Stats;

/// An export error of a chosen class; `invalid` marks a refusal as an
/// invalid request (gRPC `INVALID_ARGUMENT`, HTTP 400).
#[derive(Debug, Clone)]
pub struct TestError {
    pub class: Retryability,
    pub invalid: bool,
}

impl TestError {
    /// An error of `class` that is not an invalid-request refusal.
    pub fn new(class: Retryability) -> Self {
        Self {
            class,
            invalid: false,
        }
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "test error ({}, invalid {})",
            self.class.as_str(),
            self.invalid
        )
    }
}

impl Classify for TestError {
    fn classify(&self) -> Retryability {
        self.class
    }
    fn is_invalid_request(&self) -> bool {
        self.invalid
    }
}

/// A collector that accepts every batch.
pub fn ok_service() -> impl tower::Service<
    Batch,
    Response = ExportResponse,
    Error = TestError,
    Future = impl Future<Output = Result<ExportResponse, TestError>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|_b: Batch| async { Ok::<_, TestError>(ExportResponse::success()) })
}

/// A collector that never answers.
pub fn stalled() -> impl tower::Service<
    Batch,
    Response = ExportResponse,
    Error = TestError,
    Future = impl Future<Output = Result<ExportResponse, TestError>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(|_b: Batch| std::future::pending::<Result<ExportResponse, TestError>>())
}

/// accepted + recovered = sent + dropped + failed + queued, per signal.
pub fn assert_adds_up(stats: &Stats) {
    for s in &stats.signals {
        assert_eq!(
            s.accepted + s.recovered,
            s.sent + s.dropped_total() + s.failed_total() + s.queued_items,
            "{s:?}"
        );
    }
}
