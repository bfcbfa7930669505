//! The span side of the bridge: a `SpanProcessor` that feeds each finished
//! span straight into the pipeline, and a `SpanExporter` for users who keep
//! the SDK's own processors.

use std::{sync::Arc, time::Duration};

use opentelemetry::Context;
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    trace::{Span, SpanData, SpanExporter, SpanProcessor},
};
use otlp_core::Signal;
use otlp_pipeline::Item;

use super::{bridge::Bridge, encode::write_span};
use crate::{Otlp, wire::encode_with};

/// An `opentelemetry_sdk` span processor that hands every finished, sampled
/// span to the [`Otlp`] pipeline from `on_end`.
///
/// There is no SDK batch queue in between: the pipeline's batcher groups
/// spans by resource and scope, its bounded queue applies the configured
/// overflow policy, and every span is accounted (sent, dropped with a reason,
/// failed, or left at shutdown).
///
/// Under the drop policies `on_end` never waits. Under `block` the thread
/// that ends the span is held back until the queue has room or the block
/// deadline passes: a thread outside any runtime waits through the runtime
/// the processor was created in, a multi-thread runtime worker waits inside
/// `tokio::task::block_in_place`. On a current-thread runtime the span is
/// offered without waiting (blocking the only thread would stall the
/// pipeline itself), so a full queue drops it and counts it.
///
/// `force_flush` and `shutdown` run [`Otlp::flush`] / [`Otlp::shutdown`] on
/// that runtime and wait at most their bound, returning
/// `OTelSdkError::Timeout` past it. On a current-thread runtime called from
/// its own thread they cannot make progress and time out.
#[derive(Debug)]
pub struct OtlpSpanProcessor {
    bridge: Bridge,
}

/// An `opentelemetry_sdk` span exporter feeding the [`Otlp`] pipeline, for
/// use under the SDK's `BatchSpanProcessor` or `SimpleSpanProcessor`.
///
/// Prefer [`OtlpSpanProcessor`]: the SDK's batch queue drops spans silently
/// when full, ours counts every drop.
#[derive(Debug)]
pub struct OtlpSpanExporter {
    bridge: Bridge,
}

/// Encodes one span, straight to the wire format, with the bridge's resource
/// and a cached scope group.
fn encode(bridge: &Bridge, span: &SpanData) -> Item {
    let scope = bridge.scope(&span.instrumentation_scope, None);
    let body = encode_with(|buf| write_span(buf, span));
    Item::new(Signal::Traces, bridge.resource().clone(), scope, body, 1)
}

// === impl OtlpSpanProcessor ===

impl OtlpSpanProcessor {
    /// A processor feeding `otlp`.
    ///
    /// Call it inside the tokio runtime that built `otlp`: flush, shutdown and
    /// the `block` policy's wait run on that runtime.
    pub fn new(otlp: Arc<Otlp>) -> Self {
        Self {
            bridge: Bridge::new(otlp, Signal::Traces),
        }
    }

    /// How long `force_flush` waits (default: the traces export timeout).
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.bridge.set_flush_timeout(timeout);
        self
    }

    /// The exporter this processor feeds.
    pub fn otlp(&self) -> &Arc<Otlp> {
        self.bridge.otlp()
    }
}

impl SpanProcessor for OtlpSpanProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // Unsampled (record-only) spans are not exported, as in the SDK's processors.
        if !span.span_context.is_sampled() {
            return;
        }
        let item = encode(&self.bridge, &span);
        if let Err(e) = self.bridge.deliver(item) {
            // Already counted as dropped by the pipeline; say why once at debug level.
            tracing::debug!(error = %e, "span not queued");
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

// === impl OtlpSpanExporter ===

impl OtlpSpanExporter {
    /// An exporter feeding `otlp` (create it inside the runtime that built `otlp`).
    pub fn new(otlp: Arc<Otlp>) -> Self {
        Self {
            bridge: Bridge::new(otlp, Signal::Traces),
        }
    }

    /// How long `force_flush` waits (default: the traces export timeout).
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.bridge.set_flush_timeout(timeout);
        self
    }
}

impl SpanExporter for OtlpSpanExporter {
    /// Encodes each span into the pipeline; under `block` waits for room.
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let items = batch
            .iter()
            .map(|span| encode(&self.bridge, span))
            .collect();
        self.bridge.deliver_all(items).await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.bridge.shutdown(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.bridge.flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.bridge.set_resource(resource);
    }
}
