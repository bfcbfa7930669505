//! The native path: hand OTLP protobuf messages (from `opentelemetry-proto`)
//! straight to the pipeline, each encoded once.

use bytes::Bytes;
use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    logs::v1::LogRecord,
    metrics::v1::{Metric, metric::Data},
    resource::v1::Resource,
    trace::v1::Span,
};
use otlp_core::Signal;
use otlp_pipeline::{Group, Item};
use prost::Message;

/// The resource the config describes, as the OpenTelemetry SDK spec builds
/// it from the environment: the attributes of `resource_attributes`
/// (`OTEL_RESOURCE_ATTRIBUTES`) with `service.name` from `service_name`
/// (`OTEL_SERVICE_NAME`) winning, then each of `defaults` whose key is not
/// set; `service.name` is `unknown_service` when nothing names it.
///
/// ```
/// use otlp::config::{Env, Sources};
///
/// let env = Env::from_map([
///     ("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,deployment.environment=prod%20eu"),
///     ("OTEL_SERVICE_NAME", "checkout"),
/// ]);
/// let config = Sources::new().with_env(env).load()?;
/// let resource = otlp::resource(&config, &[("host.name", "web-1")]);
/// let attrs: Vec<_> = resource.attributes.iter().map(|kv| kv.key.as_str()).collect();
/// assert_eq!(attrs, ["service.name", "deployment.environment", "host.name"]);
/// # Ok::<(), otlp::config::ConfigError>(())
/// ```
pub fn resource(config: &otlp_config::Config, defaults: &[(&str, &str)]) -> Resource {
    let mut pairs: Vec<(String, String)> = config.resource.clone();
    for (k, v) in defaults {
        if !pairs.iter().any(|(have, _)| have == k) {
            pairs.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
    if !pairs.iter().any(|(k, _)| k == "service.name") {
        pairs.insert(0, ("service.name".to_owned(), "unknown_service".to_owned()));
    }
    Resource {
        attributes: pairs
            .into_iter()
            .map(|(key, value)| KeyValue {
                key,
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(value)),
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

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
