//! The otlp-rust facade: builds the whole export stack from config and
//! re-exports the component crates.
//!
//! This is the crate applications link. It reads config (file, environment,
//! flags) through `otlp-config`, assembles the export stack in one function
//! (`stack.rs`: metrics -> recovery -> retry -> adaptive concurrency ->
//! transport), puts the pipeline (batcher, bounded queue, workers) in front of
//! it, and reports every item into `otlp-observability`'s self-metrics.
//!
//! The types an application needs are re-exported at the crate root
//! ([`Config`], [`Signal`], [`Item`], [`Stats`], ...); the component crates
//! are re-exported whole as modules ([`config`], [`core`], [`pipeline`],
//! [`resilience`], [`transport`], [`observability`]) for users who need more.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use opentelemetry_proto::tonic::{
//!     common::v1::InstrumentationScope, resource::v1::Resource, trace::v1::Span,
//! };
//! use otlp::{Config, Otlp, Signal};
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
//! assert_eq!(otlp.stats().signal(Signal::Traces).accepted, 1);
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
//! # Which type to use
//!
//! The config and the components each define their own plain types, on
//! purpose: a component crate never depends on `otlp-config` (or a sibling),
//! so it can be used alone. An application describes what it wants with the
//! config's types (set on [`Config`] and handed to [`Otlp::builder`]); a user
//! of one component alone builds that component's settings directly. The
//! facade's `convert.rs` is the one place that maps the first onto the second,
//! so an application never writes a component's type itself.
//!
//! | name | an application uses (config) | a component user uses | mapped by `convert.rs` |
//! |------|------------------------------|-----------------------|------------------------|
//! | `TlsConfig` | [`config::TlsConfig`] (also [`TlsConfig`]): one signal's `tls.*` keys | [`transport::TlsConfig`], in [`transport::ExporterConfig::tls`] | `exporter_config` |
//! | `Protocol` | [`config::Protocol`] (also [`Protocol`]) | [`transport::Protocol`] | `exporter_config` |
//! | `Compression` | [`config::Compression`] (also [`Compression`]) | [`transport::Compression`] | `exporter_config` |
//! | `Overflow` | [`config::Overflow`]: `Block` has no deadline | [`pipeline::Overflow`]: `Block { deadline }` (the facade gives it the traces `timeout`) | `pipeline_config` |
//! | `BatchConfig` | [`config::BatchConfig`] | [`pipeline::BatchConfig`] | `pipeline_config` |
//! | `QueueConfig` | [`config::QueueConfig`] (`persistent`: [`config::PersistentConfig`]) | [`pipeline::QueueConfig`] (`persistent`: [`pipeline::DiskQueueConfig`]) | `pipeline_config` |
//! | retry | [`config::RetryConfig`] | [`resilience::RetryPolicy`] | `retry_policy` |
//! | receiver TLS | [`config::ReceiverTlsConfig`] | [`transport::ReceiverTls`] | `receiver_tls` |
//!
//! [`exporter_config`] returns the mapped transport settings of one signal,
//! for a tool that talks to the same upstream outside the pipeline.
//!
//! The root re-exports [`Protocol`], [`Compression`] and [`TlsConfig`] are
//! the config's; the others of these names are reached through their module
//! only.
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

// The types an application needs, at the root: what it configures (the
// config's types, see "Which type to use"), what it hands over, and what the
// `Otlp` handle returns.
pub use otlp_config::{Compression, Config, Env, Flags, Protocol, TlsConfig};
pub use otlp_core::{Batch, DropReason, FailReason, Signal};
pub use otlp_observability::{
    HealthChecker, HealthReport, HealthStatus, SelfMetrics, StageProfiler,
};
pub use otlp_pipeline::{Group, Item, Sender, ShutdownReport, SignalStats, Stats, TrySendError};

pub use self::{
    balance::resolve_backends,
    convert::exporter_config,
    encode::{
        data_points, log_item, metric_item, resource, resource_group, scope_group, span_item,
    },
    error::OtlpError,
    intake::{Intake, IntakeError},
    otlp::{Otlp, OtlpBuilder},
    stack::{ExportError, ExportService, SignalRouter},
};
