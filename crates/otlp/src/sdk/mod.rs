//! The `opentelemetry_sdk` bridge (feature `sdk`): span and log processors
//! that feed the [`Otlp`](crate::Otlp) pipeline directly, and the SDK's span,
//! log and push-metric exporter traits for users who keep its processors.
//!
//! An application instrumented with the official SDK (directly or through
//! `tracing` + `tracing-opentelemetry`) switches to this toolkit by replacing
//! its exporter with [`OtlpSpanProcessor`] / [`OtlpLogProcessor`]. Each
//! finished span and emitted log record is encoded once, from `on_end` /
//! `emit`, straight to the protobuf wire format (no opentelemetry-proto
//! structs in between, byte for byte what they would encode to), into the
//! pipeline's batcher: the SDK's batch queue (and its silent
//! drops) is out of the path, and the data gets the pipeline's retries,
//! bounded queue (memory or disk), overflow policy, self-metrics and exact
//! accounting. The resource is encoded once (`set_resource`) and each
//! instrumentation scope once (a bounded cache of 256 scopes, which checks the
//! last scope it served before hashing).
//!
//! | SDK extension point | type | path into the pipeline |
//! |---------------------|------|-------------------------|
//! | `SpanProcessor` | [`OtlpSpanProcessor`] | one item per span, from `on_end` |
//! | `LogProcessor` | [`OtlpLogProcessor`] | one item per record, from `emit` |
//! | `SpanExporter` | [`OtlpSpanExporter`] | one item per span of the SDK's batch |
//! | `LogExporter` | [`OtlpLogExporter`] | one item per record of the SDK's batch |
//! | `PushMetricExporter` | [`OtlpMetricExporter`] | one encoded request per collection |
//!
//! Under the `block` overflow policy a producer is held back (never dropped)
//! until the queue has room or the block deadline passes, except on a
//! current-thread runtime, where blocking the one thread would stall the
//! pipeline: there the item is offered without waiting and counted if
//! dropped. `force_flush` and `shutdown` are bounded waits that return
//! `OTelSdkError::Timeout` past their bound.
//!
//! # Example
//!
//! The switch from `opentelemetry-otlp` is the exporter line; the rest of the
//! SDK set-up stays as it was.
//!
//! ```
//! use std::sync::Arc;
//!
//! use opentelemetry::trace::{Tracer, TracerProvider as _};
//! use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
//! use otlp::{Otlp, config::Config, core::Signal, sdk::OtlpSpanProcessor};
//!
//! let runtime = tokio::runtime::Builder::new_multi_thread()
//!     .worker_threads(1)
//!     .enable_all()
//!     .build()?;
//! let _entered = runtime.enter();
//!
//! // No collector runs in this example: the export fails and is accounted.
//! // (An application uses `.with_env(otlp::config::Env::from_process())`.)
//! let mut config = Config::default();
//! config.retry.max_retries = Some(0);
//! # let unused = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
//! # for s in &mut config.signals { s.endpoint = format!("http://{unused}"); }
//! let otlp = Arc::new(Otlp::builder().with_config(config).build()?);
//!
//! let provider = SdkTracerProvider::builder()
//!     .with_resource(Resource::builder().with_service_name("checkout").build())
//!     // Was: .with_batch_exporter(opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?)
//!     .with_span_processor(OtlpSpanProcessor::new(otlp.clone()))
//!     .build();
//!
//! provider.tracer("shop").in_span("place-order", |_cx| {});
//! // Drains the pipeline within the SDK's shutdown deadline.
//! let _ = provider.shutdown();
//!
//! let stats = otlp.stats();
//! let traces = stats.signal(Signal::Traces);
//! assert_eq!(traces.accepted, 1);
//! // Every span ends as exactly one of sent, dropped, failed or still queued.
//! assert_eq!(
//!     traces.sent + traces.dropped_total() + traces.failed_total() + traces.queued_items,
//!     1
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bridge;
mod encode;
mod logs;
mod metrics;
mod trace;

pub use self::{
    bridge::MAX_CACHED_SCOPES,
    logs::{OtlpLogExporter, OtlpLogProcessor},
    metrics::OtlpMetricExporter,
    trace::{OtlpSpanExporter, OtlpSpanProcessor},
};
