//! Self-metrics, health checks, the admin server, a log ring and a stage profiler.
//!
//! This crate sits beside the pipeline: the pipeline, the resilience layers
//! and the transport report into it ([`SelfMetrics`] implements
//! [`otlp_core::Observer`]; the [`Metrics`] tower layer wraps the export
//! service), and the agent binary serves what it collected on the admin
//! port. It depends on `otlp-core` only.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use otlp_core::{Observer, Signal};
//! use otlp_observability::{
//!     ExporterCheck, HealthChecker, HealthStatus, QueueCheck, SelfMetrics, Stage, StageProfiler,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), otlp_observability::ObservabilityError> {
//! // The pipeline reports item accounting through `Observer`.
//! let metrics = Arc::new(SelfMetrics::new());
//! metrics.accepted(Signal::Traces, 3);
//! metrics.sent(Signal::Traces, 3);
//! assert!(metrics.encode_text()?.contains("otlp_items_sent_total{signal=\"traces\"} 3"));
//!
//! // Health checks read the state the `Metrics` layer and the queue feed.
//! let health = HealthChecker::new()
//!     .with_check(ExporterCheck::new(metrics.exporter_health()))
//!     .with_check(QueueCheck::from_metrics(metrics.clone()));
//! let report = health.check_readiness().await;
//! assert_eq!(report.status, HealthStatus::Healthy);
//! assert_eq!(report.http_status(), 200);
//!
//! // The stage profiler times each step of an export.
//! let profiler = StageProfiler::new();
//! drop(profiler.time(Stage::Encode));
//! assert_eq!(profiler.report().stage(Stage::Encode).count, 1);
//! # Ok(())
//! # }
//! ```
//!
//! The admin server (feature `admin`) serves all of it:
//! `AdminServer::bind(addr, AdminState::new(metrics, health)).await?.serve(shutdown)`.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `admin` | yes | the admin HTTP server (`/health`, `/metrics`, `/debug/*`) on hyper 1 |
//! | `logging` | yes | `init_logging`: text or JSON logs to stderr or a file, filtered by `RUST_LOG` |

#[cfg(feature = "admin")]
mod admin;
mod error;
mod health;
mod layer;
mod log_ring;
#[cfg(feature = "logging")]
mod logging;
mod losses;
pub mod names;
mod process;
mod profiler;
mod self_metrics;
mod status;
#[cfg(feature = "admin")]
mod status_page;

#[cfg(feature = "admin")]
pub use self::admin::{AdminServer, AdminState, BoundAdmin};
#[cfg(feature = "logging")]
pub use self::logging::{LogFormat, LogOptions, UnknownLogFormat, init_logging};
pub use self::losses::{Loss, LossLog};
pub use self::status::{QueueStatus, SignalStatus, Status};
pub use self::{
    error::ObservabilityError,
    health::{
        CheckFuture, CheckResult, Detail, DiskCheck, ExporterCheck, ExporterHealth, HealthCheck,
        HealthChecker, HealthReport, HealthStatus, MemoryCheck, NamedResult, Probe, QueueCheck,
        QueueLevel,
    },
    layer::{Metrics, MetricsLayer, ResponseFuture},
    log_ring::{LevelCounts, LogAnalysis, LogEntry, LogRing},
    process::ProcessStats,
    profiler::{ProfileReport, Stage, StageProfiler, StageReport, StageTimer},
    self_metrics::{
        BackendSample, BalancerSample, OPENMETRICS_CONTENT_TYPE, PROMETHEUS_TEXT_CONTENT_TYPE,
        RecoveryAction, SelfMetrics,
    },
};
