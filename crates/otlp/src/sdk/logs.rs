//! The log side of the bridge: a `LogProcessor` that feeds each emitted log
//! record straight into the pipeline, and a `LogExporter` for users who keep
//! the SDK's own processors.

use std::{borrow::Cow, sync::Arc, time::Duration};

use opentelemetry::{InstrumentationScope, logs::LogRecord as _};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    logs::{LogBatch, LogExporter, LogProcessor, SdkLogRecord},
};
use otlp_core::Signal;
use otlp_pipeline::Item;

use super::{bridge::Bridge, encode::write_log};
use crate::{Otlp, wire::encode_with};

/// An `opentelemetry_sdk` log processor that hands every emitted log record
/// to the [`Otlp`] pipeline from `emit`.
///
/// It behaves as [`OtlpSpanProcessor`](super::OtlpSpanProcessor) does: no SDK
/// batch queue, every record accounted, drop policies never wait, `block`
/// holds the emitting thread back (except on a current-thread runtime), and
/// flush and shutdown are bounded waits. A record's `target`, when set,
/// replaces its scope name, as the OTLP exporter of the SDK does.
#[derive(Debug)]
pub struct OtlpLogProcessor {
    bridge: Bridge,
}

/// An `opentelemetry_sdk` log exporter feeding the [`Otlp`] pipeline, for use
/// under the SDK's `BatchLogProcessor` or `SimpleLogProcessor`.
///
/// Prefer [`OtlpLogProcessor`]: the SDK's batch queue drops records silently
/// when full, ours counts every drop.
#[derive(Debug)]
pub struct OtlpLogExporter {
    bridge: Bridge,
}

/// Encodes one record with the bridge's resource and a cached scope group.
fn encode(bridge: &Bridge, record: &SdkLogRecord, scope: &InstrumentationScope) -> Item {
    let group = bridge.scope(scope, record.target().map(Cow::as_ref));
    // The SDK's logger always stamps the observed time; a record built by
    // hand may not be, and then it is observed now.
    let observed = match record.observed_timestamp() {
        Some(t) => t,
        None => std::time::SystemTime::now(),
    };
    let body = encode_with(|buf| write_log(buf, record, observed));
    Item::new(Signal::Logs, bridge.resource().clone(), group, body, 1)
}

// === impl OtlpLogProcessor ===

impl OtlpLogProcessor {
    /// A processor feeding `otlp`.
    ///
    /// Call it inside the tokio runtime that built `otlp`: flush, shutdown and
    /// the `block` policy's wait run on that runtime.
    pub fn new(otlp: Arc<Otlp>) -> Self {
        Self {
            bridge: Bridge::new(otlp, Signal::Logs),
        }
    }

    /// How long `force_flush` waits (default: the logs export timeout).
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.bridge.set_flush_timeout(timeout);
        self
    }

    /// The exporter this processor feeds.
    pub fn otlp(&self) -> &Arc<Otlp> {
        self.bridge.otlp()
    }
}

impl LogProcessor for OtlpLogProcessor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if record.observed_timestamp().is_none() {
            record.set_observed_timestamp(std::time::SystemTime::now());
        }
        let item = encode(&self.bridge, record, scope);
        if let Err(e) = self.bridge.deliver(item) {
            // Already counted as dropped by the pipeline.
            tracing::debug!(error = %e, "log record not queued");
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.bridge.flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.bridge.shutdown(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.bridge.set_resource(resource);
    }
}

// === impl OtlpLogExporter ===

impl OtlpLogExporter {
    /// An exporter feeding `otlp` (create it inside the runtime that built `otlp`).
    pub fn new(otlp: Arc<Otlp>) -> Self {
        Self {
            bridge: Bridge::new(otlp, Signal::Logs),
        }
    }
}

impl LogExporter for OtlpLogExporter {
    /// Encodes each record into the pipeline; under `block` waits for room.
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let items = batch
            .iter()
            .map(|(record, scope)| encode(&self.bridge, record, scope))
            .collect::<Vec<_>>();
        self.bridge.deliver_all(items).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.bridge.shutdown(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.bridge.set_resource(resource);
    }
}
