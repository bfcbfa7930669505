//! The facade's error: what failed while building or running the stack.

use otlp_config::ConfigError;
use otlp_core::Signal;
use otlp_observability::ObservabilityError;
use otlp_pipeline::PipelineError;
use otlp_resilience::ResilienceError;
use otlp_transport::TransportError;

/// An error building or running the otlp-rust stack.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// Called outside a tokio runtime.
    #[error(
        "otlp-rust needs a tokio runtime: build the exporter inside `#[tokio::main]` or `Runtime::block_on` (multi-thread or current-thread)"
    )]
    NoRuntime,
    /// The configuration is invalid or unreadable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A signal's exporter could not be built (bad endpoint, TLS files, missing feature).
    #[error("{signal} exporter: {source}")]
    Transport {
        /// The signal whose exporter failed.
        signal: Signal,
        /// The cause.
        #[source]
        source: TransportError,
    },
    /// A resilience policy was refused.
    #[error("retry or concurrency settings: {0}")]
    Resilience(#[source] ResilienceError),
    /// The pipeline could not be built or refused an item.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The admin server or logging could not start.
    #[error(transparent)]
    Observability(#[from] ObservabilityError),
    /// A broken internal invariant; please report it.
    #[error("internal error: {0}; please report this as a bug")]
    Internal(&'static str),
}
