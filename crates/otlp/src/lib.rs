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
//! config.retry.max_retries = Some(0);
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
//! # Without prost structs
//!
//! Callers that hold no opentelemetry-proto messages describe a span or log
//! record with the borrowed types of [`wire`] (`&str` names, slices of
//! attributes, events and links) and get the same item, written straight to
//! the protobuf wire format with no allocation per field:
//!
//! ```
//! use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
//! use otlp::wire::{AnyValue, Attribute, Event, SpanRecord};
//!
//! # let resource = otlp::resource_group(&Default::default(), "");
//! # let scope = otlp::scope_group(&Default::default(), "");
//! let attributes = [Attribute { key: "url.path", value: AnyValue::Str("/orders/12345") }];
//! let events = [Event { time_unix_nano: 2, name: "cache.lookup", ..Event::default() }];
//! let span = SpanRecord {
//!     trace_id: &[7; 16],
//!     span_id: &[9; 8],
//!     name: "GET /orders/{id}",
//!     kind: SpanKind::Server,
//!     start_time_unix_nano: 1,
//!     end_time_unix_nano: 3,
//!     attributes: &attributes,
//!     events: &events,
//!     ..SpanRecord::default()
//! };
//! let item = span.to_item(&resource, &scope);
//! assert_eq!(item.count, 1);
//! // `otlp.try_export(item)` hands it to the pipeline as `span_item` does.
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

mod balance;
mod convert;
mod encode;
mod error;
mod intake;
mod otlp;
#[cfg(feature = "sdk")]
pub mod sdk;
mod stack;
pub mod wire;

pub use otlp_config as config;
pub use otlp_core as core;
pub use otlp_observability as observability;
pub use otlp_pipeline as pipeline;
pub use otlp_resilience as resilience;
pub use otlp_transport as transport;

pub use self::{
    balance::resolve_backends,
    encode::{
        data_points, log_item, metric_item, resource, resource_group, scope_group, span_item,
    },
    error::OtlpError,
    intake::{Intake, IntakeError},
    otlp::{Otlp, OtlpBuilder},
    stack::{ExportError, ExportService, SignalRouter},
};
