//! The otlp-rust facade: builds the whole export stack from config and
//! re-exports the component crates.
//!
//! This is the crate applications link. It reads config (file, environment,
//! flags) through `otlp-config`, assembles the export stack in one function
//! (`stack.rs`: metrics -> recovery -> retry -> adaptive concurrency ->
//! transport), puts the pipeline (batcher, bounded queue, workers) in front of
//! it, and reports every item into `otlp-observability`'s self-metrics. The
//! component crates are re-exported as modules for users who need more.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use opentelemetry_proto::tonic::{
//!     common::v1::InstrumentationScope, resource::v1::Resource, trace::v1::Span,
//! };
//! use otlp::{Otlp, config::Config};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! // No collector runs in this example: the export fails and is accounted.
//! let mut config = Config::default();
//! config.retry.max_retries = 0;
//! let otlp = Otlp::builder().with_config(config).build()?;
//!
//! let resource = otlp::resource_group(&Resource::default(), "");
//! let scope = otlp::scope_group(&InstrumentationScope { name: "demo".into(), ..Default::default() }, "");
//! let span = Span { name: "hello".into(), ..Default::default() };
//! otlp.try_export(otlp::span_item(&resource, &scope, &span))?;
//!
//! let report = otlp.shutdown(Duration::from_secs(2)).await;
//! assert_eq!(otlp.stats().signal(otlp::core::Signal::Traces).accepted, 1);
//! # let _ = report;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---------|---------|--------------|
//! | `grpc` | yes | OTLP/gRPC export (tonic) |
//! | `http` | yes | OTLP/HTTP export with protobuf bodies |
//! | `gzip` | yes | gzip compression |
//! | `admin` | yes | the admin server (`/health`, `/metrics`) and log set-up |
//! | `http-json` | no | OTLP/HTTP with JSON bodies |
//! | `zstd` | no | zstd compression |
//! | `tls` | no | `https://` endpoints with rustls; without it an `https://` endpoint is a build error |
//! | `disk-queue` | no | the crash-safe disk queue |
//! | `sdk` | no | the `opentelemetry_sdk` bridge (module `sdk`): span and log processors, span, log and push-metric exporters |

mod convert;
mod encode;
mod error;
mod intake;
mod otlp;
#[cfg(feature = "sdk")]
pub mod sdk;
mod stack;

pub use otlp_config as config;
pub use otlp_core as core;
pub use otlp_observability as observability;
pub use otlp_pipeline as pipeline;
pub use otlp_resilience as resilience;
pub use otlp_transport as transport;

pub use self::{
    encode::{data_points, log_item, metric_item, resource_group, scope_group, span_item},
    error::OtlpError,
    intake::{Intake, IntakeError},
    otlp::{Otlp, OtlpBuilder},
    stack::{ExportError, ExportService, SignalRouter},
};
