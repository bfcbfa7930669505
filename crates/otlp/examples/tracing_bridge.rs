//! `tracing` -> `tracing-opentelemetry` -> `opentelemetry_sdk` -> otlp-rust.
//!
//! Spans and events written with the `tracing` macros go through the official
//! SDK into our pipeline (batching, bounded queue, retries, accounting), and
//! SDK log records go the same way through [`OtlpLogProcessor`]. The exporter
//! reads its settings from the environment (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTLP_ENDPOINT`, ...; by default `http://localhost:4317`). Run it with
//!
//! ```text
//! cargo run -p otlp --features sdk --example tracing_bridge
//! ```
//!
//! With no collector listening the export fails, and the report at the end
//! says so: every span is accounted as sent, dropped or failed.
// An example reports to its user on stdout.
#![allow(clippy::print_stdout)]

use std::{sync::Arc, time::Duration};

use opentelemetry::{
    logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{Resource, logs::SdkLoggerProvider, trace::SdkTracerProvider};
use otlp::{
    Otlp,
    config::Env,
    core::Signal,
    sdk::{OtlpLogProcessor, OtlpSpanProcessor},
};
use tracing_subscriber::layer::SubscriberExt as _;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. Our exporter, configured like any OpenTelemetry exporter.
    let otlp = Arc::new(Otlp::builder().with_env(Env::from_process()).build()?);
    println!(
        "exporting traces to {}",
        otlp.config().signal(Signal::Traces).endpoint
    );

    // 2. The official SDK, with our processors instead of its batch exporters.
    let resource = Resource::builder()
        .with_service_name("tracing-bridge-example")
        .build();
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_span_processor(OtlpSpanProcessor::new(otlp.clone()))
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_resource(resource)
        .with_log_processor(OtlpLogProcessor::new(otlp.clone()))
        .build();

    // 3. `tracing` spans and events become SDK spans and span events.
    let layer = tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("example"));
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let order = tracing::info_span!("place_order", order.id = 42, customer = "ada");
        let _entered = order.enter();
        tracing::info!(items = 3, "order received");
        for item in 0..3 {
            let _line = tracing::info_span!("reserve_item", item).entered();
            tracing::debug!("stock reserved");
        }
        tracing::warn!(amount_cents = 1999, "payment retried once");
    });

    // SDK log records take the same path (an appender such as
    // `opentelemetry-appender-tracing` would emit these from `tracing` events).
    let logger = logger_provider.logger("example");
    let mut record = logger.create_log_record();
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.set_body(AnyValue::from("order 42 shipped"));
    record.add_attribute("order.id", 42_i64);
    logger.emit(record);

    // 4. Shut down: flush within a deadline, then report what happened to every item.
    let deadline = Duration::from_secs(5);
    if let Err(e) = tracer_provider.shutdown_with_timeout(deadline) {
        println!("tracer provider shutdown: {e}");
    }
    if let Err(e) = logger_provider.shutdown_with_timeout(deadline) {
        println!("logger provider shutdown: {e}");
    }
    let report = otlp.shutdown(deadline).await;
    for signal in [Signal::Traces, Signal::Logs] {
        let s = report.stats.signal(signal);
        println!(
            "{signal}: accepted {} sent {} dropped {} failed {} queued {}",
            s.accepted,
            s.sent,
            s.dropped_total(),
            s.failed_total(),
            s.queued_items
        );
    }
    println!(
        "total: sent {} dropped {} failed {} drained {}",
        report.sent, report.dropped, report.failed, report.drained
    );
    Ok(())
}
