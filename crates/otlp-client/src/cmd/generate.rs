//! The load generator's items: spans, metric points and log records of a
//! configurable shape (and a minimal profile), encoded once each through the
//! facade's native path.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value},
    logs::v1::LogRecord,
    metrics::v1::{Gauge, Metric, NumberDataPoint, metric::Data, number_data_point},
    profiles::v1development::{Profile, Sample},
    resource::v1::Resource,
    trace::v1::{Span, span},
};
use otlp::{
    core::Signal,
    pipeline::{Group, Item},
};

/// Makes items of one shape.
#[derive(Debug)]
pub(crate) struct Generator {
    resource: Group,
    scope: Group,
    attributes: Vec<KeyValue>,
    start: u64,
}

fn string_kv(key: String, value: String) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

impl Generator {
    /// Items of `resource`, `attributes` attributes per item, each value `size` bytes long.
    pub(crate) fn new(resource: &Resource, attributes: usize, size: usize) -> Self {
        let scope = InstrumentationScope {
            name: "otlp-client".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let attributes = (0..attributes)
            .map(|i| string_kv(format!("attr.{i}"), "x".repeat(size)))
            .collect();
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            resource: otlp::resource_group(resource, ""),
            scope: otlp::scope_group(&scope, ""),
            attributes,
            start,
        }
    }

    /// Item number `n` of `signal`.
    pub(crate) fn item(&self, signal: Signal, n: u64) -> Item {
        let t = self.start + n * 1_000;
        match signal {
            Signal::Traces => {
                let mut trace_id = [0u8; 16];
                trace_id[..8].copy_from_slice(&self.start.to_be_bytes());
                trace_id[8..].copy_from_slice(&(n / 10).to_be_bytes());
                let span = Span {
                    trace_id: trace_id.to_vec(),
                    span_id: (n + 1).to_be_bytes().to_vec(),
                    name: "load-test-span".into(),
                    kind: span::SpanKind::Internal as i32,
                    start_time_unix_nano: t,
                    end_time_unix_nano: t + 500,
                    attributes: self.attributes.clone(),
                    events: vec![span::Event {
                        time_unix_nano: t + 100,
                        name: "event".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                otlp::span_item(&self.resource, &self.scope, &span)
            }
            Signal::Metrics => {
                let metric = Metric {
                    name: "load_test_value".into(),
                    unit: "1".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            attributes: self.attributes.clone(),
                            time_unix_nano: t,
                            value: Some(number_data_point::Value::AsInt(n as i64)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                };
                otlp::metric_item(&self.resource, &self.scope, &metric)
            }
            Signal::Logs => {
                let record = LogRecord {
                    time_unix_nano: t,
                    observed_time_unix_nano: t,
                    severity_number: 9,
                    severity_text: "INFO".into(),
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!(
                            "load test record {n}"
                        ))),
                    }),
                    attributes: self.attributes.clone(),
                    ..Default::default()
                };
                otlp::log_item(&self.resource, &self.scope, &record)
            }
            Signal::Profiles => {
                // No dictionary travels with grouped items, so the profile
                // refers to none (every index 0, the tables' empty entry).
                let mut profile_id = [0u8; 16];
                profile_id[..8].copy_from_slice(&self.start.to_be_bytes());
                profile_id[8..].copy_from_slice(&(n + 1).to_be_bytes());
                let profile = Profile {
                    samples: vec![Sample {
                        values: vec![1],
                        ..Default::default()
                    }],
                    time_unix_nano: t,
                    duration_nano: 1_000,
                    profile_id: profile_id.to_vec(),
                    ..Default::default()
                };
                Item::new(
                    Signal::Profiles,
                    self.resource.clone(),
                    self.scope.clone(),
                    prost::Message::encode_to_vec(&profile).into(),
                    1,
                )
            }
        }
    }
}
