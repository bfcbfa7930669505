//! The native path: hand OTLP protobuf messages (from `opentelemetry-proto`)
//! straight to the pipeline, each encoded once.

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    common::v1::InstrumentationScope,
    logs::v1::LogRecord,
    metrics::v1::{Metric, metric::Data},
    resource::v1::Resource,
    trace::v1::Span,
};
use otlp_core::Signal;
use otlp_pipeline::{Group, Item};
use prost::Message;

/// Encodes a resource once, for all the items it describes.
pub fn resource_group(resource: &Resource, schema_url: &str) -> Group {
    Group::resource(&resource.encode_to_vec(), schema_url)
}

/// Encodes an instrumentation scope once, for all the items it produced.
pub fn scope_group(scope: &InstrumentationScope, schema_url: &str) -> Group {
    Group::scope(&scope.encode_to_vec(), schema_url)
}

/// One span as a pipeline item.
pub fn span_item(resource: &Group, scope: &Group, span: &Span) -> Item {
    Item::new(
        Signal::Traces,
        resource.clone(),
        scope.clone(),
        Bytes::from(span.encode_to_vec()),
        1,
    )
}

/// One log record as a pipeline item.
pub fn log_item(resource: &Group, scope: &Group, record: &LogRecord) -> Item {
    Item::new(
        Signal::Logs,
        resource.clone(),
        scope.clone(),
        Bytes::from(record.encode_to_vec()),
        1,
    )
}

/// One metric (with all its data points) as a pipeline item.
pub fn metric_item(resource: &Group, scope: &Group, metric: &Metric) -> Item {
    Item::new(
        Signal::Metrics,
        resource.clone(),
        scope.clone(),
        Bytes::from(metric.encode_to_vec()),
        data_points(metric),
    )
}

/// The data points of a metric: the unit OTLP counts metrics in.
pub fn data_points(metric: &Metric) -> u64 {
    (match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }) as u64
}
