//! The metric side of the bridge: a `PushMetricExporter` that encodes each
//! collection once into an export request for the pipeline.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{Temporality, data::ResourceMetrics, exporter::PushMetricExporter},
};
use otlp_core::{Batch, Signal};
use prost::Message;

use super::bridge::Bridge;
use crate::{Otlp, data_points};

/// An `opentelemetry_sdk` push metric exporter feeding the [`Otlp`] pipeline
/// (use it with the SDK's `PeriodicReader`).
///
/// Each collection is converted with `opentelemetry-proto`'s transform,
/// encoded once into one `ExportMetricsServiceRequest`, and queued as one
/// batch counted in data points. Temporality follows the config's
/// `metrics.temporality_preference` (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`,
/// cumulative by default) unless set with [`OtlpMetricExporter::with_temporality`].
#[derive(Debug)]
pub struct OtlpMetricExporter {
    bridge: Bridge,
    temporality: Temporality,
}

// === impl OtlpMetricExporter ===

impl OtlpMetricExporter {
    /// An exporter feeding `otlp` with the config's temporality preference
    /// (create it inside the runtime that built `otlp`).
    pub fn new(otlp: Arc<Otlp>) -> Self {
        let temporality = match otlp.config().metrics_temporality {
            otlp_config::Temporality::Cumulative => Temporality::Cumulative,
            otlp_config::Temporality::Delta => Temporality::Delta,
            otlp_config::Temporality::LowMemory => Temporality::LowMemory,
        };
        Self {
            bridge: Bridge::new(otlp, Signal::Metrics),
            temporality,
        }
    }

    /// The temporality the SDK aggregates with for this exporter.
    pub fn with_temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = temporality;
        self
    }

    /// How long `force_flush` waits (default: the metrics export timeout).
    pub fn with_flush_timeout(mut self, timeout: Duration) -> Self {
        self.bridge.set_flush_timeout(timeout);
        self
    }
}

/// Encodes one collection as an export request counted in data points.
fn encode(metrics: &ResourceMetrics) -> Batch {
    let request = ExportMetricsServiceRequest::from(metrics);
    let points = request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(data_points)
        .sum();
    Batch::new(
        Signal::Metrics,
        Bytes::from(request.encode_to_vec()),
        points,
    )
}

impl PushMetricExporter for OtlpMetricExporter {
    /// Queues the collection as one batch; under `block` waits for room.
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let batch = encode(metrics);
        if batch.items() == 0 {
            // Nothing was recorded in this interval.
            return Ok(());
        }
        self.bridge.deliver_batch(batch).await
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.bridge.flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.bridge.shutdown(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.temporality
    }
}
